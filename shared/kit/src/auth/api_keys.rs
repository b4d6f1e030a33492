//! API keys of service accounts, checked by every service without a call to auth.
//!
//! The auth service appends `service_accounts.*` events; every service follows them with an
//! ordered consumer into an in-memory directory keyed by the key's SHA-256 digest. A revoked
//! key stops working as soon as the revocation event arrives (milliseconds), everywhere. Keys
//! are 256-bit random secrets, so a plain digest (not a slow password hash) protects them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ring::digest;
use tenantry_eventstore::{EventStore, StoredMessage, event_table, subject};
use tenantry_proto::events::v1 as pb;
use tokio::sync::watch;
use uuid::Uuid;

use super::{Role, TenantContext};

/// Every API key starts with this, so the verifier can tell keys from JWTs.
pub const API_KEY_PREFIX: &str = "tk_";
/// Aggregate type of a tenant's service accounts.
pub const AGGREGATE_TYPE: &str = "service_accounts";

/// Events of the `service_accounts` aggregate (owned by the auth service).
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAccountEvent {
    AccountCreated(pb::ServiceAccountCreated),
    ApiKeyCreated(pb::ApiKeyCreated),
    ApiKeyRevoked(pb::ApiKeyRevoked),
}

event_table!(ServiceAccountEvent {
    AccountCreated => "service_accounts.account_created.v1": pb::ServiceAccountCreated,
    ApiKeyCreated => "service_accounts.api_key_created.v1": pb::ApiKeyCreated,
    ApiKeyRevoked => "service_accounts.api_key_revoked.v1": pb::ApiKeyRevoked,
});

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

/// The live API keys of every tenant, as the event log says.
pub struct ApiKeyDirectory {
    entries: RwLock<Entries>,
}

impl ApiKeyDirectory {
    /// Follows the log from its start; returns once the directory has caught up.
    pub async fn follow(store: &EventStore) -> Result<Arc<Self>, tenantry_eventstore::StoreError> {
        let mut tail = store
            .tail(subject::type_filter(store.root(), AGGREGATE_TYPE)?)
            .await?;
        let directory = Arc::new(Self {
            entries: RwLock::default(),
        });
        let (caught_up, mut ready) = watch::channel(tail.pending_at_start == 0);
        let weak = Arc::downgrade(&directory);
        tokio::spawn(async move {
            while let Some((stored, pending)) = tail.next().await {
                let Some(directory) = weak.upgrade() else {
                    return; // every holder is gone
                };
                match stored {
                    Ok(stored) => directory.apply(&stored),
                    Err(e) => tracing::error!(error = %e, "api key directory: bad message"),
                }
                if pending == 0 {
                    let _ = caught_up.send(true);
                }
            }
        });
        let _ = ready.wait_for(|r| *r).await;
        Ok(directory)
    }

    fn apply(&self, message: &StoredMessage) {
        let events = match message.events::<ServiceAccountEvent>() {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, position = message.position, "api key directory: cannot decode");
                return;
            }
        };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for stored in events {
            let Ok(tenant_id) = Uuid::try_parse(&stored.meta.tenant_id) else {
                continue;
            };
            match stored.event {
                ServiceAccountEvent::AccountCreated(e) => {
                    if let (Ok(id), Ok(role)) = (
                        Uuid::try_parse(&e.service_account_id),
                        e.role.parse::<Role>(),
                    ) {
                        entries.accounts.insert(id, (tenant_id, role));
                    }
                }
                ServiceAccountEvent::ApiKeyCreated(e) => {
                    let Ok(service_account_id) = Uuid::try_parse(&e.service_account_id) else {
                        continue;
                    };
                    entries
                        .digests
                        .insert(e.key_id.clone(), e.key_digest.clone());
                    entries.keys.insert(
                        e.key_digest,
                        Key {
                            tenant_id,
                            service_account_id,
                            key_id: e.key_id,
                        },
                    );
                }
                ServiceAccountEvent::ApiKeyRevoked(e) => {
                    if let Some(d) = entries.digests.remove(&e.key_id) {
                        entries.keys.remove(&d);
                    }
                }
            }
        }
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
