//! Access-token verification (RFC 8725 hygiene): EdDSA only, a known key id, our issuer and
//! audience, `typ` `at+jwt`, time claims within a 60 s skew, bounded size.
//!
//! The key set is read again when a token names an unknown key id (a rotation), and at least
//! every `max_age` (at most [`MAX_JWKS_AGE`]) so a key withdrawn from the JWKS, a leaked one
//! say, stops being trusted within that time: tokens it signed are refused, including those
//! already remembered as verified.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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
/// The longest a read of the key set is trusted: a withdrawn key stops working within this.
pub const MAX_JWKS_AGE: Duration = Duration::from_secs(300);

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
    /// The key set is read again once it is this old (capped at [`MAX_JWKS_AGE`]).
    pub max_age: Duration,
}

/// Verifies bearer tokens with a cached JWKS. Cheap to share behind an `Arc`.
pub struct Verifier {
    config: VerifierConfig,
    validation: Validation,
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    /// When the key set was last read, in Unix seconds (0: never). Compared with the clock
    /// reading every verification makes anyway, so the periodic refresh costs no extra read.
    loaded_at: AtomicI64,
    /// `max_age` in seconds, at least 1.
    max_age_secs: i64,
    /// Bumped whenever a refresh drops a key id: remembered tokens of an older generation
    /// are verified again (and refused if their key is gone).
    generation: AtomicU64,
    /// When a read was last attempted; held while reading, so one caller reads at a time.
    last_refresh: Mutex<Option<Instant>>,
    http: reqwest::Client,
    /// Tokens already verified, until they expire (and while the key set keeps their
    /// generation): a client sends the same token for its whole lifetime, and a signature
    /// check costs far more than a lookup.
    verified: RwLock<HashMap<String, Remembered>>,
    /// Where API keys are checked; without it they are refused.
    api_keys: Option<Arc<ApiKeyDirectory>>,
}

/// Most verified tokens remembered; the map is emptied when full.
const VERIFIED_CAPACITY: usize = 10_000;

/// A verified token: its caller, its `exp`, and the key-set generation it was checked under.
#[derive(Clone)]
struct Remembered {
    context: TenantContext,
    exp: i64,
    generation: u64,
}

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
        let max_age = config.max_age.clamp(Duration::from_secs(1), MAX_JWKS_AGE);
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
            loaded_at: AtomicI64::new(if loaded_at.is_some() {
                chrono::Utc::now().timestamp()
            } else {
                0
            }),
            max_age_secs: i64::try_from(max_age.as_secs()).unwrap_or(1),
            generation: AtomicU64::new(0),
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
        self.refresh_if_old(now).await;
        // Read before verifying: a key dropped meanwhile makes this entry stale at once.
        let generation = self.generation.load(Ordering::Acquire);
        let remembered = self
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned();
        if let Some(r) = remembered
            && now < r.exp
            && r.generation == generation
        {
            return Ok(r.context);
        }
        let (context, exp) = self.verify_signed(token).await?;
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(
            token.to_owned(),
            Remembered {
                context: context.clone(),
                exp,
                generation,
            },
        );
        Ok(context)
    }

    /// The full check, without the memory of tokens already verified (benchmarks, tests).
    pub async fn verify_fresh(&self, token: &str) -> Result<TenantContext, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::Unauthenticated("token too large".into()));
        }
        self.refresh_if_old(chrono::Utc::now().timestamp()).await;
        self.verify_signed(token).await.map(|(context, _)| context)
    }

    /// Reads the key set again if it is older than `max_age` (`now` in Unix seconds).
    async fn refresh_if_old(&self, now: i64) {
        if now - self.loaded_at.load(Ordering::Relaxed) >= self.max_age_secs {
            self.refresh(false).await;
        }
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
                self.refresh(true).await;
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

    /// Re-reads the JWKS unless a read was attempted less than `refresh_interval` ago, so a
    /// flood of tokens with made-up key ids cannot turn into a flood of fetches. An unknown key
    /// id waits for the read (`wait`); the periodic refresh does not: while one caller reads,
    /// the others go on with the keys they have.
    async fn refresh(&self, wait: bool) {
        let mut last = if wait {
            self.last_refresh.lock().await
        } else {
            match self.last_refresh.try_lock() {
                Ok(last) => last,
                Err(_) => return,
            }
        };
        if last.is_some_and(|t| t.elapsed() < self.config.refresh_interval) {
            return;
        }
        *last = Some(Instant::now());
        match self.config.jwks.load(&self.http).await {
            Ok(keys) => {
                let mut current = self.keys.write().unwrap_or_else(|p| p.into_inner());
                let dropped = current.keys().any(|kid| !keys.contains_key(kid));
                *current = Arc::new(keys);
                drop(current);
                if dropped {
                    tracing::info!("jwks: a key was withdrawn; tokens it signed are refused");
                    self.generation.fetch_add(1, Ordering::Release);
                }
                self.loaded_at
                    .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
            }
            // Kept rather than dropped: the auth service being unreachable must not refuse
            // every caller. A withdrawn key stays trusted until the set can be read again.
            Err(e) => tracing::warn!(error = %e, "jwks refresh failed, keeping the cached keys"),
        }
    }
}

impl JwksError {
    fn from_reason(reason: String) -> Self {
        Self(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{SigningKey, jwks};

    fn claims() -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            iss: "tenantry".into(),
            sub: "u1".into(),
            aud: "tenantry".into(),
            tenant_id: Some(Uuid::now_v7().to_string()),
            role: "member".into(),
            jti: Uuid::now_v7().to_string(),
            iat: now,
            nbf: now,
            exp: now + 600,
        }
    }

    #[tokio::test]
    async fn a_withdrawn_key_is_refused_once_the_set_is_old_even_for_remembered_tokens() {
        let (k1, k2) = (SigningKey::generate("k1"), SigningKey::generate("k2"));
        let path = std::env::temp_dir().join(format!("jwks-{}.json", Uuid::new_v4().simple()));
        std::fs::write(&path, jwks(&[&k1, &k2]).to_string()).unwrap();
        let verifier = Verifier::new(VerifierConfig {
            issuer: "tenantry".into(),
            audience: "tenantry".into(),
            jwks: JwksSource::File(path.clone()),
            refresh_interval: Duration::ZERO,
            max_age: Duration::from_secs(3600),
        })
        .await
        .unwrap();
        assert_eq!(verifier.max_age_secs, 300, "capped at MAX_JWKS_AGE");
        let (old, kept) = (k1.sign(&claims()).unwrap(), k2.sign(&claims()).unwrap());
        verifier.verify(&old).await.unwrap();
        verifier.verify(&kept).await.unwrap();

        std::fs::write(&path, jwks(&[&k2]).to_string()).unwrap();
        // Not yet re-read: still trusted (the window the setting bounds).
        verifier.verify(&old).await.unwrap();
        // As if `max_age` had passed since the last read.
        verifier.loaded_at.store(0, Ordering::Relaxed);
        let e = verifier.verify(&old).await.unwrap_err();
        assert!(e.to_string().contains("unknown key id"), "{e}");
        assert!(verifier.verify_fresh(&old).await.is_err());
        verifier
            .verify(&kept)
            .await
            .expect("the remaining key still verifies");
        std::fs::remove_file(&path).unwrap();
    }
}
