//! API keys of service accounts, checked by every service without a call to auth.
//!
//! The auth service appends `service_accounts.*` events; every service follows them with an
//! ordered consumer into an in-memory directory keyed by the key's SHA-256 digest. A revoked
//! key stops working as soon as the revocation event arrives (milliseconds), everywhere. Keys
//! are 256-bit random secrets, so a plain digest (not a slow password hash) protects them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ring::digest;
use tenantry_contracts::auth::ServiceAccountEvent;
use tenantry_eventstore::{
    EventPayload, EventStore, Follow, FollowError, Follower, StoredMessage, subject,
};
use uuid::Uuid;

use super::{Role, TenantContext};

/// Every API key starts with this, so the verifier can tell keys from JWTs.
pub const API_KEY_PREFIX: &str = "tk_";

/// SHA-256 of a secret.
pub fn digest(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

#[derive(Debug, Clone)]
struct Key {
    tenant_id: Uuid,
    service_account_id: Uuid,
    key_id: String,
}

#[derive(Default)]
struct Entries {
    /// By digest: the live keys.
    keys: HashMap<Vec<u8>, Key>,
    /// key id → digest, to apply revocations.
    digests: HashMap<String, Vec<u8>>,
    /// service account → (tenant, role).
    accounts: HashMap<Uuid, (Uuid, Role)>,
}

impl Entries {
    fn apply(&mut self, tenant_id: Uuid, event: ServiceAccountEvent) {
        match event {
            ServiceAccountEvent::AccountCreated(e) => {
                if let (Ok(id), Ok(role)) = (
                    Uuid::try_parse(&e.service_account_id),
                    e.role.parse::<Role>(),
                ) {
                    self.accounts.insert(id, (tenant_id, role));
                }
            }
            ServiceAccountEvent::ApiKeyCreated(e) => {
                let Ok(service_account_id) = Uuid::try_parse(&e.service_account_id) else {
                    return;
                };
                self.digests.insert(e.key_id.clone(), e.key_digest.clone());
                self.keys.insert(
                    e.key_digest,
                    Key {
                        tenant_id,
                        service_account_id,
                        key_id: e.key_id,
                    },
                );
            }
            ServiceAccountEvent::ApiKeyRevoked(e) => {
                if let Some(d) = self.digests.remove(&e.key_id) {
                    self.keys.remove(&d);
                }
            }
        }
    }
}

/// The live API keys of every tenant, as the event log says.
pub struct ApiKeyDirectory {
    entries: Arc<RwLock<Entries>>,
    follower: Follower,
}

/// Feeds the directory from the log.
struct Apply(Arc<RwLock<Entries>>);

impl Follow for Apply {
    fn apply(&mut self, message: &StoredMessage) -> Result<(), FollowError> {
        // Decoded whole before anything applies: a bad message changes nothing.
        let events = message.events::<ServiceAccountEvent>()?;
        let mut entries = self.0.write().unwrap_or_else(|p| p.into_inner());
        for stored in events {
            let Ok(tenant_id) = Uuid::try_parse(&stored.meta.tenant_id) else {
                continue;
            };
            entries.apply(tenant_id, stored.event);
        }
        Ok(())
    }
}

impl ApiKeyDirectory {
    /// Follows the log from its start; returns once the directory has caught up.
    pub async fn follow(store: &EventStore) -> Result<Arc<Self>, tenantry_eventstore::StoreError> {
        let entries = Arc::new(RwLock::new(Entries::default()));
        let filter = subject::type_filter(store.root(), ServiceAccountEvent::AGGREGATE_TYPE)?;
        let follower = store
            .follow("api_keys", filter, Apply(entries.clone()))
            .await?;
        Ok(Arc::new(Self { entries, follower }))
    }

    /// The follower behind the directory: `/readyz` reports it while it is not live.
    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// The caller an API key stands for, if it is live.
    pub fn lookup(&self, api_key: &str) -> Option<TenantContext> {
        let d = digest(api_key);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let key = entries.keys.get(&d)?;
        let (tenant_id, role) = *entries.accounts.get(&key.service_account_id)?;
        (tenant_id == key.tenant_id).then(|| TenantContext {
            tenant_id: Some(tenant_id),
            subject: format!("service_account:{}", key.service_account_id),
            role,
            token_id: format!("api_key:{}", key.key_id),
        })
    }
}
