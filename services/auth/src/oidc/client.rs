//! Talking to an identity provider: discovery, its JWKS, the token endpoint, and validating
//! the ID token it returns (signature, `iss`, `aud`/`azp`, `exp`, `iat`, `nonce`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tenantry_kit::ApiError;
use tokio::sync::Mutex;

/// Discovery documents and key sets are re-read after this long.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// An unknown `kid` re-reads the key set at most this often.
const JWKS_REFETCH_AFTER: Duration = Duration::from_secs(10);
const SKEW_SECS: i64 = 60;
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
    http: reqwest::Client,
    discovery: Mutex<HashMap<String, (Instant, Arc<Discovery>)>>,
    jwks: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

fn refused(why: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated(format!("identity provider: {}", why.into()))
}

impl OidcClient {
    pub fn new() -> Result<Self, ApiError> {
        tenantry_kit::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A provider's redirects are not followed with our credentials.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Internal(format!("http client: {e}")))?;
        Ok(Self {
            http,
            discovery: Mutex::default(),
            jwks: Mutex::default(),
        })
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
        let doc: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ApiError::Unavailable(format!("discovery {url}: {e}")))?
            .json()
            .await
            .map_err(|e| {
                ApiError::FailedPrecondition(format!("issuer: discovery document: {e}"))
            })?;
        if doc.issuer != issuer {
            return Err(ApiError::FailedPrecondition(format!(
                "issuer: discovery says {:?}, expected {issuer:?}",
                doc.issuer
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
        let response = self
            .http
            .post(&discovery.token_endpoint)
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
            ))
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(refused(format!(
                "token endpoint answered {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        let tokens: TokenResponse = response
            .json()
            .await
            .map_err(|e| refused(format!("token response: {e}")))?;
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
        let set: JwkSet = self
            .http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ApiError::Unavailable(format!("provider jwks {uri}: {e}")))?
            .json()
            .await
            .map_err(|e| refused(format!("provider jwks: {e}")))?;
        let set = Arc::new(set);
        self.jwks
            .lock()
            .await
            .insert(uri.to_owned(), (Instant::now(), set.clone()));
        Ok(set)
    }
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
