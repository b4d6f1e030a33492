//! Talking to an identity provider: discovery, its JWKS, the token endpoint, and validating
//! the ID token it returns (signature, `iss`, `aud`/`azp`, `exp`, `iat`, `nonce`).
//!
//! A tenant names the issuer (and the discovery document names the other endpoints), so every
//! fetch goes through the kit's outbound client: addresses under the operator's policy (the
//! platform's network refused), no redirect followed, answers capped at [`MAX_ANSWER_BYTES`],
//! and nothing the provider answered is put in an error returned to the caller.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tenantry_kit::ApiError;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::egress::{
    Egress, EgressPolicy, Fetched, HttpLimits, OutboundError, OutboundHttp,
};
use tokio::sync::Mutex;

/// Discovery documents and key sets are re-read after this long.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// An unknown `kid` re-reads the key set at most this often.
const JWKS_REFETCH_AFTER: Duration = Duration::from_secs(10);
const SKEW_SECS: i64 = 60;
/// Discovery documents, key sets and token responses are a few KiB; larger is not read.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Asymmetric algorithms only: `none` and HMAC are never accepted from a provider.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

pub struct OidcClient {
    http: OutboundHttp,
    discovery: Mutex<HashMap<String, (Instant, Arc<Discovery>)>>,
    jwks: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

fn refused(why: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated(format!("identity provider: {}", why.into()))
}

/// The limits of every call to a provider.
pub fn limits() -> HttpLimits {
    HttpLimits {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(3),
        max_body_bytes: MAX_ANSWER_BYTES,
        // A provider's redirects are not followed with our credentials.
        max_redirects: 0,
    }
}

/// What `what` (a provider endpoint) answered, or why not, as the caller may see it: the
/// policy's refusal names `field`; other failures say what failed, never what was answered.
async fn fetch(
    http: &OutboundHttp,
    request: reqwest::RequestBuilder,
    field: &str,
    what: &str,
) -> Result<Fetched, ApiError> {
    http.send(request).await.map_err(|e| {
        tracing::info!(error = %e, endpoint = what, "identity provider call failed");
        match e {
            e if e.is_refused() => ApiError::invalid(
                field,
                format!("{what}: the address is refused by the outbound policy"),
            ),
            OutboundError::TooLarge { limit, .. } => ApiError::FailedPrecondition(format!(
                "{field}: the {what} answer is larger than {limit} bytes"
            )),
            OutboundError::Redirect { .. } => ApiError::FailedPrecondition(format!(
                "{field}: the {what} answered with a redirect, which is not followed"
            )),
            OutboundError::BadUrl(_) => {
                ApiError::invalid(field, format!("{what}: not an http(s) URL"))
            }
            other => ApiError::Unavailable(format!("{what}: {other}")),
        }
    })
}

/// `body` as `T`; the parser's message (which may quote the body) is only logged.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::info!(error = %e, endpoint = what, "identity provider answer not understood");
        format!("the {what} answer is not the expected JSON")
    })
}

impl OidcClient {
    pub fn new(http: OutboundHttp) -> Self {
        Self {
            http,
            discovery: Mutex::default(),
            jwks: Mutex::default(),
        }
    }

    /// Under the operator's outbound policy, with this service's own address (`own`)
    /// refused besides the platform's stores.
    pub fn for_service(common: &CommonConfig, own: Option<SocketAddr>) -> Result<Self, ApiError> {
        let policy = EgressPolicy::from_config(common).with_own(own);
        let http = OutboundHttp::new(Arc::new(Egress::system(policy)), limits())
            .map_err(|e| ApiError::Internal(format!("http client: {e}")))?;
        Ok(Self::new(http))
    }

    /// The provider's discovery document; its `issuer` must be exactly `issuer`.
    pub async fn discover(&self, issuer: &str) -> Result<Arc<Discovery>, ApiError> {
        if let Some((at, d)) = self.discovery.lock().await.get(issuer)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let what = "discovery";
        let fetched = fetch(
            &self.http,
            self.http.request(http::Method::GET, &url),
            "issuer",
            what,
        )
        .await?;
        if !fetched.status.is_success() {
            return Err(ApiError::FailedPrecondition(format!(
                "issuer: discovery answered {}",
                fetched.status
            )));
        }
        let doc: Discovery = parse(&fetched.body, what)
            .map_err(|why| ApiError::FailedPrecondition(format!("issuer: {why}")))?;
        if doc.issuer != issuer {
            // What the document says is not repeated: the URL may be anything that answers.
            return Err(ApiError::FailedPrecondition(format!(
                "issuer: the discovery document names another issuer than {issuer:?}"
            )));
        }
        if !doc.code_challenge_methods_supported.is_empty()
            && !doc
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        {
            return Err(ApiError::FailedPrecondition(
                "issuer: the provider does not support PKCE S256".into(),
            ));
        }
        let doc = Arc::new(doc);
        self.discovery
            .lock()
            .await
            .insert(issuer.to_owned(), (Instant::now(), doc.clone()));
        Ok(doc)
    }

