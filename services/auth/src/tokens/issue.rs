//! Signing access tokens.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tenantry_kit::auth::AccessClaims;
use tenantry_kit::{ApiError, Clock, Role};
use uuid::Uuid;

use super::KeyStore;

/// Access tokens live at most this long.
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

pub struct Issuer {
    pub keys: Arc<KeyStore>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub clock: Arc<dyn Clock>,
}

/// A signed access token and when it expires.
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Issuer {
    /// A token for `subject` acting as `role` in `tenant_id` (`None` only for platform admins).
    pub fn access_token(
        &self,
        subject: &str,
        tenant_id: Option<Uuid>,
        role: Role,
    ) -> Result<AccessToken, ApiError> {
        let now = self.clock.now();
        let ttl = self.access_ttl.min(MAX_ACCESS_TTL);
        let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or_default();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.audience.clone(),
            tenant_id: tenant_id.map(|t| t.to_string()),
            role: role.as_str().to_owned(),
            jti: Uuid::now_v7().to_string(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = self
            .keys
            .signing_key()?
            .sign(&claims)
            .map_err(|e| ApiError::Internal(format!("sign: {e}")))?;
        Ok(AccessToken { token, expires_at })
    }
}
