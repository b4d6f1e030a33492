//! Service accounts (machine clients) and their API keys: one aggregate per tenant, and one of
//! the platform (in the platform tenant, ADR 0011) whose accounts are Tenantry's own services
//! calling each other.
//!
//! A tenant's accounts hold tenant roles; the platform's are `platform_admin`. Nothing else
//! may be recorded, so the role in an event always matches where the event lives (which the
//! key directories of every service check again).
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

/// Whose service accounts an aggregate holds, as its address says (the caller picks the
/// address, so the command carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountScope {
    /// One tenant's: viewer, member or owner, acting in that tenant only.
    Tenant,
    /// The platform's: `platform_admin`, with no tenant.
    Platform,
}

impl AccountScope {
    /// Whether an account of this scope may hold `role`.
    pub fn allows(self, role: Role) -> bool {
        match self {
            AccountScope::Tenant => role != Role::PlatformAdmin,
            AccountScope::Platform => role == Role::PlatformAdmin,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ServiceAccountCommand {
    Create {
        id: Uuid,
        name: String,
        role: Role,
        scope: AccountScope,
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
            ServiceAccountCommand::Create {
                id,
                name,
                role,
                scope,
            } => {
                if !scope.allows(*role) {
                    return Err(DomainError::invalid(
                        "role",
                        match scope {
                            AccountScope::Tenant => "a tenant's service account has a tenant role",
                            AccountScope::Platform => {
                                "a platform service account is platform_admin"
                            }
                        },
                    ));
                }
                if self.accounts.values().any(|a| a.name == *name) {
                    return Err(DomainError::AlreadyExists(format!(
                        "service account {name:?}"
                    )));
                }
                if self.accounts.len() >= MAX_ACCOUNTS {
                    let whose = match scope {
                        AccountScope::Tenant => "a tenant",
                        AccountScope::Platform => "the platform",
                    };
                    return Err(DomainError::limit(
                        "max_service_accounts",
                        format!("{whose} has at most {MAX_ACCOUNTS} service accounts"),
                    ));
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
                    return Err(DomainError::limit(
                        "max_live_api_keys",
                        format!(
                            "a service account has at most {MAX_LIVE_KEYS} live keys; revoke one first"
                        ),
                    ));
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

#[cfg(test)]
mod tests {
    use tenantry_kit::gwt::Given;

    use super::*;

    fn tenant() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
    }

    /// Accounts `account(1)`, `account(2)`, …
    fn account(n: u128) -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0001_0000 + n)
    }

    /// Keys `key(1)`, `key(2)`, …
    fn key(n: u128) -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0002_0000 + n)
    }

    fn given(events: impl IntoIterator<Item = ServiceAccountEvent>) -> Given<ServiceAccounts> {
        tenantry_kit::gwt::given(events).of(tenant(), tenant())
    }

    fn create(n: u128, name: &str) -> ServiceAccountCommand {
        ServiceAccountCommand::Create {
            id: account(n),
            name: name.into(),
            role: Role::Member,
            scope: AccountScope::Tenant,
        }
    }

    fn created(n: u128, name: &str) -> ServiceAccountEvent {
        ServiceAccountEvent::AccountCreated(pb::ServiceAccountCreated {
            service_account_id: account(n).to_string(),
            name: name.into(),
            role: "member".into(),
        })
    }

    fn create_key(account_n: u128, n: u128) -> ServiceAccountCommand {
        ServiceAccountCommand::CreateKey {
            account_id: account(account_n),
            key_id: key(n),
            name: format!("key {n}"),
            prefix: format!("tk_{n:04}"),
            digest: vec![n as u8],
        }
    }

    fn key_created(account_n: u128, n: u128) -> ServiceAccountEvent {
        ServiceAccountEvent::ApiKeyCreated(pb::ApiKeyCreated {
            service_account_id: account(account_n).to_string(),
            key_id: key(n).to_string(),
            prefix: format!("tk_{n:04}"),
            key_digest: vec![n as u8],
            name: format!("key {n}"),
        })
    }

    fn key_revoked(n: u128) -> ServiceAccountEvent {
        ServiceAccountEvent::ApiKeyRevoked(pb::ApiKeyRevoked {
            key_id: key(n).to_string(),
        })
    }

    /// Account 1, `ci`, with `keys` live keys numbered from 1.
    fn ci_with_keys(keys: u128) -> Given<ServiceAccounts> {
        given([created(1, "ci")]).and((1..=keys).map(|n| key_created(1, n)))
    }

    #[test]
    fn given_nothing_when_an_account_is_created_then_created_with_its_role() {
        let state = given([]).when(create(1, "ci")).then([created(1, "ci")]);
        assert_eq!(
            state.state().accounts.get(&account(1)),
            Some(&ServiceAccount {
                name: "ci".into(),
                role: Role::Member,
                keys: BTreeMap::new(),
            })
        );
    }

    #[test]
    fn given_an_account_when_another_takes_its_name_then_already_exists() {
        given([created(1, "ci")])
            .when(create(2, "ci"))
            .then_error(DomainError::AlreadyExists("service account \"ci\"".into()));
        given([created(1, "ci")])
            .when(create(2, "deploy"))
            .then([created(2, "deploy")]);
    }

    #[test]
    fn given_the_most_accounts_when_another_is_created_then_refused() {
        let full = given((1..=MAX_ACCOUNTS as u128).map(|n| created(n, &format!("sa-{n}"))));
        full.when(create(MAX_ACCOUNTS as u128 + 1, "one-too-many"))
            .then_error(DomainError::limit(
                "max_service_accounts",
                format!("a tenant has at most {MAX_ACCOUNTS} service accounts"),
            ));
    }

    #[test]
    fn given_an_account_when_a_key_is_created_then_created_and_found_by_its_id() {
        let state = ci_with_keys(0)
            .when(create_key(1, 1))
            .then([key_created(1, 1)]);
        assert_eq!(
            state.state().key(key(1)),
            Some((
                account(1),
                &ApiKey {
                    name: "key 1".into(),
                    prefix: "tk_0001".into(),
                    revoked: false,
                }
            ))
        );
        assert_eq!(state.state().key(key(2)), None);
    }

    #[test]
    fn given_no_such_account_when_a_key_is_created_then_not_found() {
        given([])
            .when(create_key(1, 1))
            .then_error(DomainError::NotFound(format!(
                "service account {}",
                account(1)
            )));
    }

    #[test]
    fn given_the_most_live_keys_when_another_is_created_then_refused_until_one_is_revoked() {
        let n = MAX_LIVE_KEYS as u128;
        let full = ci_with_keys(n);
        full.when(create_key(1, n + 1))
            .then_error(DomainError::limit(
                "max_live_api_keys",
                format!(
                    "a service account has at most {MAX_LIVE_KEYS} live keys; revoke one first"
                ),
            ));
        // The limit is per account.
        full.clone()
            .and([created(2, "deploy")])
            .when(create_key(2, n + 1))
            .then([key_created(2, n + 1)]);
        full.and([key_revoked(1)])
            .when(create_key(1, n + 1))
            .then([key_created(1, n + 1)]);
    }

    #[test]
    fn given_a_key_when_revoked_then_revoked_once() {
        let revoked = ci_with_keys(2)
            .when(ServiceAccountCommand::RevokeKey { key_id: key(2) })
            .then([key_revoked(2)]);
        assert_eq!(
            revoked.state().key(key(2)).map(|(_, k)| k.revoked),
            Some(true)
        );
        assert_eq!(
            revoked.state().key(key(1)).map(|(_, k)| k.revoked),
            Some(false)
        );
        revoked
            .when(ServiceAccountCommand::RevokeKey { key_id: key(2) })
            .then_nothing();
    }

    #[test]
    fn given_no_such_key_when_revoked_then_not_found() {
        ci_with_keys(1)
            .when(ServiceAccountCommand::RevokeKey { key_id: key(9) })
            .then_error(DomainError::NotFound(format!("api key {}", key(9))));
    }

    #[test]
    fn given_nothing_when_an_account_with_a_role_of_another_scope_is_created_then_invalid() {
        let with = |role, scope| ServiceAccountCommand::Create {
            id: account(1),
            name: "billing".into(),
            role,
            scope,
        };
        // A tenant's account never holds platform_admin...
        given([])
            .when(with(Role::PlatformAdmin, AccountScope::Tenant))
            .then_error(DomainError::invalid(
                "role",
                "a tenant's service account has a tenant role",
            ));
        // ...and the platform's holds nothing less.
        for role in [Role::Viewer, Role::Member, Role::Owner] {
            given([])
                .when(with(role, AccountScope::Platform))
                .then_error(DomainError::invalid(
                    "role",
                    "a platform service account is platform_admin",
                ));
        }
        given([])
            .when(with(Role::PlatformAdmin, AccountScope::Platform))
            .then([ServiceAccountEvent::AccountCreated(
                pb::ServiceAccountCreated {
                    service_account_id: account(1).to_string(),
                    name: "billing".into(),
                    role: "platform_admin".into(),
                },
            )]);
    }
}
