//! Signing keys: sealed in Postgres (`signing_keys`), shared by every auth replica.
//!
//! Rotation publishes the new key at once but signs with it only from `activates_at`, one
//! publish lead later: a verifier refreshes its JWKS on an unknown key id at most once per
//! refresh interval, so a lead at least that long means no verifier meets a token before it
//! can know the key. The old key stops signing at that moment and stays published until
//! every token it signed has expired (token lifetime + clock skew).
//! Private keys live outside the event log on purpose: the log is immutable and replicated
//! to every consumer; a signing key must be deletable.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tenantry_kit::auth::SigningKey;
use tenantry_kit::{ApiError, Clock};

use crate::crypto::random;
use crate::crypto::seal::Sealer;

const SEAL_PURPOSE: &str = "signing-key";
/// Tokens are accepted this long after `exp` by verifiers (their leeway).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Serialises key creation between replicas.
const KEYS_LOCK: i64 = 0x7465_6e61_6e74_6b65;

/// `kid, sealed_seed, created_at, activates_at, retired_at`.
type KeyRow = (
    String,
    Vec<u8>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

#[derive(Clone)]
pub struct KeyRecord {
    pub key: SigningKey,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    fn signs_at(&self, now: DateTime<Utc>) -> bool {
        self.activates_at <= now && self.retired_at.is_none_or(|r| r > now)
    }
}

/// The keys, as last read from Postgres.
pub struct KeyRing {
    pub keys: Vec<KeyRecord>,
    /// `/.well-known/jwks.json`, rendered once per reload.
    pub jwks: String,
}

pub struct KeyStore {
    pool: PgPool,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    /// How long a new key is published before it signs.
    pub publish_lead: Duration,
    /// Longest access-token lifetime: how long a retired key stays published (plus skew).
    token_ttl: Duration,
    ring: RwLock<Arc<KeyRing>>,
}

impl KeyStore {
    /// Loads the keys, creating the first one if there is none.
    pub async fn open(
        pool: PgPool,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        publish_lead: Duration,
        token_ttl: Duration,
    ) -> Result<Self, ApiError> {
        let store = Self {
            pool,
            sealer,
            clock,
            publish_lead,
            token_ttl,
            ring: RwLock::new(Arc::new(KeyRing {
                keys: vec![],
                jwks: String::new(),
            })),
        };
        let mut tx = store.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEYS_LOCK)
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?;
        if count == 0 {
            let now = store.clock.now();
            store.insert(&mut tx, now, now).await?;
        }
        tx.commit().await?;
        store.reload().await?;
        Ok(store)
    }

    async fn insert(
        &self,
        tx: &mut sqlx::PgConnection,
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> Result<SigningKey, ApiError> {
        let kid = format!("k{}_{}", now.format("%Y%m%d%H%M%S"), random::short_id());
        let seed = random::bytes::<32>();
        let key = SigningKey::from_seed(kid.clone(), seed);
        sqlx::query(
            "INSERT INTO signing_keys (kid, sealed_seed, created_at, activates_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&kid)
        .bind(self.sealer.seal(SEAL_PURPOSE, &seed))
        .bind(now)
        .bind(activates_at)
        .execute(&mut *tx)
        .await?;
        Ok(key)
    }

    /// Adds a key that signs from `now + publish_lead`; the current ones retire then.
    pub async fn rotate(&self) -> Result<KeyRecord, ApiError> {
        let now = self.clock.now();
        let activates_at = now + chrono::Duration::from_std(self.publish_lead).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEYS_LOCK)
            .execute(&mut *tx)
            .await?;
        let key = self.insert(&mut tx, now, activates_at).await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND (retired_at IS NULL OR retired_at > $1)",
        )
        .bind(activates_at)
        .bind(&key.kid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(KeyRecord {
            key,
            created_at: now,
            activates_at,
            retired_at: None,
        })
    }

    /// Re-reads the published keys (every few seconds, and after a rotation).
    pub async fn reload(&self) -> Result<(), ApiError> {
        let now = self.clock.now();
        let horizon =
            now - chrono::Duration::from_std(self.token_ttl + CLOCK_SKEW).unwrap_or_default();
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, sealed_seed, created_at, activates_at, retired_at FROM signing_keys
                 WHERE retired_at IS NULL OR retired_at > $1 ORDER BY activates_at",
        )
        .bind(horizon)
        .fetch_all(&self.pool)
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for (kid, sealed, created_at, activates_at, retired_at) in rows {
            let seed: [u8; 32] = self
                .sealer
                .open(SEAL_PURPOSE, &sealed)
                .map_err(|e| ApiError::Internal(format!("signing key {kid}: {e}")))?
                .try_into()
                .map_err(|_| ApiError::Internal(format!("signing key {kid}: bad length")))?;
            keys.push(KeyRecord {
                key: SigningKey::from_seed(kid, seed),
                created_at,
                activates_at,
                retired_at,
            });
        }
        let jwks =
            tenantry_kit::auth::jwks(&keys.iter().map(|k| &k.key).collect::<Vec<_>>()).to_string();
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(KeyRing { keys, jwks });
        Ok(())
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key that signs now: the most recently activated one.
    pub fn signing_key(&self) -> Result<SigningKey, ApiError> {
        let now = self.clock.now();
        self.ring()
            .keys
            .iter()
            .rev()
            .find(|k| k.signs_at(now))
            .map(|k| k.key.clone())
            .ok_or_else(|| ApiError::Unavailable("no signing key is active".into()))
    }

    /// Reloads every `every` until `stop` resolves, so rotations by another replica and
    /// expired keys show up here.
    pub async fn reload_every(self: Arc<Self>, every: Duration, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {
                    if let Err(e) = self.reload().await {
                        tracing::warn!(error = %e, "signing keys reload failed");
                    }
                }
            }
        }
    }
}
