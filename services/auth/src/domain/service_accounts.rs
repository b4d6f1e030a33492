//! A tenant's service accounts (machine clients) and their API keys, one aggregate per tenant.
//!
//! Keys are stored as digests; the key itself exists only in the response that created it.

use std::collections::BTreeMap;

use tenantry_eventstore::{Aggregate, EventMeta};
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::DomainError;
use super::events::ServiceAccountEvent;

pub const MAX_ACCOUNTS: usize = 1_000;
pub const MAX_LIVE_KEYS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub prefix: String,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub name: String,
    pub role: Role,
    pub keys: BTreeMap<Uuid, ApiKey>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccounts {
    pub accounts: BTreeMap<Uuid, ServiceAccount>,
}

#[derive(Debug, Clone)]
pub enum ServiceAccountCommand {
    Create {
        id: Uuid,
        name: String,
        role: Role,
    },
    CreateKey {
        account_id: Uuid,
        key_id: Uuid,
        name: String,
        prefix: String,
        digest: Vec<u8>,
    },
    RevokeKey {
        key_id: Uuid,
    },
}

impl ServiceAccounts {
    pub fn key(&self, key_id: Uuid) -> Option<(Uuid, &ApiKey)> {
        self.accounts
            .iter()
            .find_map(|(a, acc)| acc.keys.get(&key_id).map(|k| (*a, k)))
    }
}

impl Aggregate for ServiceAccounts {
    type Command = ServiceAccountCommand;
    type Event = ServiceAccountEvent;
    type Error = DomainError;

    fn decide(
        &self,
        command: &ServiceAccountCommand,
    ) -> Result<Vec<ServiceAccountEvent>, DomainError> {
        match command {
            ServiceAccountCommand::Create { id, name, role } => {
                if self.accounts.values().any(|a| a.name == *name) {
                    return Err(DomainError::AlreadyExists(format!(
                        "service account {name:?}"
                    )));
                }
                if self.accounts.len() >= MAX_ACCOUNTS {
                    return Err(DomainError::Precondition(format!(
                        "a tenant has at most {MAX_ACCOUNTS} service accounts"
                    )));
                }
                Ok(vec![ServiceAccountEvent::AccountCreated(
                    pb::ServiceAccountCreated {
                        service_account_id: id.to_string(),
                        name: name.clone(),
                        role: role.as_str().into(),
                    },
                )])
            }
            ServiceAccountCommand::CreateKey {
                account_id,
                key_id,
                name,
                prefix,
                digest,
            } => {
                let account = self.accounts.get(account_id).ok_or_else(|| {
                    DomainError::NotFound(format!("service account {account_id}"))
                })?;
                if account.keys.values().filter(|k| !k.revoked).count() >= MAX_LIVE_KEYS {
                    return Err(DomainError::Precondition(format!(
                        "a service account has at most {MAX_LIVE_KEYS} live keys; revoke one first"
                    )));
                }
                Ok(vec![ServiceAccountEvent::ApiKeyCreated(
                    pb::ApiKeyCreated {
                        service_account_id: account_id.to_string(),
                        key_id: key_id.to_string(),
                        prefix: prefix.clone(),
                        key_digest: digest.clone(),
                        name: name.clone(),
                    },
                )])
            }
            ServiceAccountCommand::RevokeKey { key_id } => {
                let (_, key) = self
                    .key(*key_id)
                    .ok_or_else(|| DomainError::NotFound(format!("api key {key_id}")))?;
                if key.revoked {
                    return Ok(vec![]);
                }
                Ok(vec![ServiceAccountEvent::ApiKeyRevoked(
                    pb::ApiKeyRevoked {
                        key_id: key_id.to_string(),
                    },
                )])
            }
        }
    }

    fn evolve(&mut self, event: &ServiceAccountEvent, _meta: &EventMeta) {
        let id = |s: &str| Uuid::try_parse(s).unwrap_or_default();
        match event {
            ServiceAccountEvent::AccountCreated(e) => {
                self.accounts.insert(
                    id(&e.service_account_id),
                    ServiceAccount {
                        name: e.name.clone(),
                        role: e.role.parse().unwrap_or(Role::Viewer),
                        keys: BTreeMap::new(),
                    },
                );
            }
            ServiceAccountEvent::ApiKeyCreated(e) => {
                if let Some(a) = self.accounts.get_mut(&id(&e.service_account_id)) {
                    a.keys.insert(
                        id(&e.key_id),
                        ApiKey {
                            name: e.name.clone(),
                            prefix: e.prefix.clone(),
                            revoked: false,
                        },
                    );
                }
            }
            ServiceAccountEvent::ApiKeyRevoked(e) => {
                let key_id = id(&e.key_id);
                for a in self.accounts.values_mut() {
                    if let Some(k) = a.keys.get_mut(&key_id) {
                        k.revoked = true;
                    }
                }
            }
        }
    }
}
