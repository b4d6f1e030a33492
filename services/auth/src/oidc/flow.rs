//! Starting and completing a federated login.
//!
//! Begin stores the pending login (state digest → tenant, provider, nonce, PKCE verifier,
//! redirect URI) for ten minutes; complete deletes it in the same statement that reads it,
//! so a `state` works once, on one replica, whatever the timing. Logins nobody completes are
//! deleted by [`sweep_every`] once expired.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::{ApiError, Clock, Role};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::claims;
use super::client::{OidcClient, form_encode};
use crate::crypto::random;
use crate::crypto::seal::Sealer;

pub const LOGIN_TTL: Duration = Duration::minutes(10);
pub const SECRET_PURPOSE: &str = "oidc-client-secret";

pub struct Begun {
    pub authorization_url: String,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts a login with `provider` of `tenant_id`; `redirect_uri` must be registered exactly.
pub async fn begin(
    pool: &PgPool,
    client: &OidcClient,
    tenant_id: Uuid,
    provider: &pb::OidcProviderConfigured,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> Result<Begun, ApiError> {
    if !provider.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(ApiError::invalid(
            "redirect_uri",
            "is not registered for this provider (exact match required)",
        ));
    }
    let discovery = client.discover(&provider.issuer).await?;
    let state = random::secret();
    let nonce = random::secret();
    let verifier = random::secret();
    let challenge = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        random::digest(&verifier),
    );
    let expires_at = now + LOGIN_TTL;
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    sqlx::query(
        "INSERT INTO oidc_logins (state_digest, tenant_id, provider_id, nonce, code_verifier, redirect_uri, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(random::digest(&state))
    .bind(tenant_id)
    .bind(Uuid::try_parse(&provider.provider_id).unwrap_or_default())
    .bind(&nonce)
    .bind(&verifier)
    .bind(redirect_uri)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let separator = if discovery.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let authorization_url = format!(
        "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        discovery.authorization_endpoint,
        form_encode(&provider.client_id),
        form_encode(redirect_uri),
        form_encode(&provider.scopes.join(" ")),
        form_encode(&state),
        form_encode(&nonce),
        challenge,
    );
    Ok(Begun {
        authorization_url,
        state,
        expires_at,
    })
}

/// A login waiting for its code.
pub struct Pending {
    pub tenant_id: Uuid,
    pub provider_id: Uuid,
    nonce: String,
    code_verifier: String,
    redirect_uri: String,
}

/// Takes the pending login of `state` (once: a replayed state finds nothing).
pub async fn take(pool: &PgPool, state: &str, now: DateTime<Utc>) -> Result<Pending, ApiError> {
    let mut tx = scoped_tx(pool, Scope::Platform).await?;
    let row: Option<(Uuid, Uuid, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state_digest = $1
         RETURNING tenant_id, provider_id, nonce, code_verifier, redirect_uri, expires_at",
    )
    .bind(random::digest(state))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let (tenant_id, provider_id, nonce, code_verifier, redirect_uri, expires_at) =
        row.ok_or_else(|| ApiError::Unauthenticated("unknown, used or expired state".into()))?;
    if expires_at <= now {
        return Err(ApiError::Unauthenticated(
            "unknown, used or expired state".into(),
        ));
    }
    Ok(Pending {
        tenant_id,
        provider_id,
        nonce,
        code_verifier,
        redirect_uri,
    })
}

/// Deletes the expired pending logins; returns how many.
pub async fn sweep(pool: &PgPool, now: DateTime<Utc>) -> Result<u64, ApiError> {
    let mut tx = scoped_tx(pool, Scope::Platform).await?;
    let deleted = sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

/// Sweeps every `every` until `stop` resolves: begun logins that nobody completes would
/// otherwise stay in the table for good (every replica sweeps; a delete is idempotent).
pub async fn sweep_every(
    pool: PgPool,
    clock: std::sync::Arc<dyn Clock>,
    every: std::time::Duration,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {
                match sweep(&pool, clock.now()).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "expired pending oidc logins swept"),
                    Err(e) => tracing::warn!(error = %e, "sweeping pending oidc logins failed"),
                }
            }
        }
    }
}

/// Who the provider says signed in, and the role their claims map to.
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub role: Role,
}

/// Exchanges the code and turns the validated ID token into an [`Identity`].
pub async fn complete(
    client: &OidcClient,
    sealer: &Sealer,
    pending: &Pending,
    provider: &pb::OidcProviderConfigured,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Identity, ApiError> {
    let discovery = client.discover(&provider.issuer).await?;
    let secret = sealer
        .open(SECRET_PURPOSE, &provider.client_secret_sealed)
        .map_err(|e| ApiError::Internal(format!("client secret: {e}")))?;
    let secret = String::from_utf8(secret)
        .map_err(|_| ApiError::Internal("client secret is not UTF-8".into()))?;
    let id_token = client
        .exchange(
            &discovery,
            &provider.client_id,
            &secret,
            code,
            &pending.redirect_uri,
            &pending.code_verifier,
        )
        .await?;
    let claims = client
        .validate_id_token(
            &discovery,
            &id_token,
            &provider.client_id,
            &pending.nonce,
            now.timestamp(),
        )
        .await?;
    map_identity(&claims, provider, pending.tenant_id)
}

/// Applies the provider's claim and role mappings to validated claims.
pub fn map_identity(
    claims: &Value,
    provider: &pb::OidcProviderConfigured,
    tenant_id: Uuid,
) -> Result<Identity, ApiError> {
    let mappings = provider.claims.clone().unwrap_or_default();
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthenticated("identity provider: id_token without sub".into())
        })?;
    if !mappings.tenant_id.is_empty() {
        let tenants = claims::strings_at(claims, &mappings.tenant_id);
        if !tenants.iter().any(|t| *t == tenant_id.to_string()) {
            return Err(ApiError::PermissionDenied(format!(
                "the identity provider does not place this user in tenant {tenant_id} (claim {})",
                mappings.tenant_id
            )));
        }
    }
    let idp_roles = claims::strings_at(claims, &mappings.roles);
    let role_mappings = provider.role_mappings.clone().into_iter().collect();
    let role = claims::mapped_role(&idp_roles, &role_mappings).ok_or_else(|| {
        ApiError::PermissionDenied(format!(
            "none of the user's roles {idp_roles:?} (claim {}) maps to a Tenantry role",
            mappings.roles
        ))
    })?;
    let email = claims::strings_at(claims, &mappings.email)
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(Identity {
        issuer: provider.issuer.clone(),
        subject: subject.to_owned(),
        email,
        role,
    })
}
