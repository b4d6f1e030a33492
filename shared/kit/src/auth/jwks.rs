//! Where the verification keys come from: a JWKS file (development, tests) or URL (the auth
//! service's `/.well-known/jwks.json`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use thiserror::Error;

#[derive(Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
    /// In the same process as the keys (the auth service verifying its own tokens).
    Local(Arc<dyn Fn() -> String + Send + Sync>),
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "File({})", p.display()),
            Self::Url(u) => write!(f, "Url({u})"),
            Self::Local(_) => f.write_str("Local"),
        }
    }
}

impl JwksSource {
    /// `http://…`/`https://…` is a URL, anything else a file path.
    pub fn parse(value: &str) -> Self {
        if value.starts_with("http://") || value.starts_with("https://") {
            Self::Url(value.to_owned())
        } else {
            Self::File(PathBuf::from(value))
        }
    }

    /// Fetches the set and keeps the Ed25519 signing keys, by key id.
    pub(crate) async fn load(
        &self,
        http: &reqwest::Client,
    ) -> Result<HashMap<String, DecodingKey>, JwksError> {
        let body = match self {
            Self::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| JwksError(format!("read {}: {e}", path.display())))?,
            Self::Url(url) => http
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| JwksError(format!("fetch {url}: {e}")))?
                .bytes()
                .await
                .map_err(|e| JwksError(format!("fetch {url}: {e}")))?
                .to_vec(),
            Self::Local(render) => render().into_bytes(),
        };
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| JwksError(format!("parse JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let is_ed25519 = matches!(
                &jwk.algorithm,
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519
            );
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if !is_ed25519 {
                continue;
            }
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| JwksError(format!("key {kid}: {e}")))?;
            keys.insert(kid, key);
        }
        Ok(keys)
    }
}

#[derive(Debug, Error)]
#[error("JWKS: {0}")]
pub struct JwksError(pub(crate) String);