    /// Exchanges an authorization code (client_secret_basic, with the PKCE verifier) for the
    /// provider's ID token.
    pub async fn exchange(
        &self,
        discovery: &Discovery,
        client_id: &str,
        client_secret: &str,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<String, ApiError> {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let basic = STANDARD.encode(format!(
            "{}:{}",
            form_encode(client_id),
            form_encode(client_secret)
        ));
        let request = self
            .http
            .request(http::Method::POST, &discovery.token_endpoint)
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
                form_encode(code),
                form_encode(redirect_uri),
                form_encode(code_verifier)
            ));
        let what = "token endpoint";
        let fetched = fetch(&self.http, request, "issuer", what).await?;
        if !fetched.status.is_success() {
            return Err(refused(format!(
                "token endpoint answered {}{}",
                fetched.status,
                oauth_error(&fetched.body)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )));
        }
        let tokens: TokenResponse = parse(&fetched.body, what).map_err(refused)?;
        tokens
            .id_token
            .ok_or_else(|| refused("no id_token in the token response"))
    }

    /// Validates `id_token` and returns its claims.
    pub async fn validate_id_token(
        &self,
        discovery: &Discovery,
        id_token: &str,
        client_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Value, ApiError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| refused(format!("malformed id_token: {e}")))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(refused(format!(
                "id_token algorithm {:?} refused",
                header.alg
            )));
        }
        let key = self.key(discovery, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = SKEW_SECS as u64;
        validation.validate_nbf = true;
        validation.set_issuer(&[&discovery.issuer]);
        validation.set_audience(&[client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .map_err(|e| refused(format!("id_token: {e}")))?
            .claims;
        // OIDC Core 3.1.3.7: with several audiences, `azp` must be us.
        if let Some(Value::Array(aud)) = claims.get("aud")
            && aud.len() > 1
            && claims.get("azp").and_then(Value::as_str) != Some(client_id)
        {
            return Err(refused("id_token azp is not this client"));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        if iat > now + SKEW_SECS {
            return Err(refused("id_token issued in the future"));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(refused("id_token nonce does not match this login"));
        }
        Ok(claims)
    }

    async fn key(&self, discovery: &Discovery, kid: Option<&str>) -> Result<DecodingKey, ApiError> {
        for refetch in [false, true] {
            let set = self.key_set(&discovery.jwks_uri, refetch).await?;
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = jwk {
                return DecodingKey::from_jwk(jwk).map_err(|e| refused(format!("jwk: {e}")));
            }
        }
        Err(refused("id_token signed by an unknown key"))
    }

    async fn key_set(&self, uri: &str, refetch: bool) -> Result<Arc<JwkSet>, ApiError> {
        if let Some((at, set)) = self.jwks.lock().await.get(uri) {
            let fresh = if refetch {
                at.elapsed() < JWKS_REFETCH_AFTER
            } else {
                at.elapsed() < CACHE_FOR
            };
            if fresh {
                return Ok(set.clone());
            }
        }
        let what = "key set (jwks_uri)";
        let fetched = fetch(
            &self.http,
            self.http.request(http::Method::GET, uri),
            "issuer",
            what,
        )
        .await?;
        if !fetched.status.is_success() {
            return Err(ApiError::Unavailable(format!(
                "provider jwks {uri}: answered {}",
                fetched.status
            )));
        }
        let set: JwkSet = parse(&fetched.body, what).map_err(refused)?;
        let set = Arc::new(set);
        self.jwks
            .lock()
            .await
            .insert(uri.to_owned(), (Instant::now(), set.clone()));
        Ok(set)
    }
}

/// The OAuth error code of a token endpoint's refusal (RFC 6749 §5.2), when it is one of the
/// registered codes: a fixed word, never the provider's own text.
fn oauth_error(body: &[u8]) -> Option<&'static str> {
    const CODES: &[&str] = &[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    ];
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error")?.as_str()?;
    CODES.iter().find(|c| **c == code).copied()
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
