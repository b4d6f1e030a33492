//! API keys of service accounts, checked by every service without a call to auth.
//!
//! The auth service appends `service_accounts.*` events; every service follows them with an
//! ordered consumer into an in-memory directory keyed by the key's SHA-256 digest. A revoked
//! key stops working as soon as the revocation event arrives (milliseconds), everywhere. Keys
//! are 256-bit random secrets, so a plain digest (not a slow password hash) protects them.
//!
//! Accounts live in a tenant (its keys act in that tenant, with a tenant role) or in the
//! platform tenant (`tenantry_eventstore::PLATFORM_TENANT`): the platform's service accounts,
//! Tenantry's services calling each other (ADR 0011), whose keys act as `platform_admin` with
//! no tenant. The directory holds each to its place whatever an event says: a tenant's account
//! with `platform_admin`, a platform account with a lesser role, or a key of one scope naming
//! an account of another is never a live key.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ring::digest;
use tenantry_contracts::auth::ServiceAccountEvent;
use tenantry_eventstore::{
    EventPayload, EventStore, Follow, FollowError, Follower, PLATFORM_TENANT, StoredMessage,
    subject,
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

/// Where a service account lives, from the tenant its events were recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Tenant(Uuid),
    Platform,
}

impl Owner {
    /// The owner of an aggregate in tenant token `tenant` (a UUID or the platform's).
    fn of(tenant: &str) -> Option<Self> {
        if tenant == PLATFORM_TENANT {
            return Some(Owner::Platform);
        }
        Uuid::try_parse(tenant).ok().map(Owner::Tenant)
    }

    /// Whether an account of this owner may act with `role`: tenant roles in a tenant,
    /// `platform_admin` (and nothing less, which would be a role without a tenant) in the
    /// platform.
    fn allows(self, role: Role) -> bool {
        match self {
            Owner::Tenant(_) => role != Role::PlatformAdmin,
            Owner::Platform => role == Role::PlatformAdmin,
        }
    }
}

#[derive(Debug, Clone)]
struct Key {
    owner: Owner,
    service_account_id: Uuid,
    key_id: String,
}

#[derive(Default)]
struct Entries {
    /// By digest: the live keys.
    keys: HashMap<Vec<u8>, Key>,
    /// key id → digest, to apply revocations.
    digests: HashMap<String, Vec<u8>>,
    /// service account → (owner, role); only accounts whose role fits their owner.
    accounts: HashMap<Uuid, (Owner, Role)>,
}

