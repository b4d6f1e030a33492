//! The development key set: an Ed25519 key in `.tenantry/dev/signing.key` and its public JWKS
//! in `.tenantry/dev/jwks.json`, which the services verify tokens against by default. Stands
//! in for the auth service until it exists; never use it in production.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tenantry_kit::Role;
use tenantry_kit::auth::{AccessClaims, SigningKey, jwks};

/// The `--jwks` default of every service.
pub const DEFAULT_JWKS: &str = ".tenantry/dev/jwks.json";
const DIR: &str = ".tenantry/dev";
const KID: &str = "dev-1";
const TOKEN_HOURS: i64 = 8;

pub fn jwks_path() -> PathBuf {
    PathBuf::from(DEFAULT_JWKS)
}

/// Loads the development key, creating it (and the JWKS) on first use.
pub fn ensure() -> anyhow::Result<SigningKey> {
    let key_path = PathBuf::from(DIR).join("signing.key");
    let key = if key_path.exists() {
        let text = std::fs::read_to_string(&key_path)
            .with_context(|| format!("read {}", key_path.display()))?;
        let seed: [u8; 32] = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{} is not a base64 Ed25519 seed", key_path.display()))?;
        SigningKey::from_seed(KID, seed)
    } else {
        std::fs::create_dir_all(DIR)?;
        let key = SigningKey::generate(KID);
        std::fs::write(&key_path, STANDARD.encode(key.seed()))?;
        key
    };
    std::fs::write(jwks_path(), jwks(&[&key]).to_string())?;
    Ok(key)
}

/// A development access token (issuer and audience `tenantry`, the services' defaults).
pub fn token(key: &SigningKey, tenant: Option<&str>, role: &str) -> anyhow::Result<String> {
    let role: Role = role
        .parse()
        .map_err(|_| anyhow::anyhow!("role must be viewer, member, owner or platform_admin"))?;
    if tenant.is_none() && role != Role::PlatformAdmin {
        anyhow::bail!("--tenant is required for role {role}");
    }
    if let Some(t) = tenant {
        uuid::Uuid::try_parse(t).context("--tenant must be a tenant id (UUID)")?;
    }
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: "tenantry".into(),
        sub: "dev-user".into(),
        aud: "tenantry".into(),
        tenant_id: tenant.map(str::to_owned),
        role: role.as_str().into(),
        jti: uuid::Uuid::now_v7().to_string(),
        iat: now,
        nbf: now,
        exp: now + TOKEN_HOURS * 3600,
    };
    Ok(key.sign(&claims)?)
}
