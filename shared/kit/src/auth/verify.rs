//! Access-token verification (RFC 8725 hygiene): EdDSA only, a known key id, our issuer and
//! audience, `typ` `at+jwt`, time claims within a 60 s skew, bounded size.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::api_keys::API_KEY_PREFIX;
use super::{ApiKeyDirectory, JwksError, JwksSource, Role, TenantContext};
use crate::ApiError;

/// `typ` header of access tokens (RFC 9068); an ID token (`JWT`) is not an access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Tokens larger than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Claims of a Tenantry access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    /// Absent only on platform-admin tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub role: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks: JwksSource,
    /// An unknown key id triggers at most one JWKS refresh per interval.
    pub refresh_interval: Duration,
}

/// Verifies bearer tokens with a cached JWKS. Cheap to share behind an `Arc`.
pub struct Verifier {
    config: VerifierConfig,
    validation: Validation,
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    last_refresh: Mutex<Option<Instant>>,
    http: reqwest::Client,
    /// Tokens already verified, until they expire: a client sends the same token for its
    /// whole lifetime, and a signature check costs far more than a lookup.
    verified: RwLock<HashMap<String, (TenantContext, i64)>>,
    /// Where API keys are checked; without it they are refused.
    api_keys: Option<Arc<ApiKeyDirectory>>,
}

/// Most verified tokens remembered; the map is emptied when full.
const VERIFIED_CAPACITY: usize = 10_000;

impl Verifier {
    /// Loads the JWKS once; fails if a file cannot be read (a URL is retried later).
    pub async fn new(config: VerifierConfig) -> Result<Self, JwksError> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| JwksError::from_reason(format!("http client: {e}")))?;
        // The auth service may start after us: an unreachable URL is fetched again on the
        // first token instead of failing the start. A bad file is a configuration error.
        let (keys, loaded_at) = match config.jwks.load(&http).await {
            Ok(keys) => (keys, Some(Instant::now())),
            Err(e) if matches!(config.jwks, JwksSource::Url(_)) => {
                tracing::warn!(error = %e, "JWKS not reachable yet; will fetch on the first token");
                (HashMap::new(), None)
            }
            Err(e) => return Err(e),
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 60;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Ok(Self {
            config,
            validation,
            keys: RwLock::new(Arc::new(keys)),
            last_refresh: Mutex::new(loaded_at),
            http,
            verified: RwLock::default(),
            api_keys: None,
        })
    }

    /// Accepts the API keys of `directory` as bearer tokens too.
    pub fn with_api_keys(mut self, directory: Arc<ApiKeyDirectory>) -> Self {
        self.api_keys = Some(directory);
        self
    }

    /// Verifies `token` and returns its caller. Every failure is `UNAUTHENTICATED`.
    pub async fn verify(&self, token: &str) -> Result<TenantContext, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::Unauthenticated("token too large".into()));
        }
        if token.starts_with(API_KEY_PREFIX) {
            // Never remembered: a revocation must take effect at once.
            return self
                .api_keys
                .as_ref()
                .and_then(|d| d.lookup(token))
                .ok_or_else(|| ApiError::Unauthenticated("invalid API key".into()));
        }
        let now = chrono::Utc::now().timestamp();
        let remembered = self
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned();
        if let Some((context, exp)) = remembered
            && now < exp
        {
            return Ok(context);
        }
        let (context, exp) = self.verify_signed(token).await?;
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(token.to_owned(), (context.clone(), exp));
        Ok(context)
    }

    /// The full check, without the memory of tokens already verified (benchmarks, tests).
    pub async fn verify_fresh(&self, token: &str) -> Result<TenantContext, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::Unauthenticated("token too large".into()));
        }
        self.verify_signed(token).await.map(|(context, _)| context)
    }

    /// The full check; returns the caller and the token's `exp`.
    async fn verify_signed(&self, token: &str) -> Result<(TenantContext, i64), ApiError> {
        let deny = |why: &str| ApiError::Unauthenticated(why.to_owned());
        let header = decode_header(token).map_err(|_| deny("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(deny("unsupported algorithm"));
        }
        let typ = header.typ.as_deref().unwrap_or_default();
        if !(typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || typ.eq_ignore_ascii_case("application/at+jwt"))
        {
            return Err(deny("not an access token"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| deny("missing key id"))?;
        if kid.is_empty()
            || kid.len() > 128
            || !kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(deny("malformed key id"));
        }
        let key = match self.key(kid) {
            Some(key) => key,
            None => {
                self.refresh_if_due().await;
                self.key(kid).ok_or_else(|| deny("unknown key id"))?
            }
        };
        let claims = decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|e| deny(&format!("invalid token: {e}")))?
            .claims;
        let role: Role = claims.role.parse().map_err(|_| deny("unknown role"))?;
        let tenant_id = match (&claims.tenant_id, role) {
            (Some(t), _) => Some(Uuid::try_parse(t).map_err(|_| deny("malformed tenant_id"))?),
            (None, Role::PlatformAdmin) => None,
            (None, _) => return Err(deny("missing tenant_id")),
        };
        Ok((
            TenantContext {
                tenant_id,
                subject: claims.sub,
                role,
                token_id: claims.jti,
            },
            claims.exp,
        ))
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        keys.get(kid).cloned()
    }

    /// Re-reads the JWKS unless it was read less than `refresh_interval` ago, so a flood of
    /// tokens with made-up key ids cannot turn into a flood of fetches.
    async fn refresh_if_due(&self) {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.config.refresh_interval) {
            return;
        }
        *last = Some(Instant::now());
        match self.config.jwks.load(&self.http).await {
            Ok(keys) => *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys),
            Err(e) => tracing::warn!(error = %e, "jwks refresh failed, keeping the cached keys"),
        }
    }
}

impl JwksError {
    fn from_reason(reason: String) -> Self {
        Self(reason)
    }
}