impl Entries {
    fn apply(&mut self, owner: Owner, event: ServiceAccountEvent) {
        match event {
            ServiceAccountEvent::AccountCreated(e) => {
                let (Ok(id), Ok(role)) = (
                    Uuid::try_parse(&e.service_account_id),
                    e.role.parse::<Role>(),
                ) else {
                    return;
                };
                if owner.allows(role) {
                    self.accounts.insert(id, (owner, role));
                } else {
                    tracing::warn!(
                        service_account_id = %id,
                        %role,
                        "a service account's role does not fit where it lives; its keys are refused"
                    );
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
                        owner,
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
            let Some(owner) = Owner::of(&stored.meta.tenant_id) else {
                continue;
            };
            entries.apply(owner, stored.event);
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

    /// The caller an API key stands for, if it is live: a tenant's key acts in its tenant
    /// with its account's role, a platform key as platform admin with no tenant.
    pub fn lookup(&self, api_key: &str) -> Option<TenantContext> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(api_key)
    }
}

impl Entries {
    fn lookup(&self, api_key: &str) -> Option<TenantContext> {
        let key = self.keys.get(&digest(api_key))?;
        let (owner, role) = *self.accounts.get(&key.service_account_id)?;
        // A key and its account are recorded in the same place (one aggregate); anything
        // else is not a key of that account.
        if owner != key.owner {
            return None;
        }
        Some(TenantContext {
            tenant_id: match owner {
                Owner::Tenant(id) => Some(id),
                Owner::Platform => None,
            },
            subject: format!("service_account:{}", key.service_account_id),
            role,
            token_id: format!("api_key:{}", key.key_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use tenantry_proto::events::v1 as pb;

    use super::*;

    fn account(id: Uuid, role: &str) -> ServiceAccountEvent {
        ServiceAccountEvent::AccountCreated(pb::ServiceAccountCreated {
            service_account_id: id.to_string(),
            name: "sa".into(),
            role: role.into(),
        })
    }

    fn key(account: Uuid, key_id: &str, secret: &str) -> ServiceAccountEvent {
        ServiceAccountEvent::ApiKeyCreated(pb::ApiKeyCreated {
            service_account_id: account.to_string(),
            key_id: key_id.into(),
            prefix: "tk_x".into(),
            key_digest: digest(secret),
            name: String::new(),
        })
    }

    fn revoked(key_id: &str) -> ServiceAccountEvent {
        ServiceAccountEvent::ApiKeyRevoked(pb::ApiKeyRevoked {
            key_id: key_id.into(),
        })
    }

    #[test]
    fn a_tenant_key_acts_in_its_tenant_and_a_platform_key_as_platform_admin() {
        let (tenant, sa, platform_sa) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut entries = Entries::default();
        let t = Owner::of(&tenant.to_string()).unwrap();
        entries.apply(t, account(sa, "owner"));
        entries.apply(t, key(sa, "k1", "tk_tenant"));
        let p = Owner::of(PLATFORM_TENANT).unwrap();
        entries.apply(p, account(platform_sa, "platform_admin"));
        entries.apply(p, key(platform_sa, "k2", "tk_platform"));

        let c = entries.lookup("tk_tenant").unwrap();
        assert_eq!((c.tenant_id, c.role), (Some(tenant), Role::Owner));
        let c = entries.lookup("tk_platform").unwrap();
        assert_eq!((c.tenant_id, c.role), (None, Role::PlatformAdmin));
        assert_eq!(c.subject, format!("service_account:{platform_sa}"));
        assert_eq!(c.token_id, "api_key:k2");
        assert!(c.is_platform_admin());

        entries.apply(p, revoked("k2"));
        assert_eq!(entries.lookup("tk_platform"), None);
        assert!(entries.lookup("tk_tenant").is_some());
    }

    #[test]
    fn an_account_whose_role_does_not_fit_where_it_lives_has_no_live_key() {
        let (tenant, sa, platform_sa) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut entries = Entries::default();
        let t = Owner::Tenant(tenant);
        // A tenant's account recorded as platform admin (which auth refuses to record).
        entries.apply(t, account(sa, "platform_admin"));
        entries.apply(t, key(sa, "k1", "tk_a"));
        assert_eq!(entries.lookup("tk_a"), None);
        // A platform account with a tenant role would be a role without a tenant.
        entries.apply(Owner::Platform, account(platform_sa, "owner"));
        entries.apply(Owner::Platform, key(platform_sa, "k2", "tk_b"));
        assert_eq!(entries.lookup("tk_b"), None);
        assert_eq!(Owner::of("not-a-tenant"), None);
    }

    #[test]
    fn a_key_recorded_elsewhere_than_its_account_is_refused() {
        let (tenant, platform_sa, tenant_sa) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut entries = Entries::default();
        entries.apply(Owner::Platform, account(platform_sa, "platform_admin"));
        entries.apply(Owner::Tenant(tenant), account(tenant_sa, "member"));
        // A tenant's key naming the platform's account, and the other way round.
        entries.apply(Owner::Tenant(tenant), key(platform_sa, "k1", "tk_a"));
        entries.apply(Owner::Platform, key(tenant_sa, "k2", "tk_b"));
        assert_eq!(entries.lookup("tk_a"), None);
        assert_eq!(entries.lookup("tk_b"), None);
    }
}
