//! The user aggregate: one identity, `(issuer, subject)`, under tenant token `platform`.
//!
//! Local users get a fresh id (their subject); federated users' ids are derived from
//! `(issuer, subject)`, so a first login and every later one find the same user.

use tenantry_eventstore::{Aggregate, EventMeta};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::events::UserEvent;
use super::{DomainError, derived_id};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub id: Option<Uuid>,
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub platform_admin: bool,
}

/// The id of a federated user.
pub fn federated_id(issuer: &str, subject: &str) -> Uuid {
    derived_id("user", &format!("{issuer}\n{subject}"))
}

#[derive(Debug, Clone)]
pub enum UserCommand {
    Register {
        id: Uuid,
        issuer: String,
        subject: String,
        email: String,
    },
    GrantPlatformAdmin,
    /// A federated login; registers the user first if this is their first.
    FederatedLogin {
        id: Uuid,
        issuer: String,
        subject: String,
        email: String,
        tenant_id: Uuid,
        provider_id: Uuid,
        client_addr: String,
    },
}

impl Aggregate for User {
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = DomainError;

    fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, DomainError> {
        match command {
            UserCommand::Register {
                id,
                issuer,
                subject,
                email,
            } => {
                if self.id.is_some() {
                    return Err(DomainError::AlreadyExists(format!("user {id}")));
                }
                Ok(vec![registered(*id, issuer, subject, email)])
            }
            UserCommand::GrantPlatformAdmin => {
                let id = self
                    .id
                    .ok_or_else(|| DomainError::NotFound("user".into()))?;
                if self.platform_admin {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::PlatformAdminGranted(
                    pb::PlatformAdminGranted {
                        user_id: id.to_string(),
                    },
                )])
            }
            UserCommand::FederatedLogin {
                id,
                issuer,
                subject,
                email,
                tenant_id,
                provider_id,
                client_addr,
            } => {
                let mut events = Vec::new();
                if self.id.is_none() {
                    events.push(registered(*id, issuer, subject, email));
                } else if self.issuer != *issuer || self.subject != *subject {
                    return Err(DomainError::Precondition("identity mismatch".into()));
                }
                events.push(UserEvent::LoggedIn(pb::UserLoggedIn {
                    tenant_id: tenant_id.to_string(),
                    provider_id: provider_id.to_string(),
                    client_addr: client_addr.clone(),
                }));
                Ok(events)
            }
        }
    }

    fn evolve(&mut self, event: &UserEvent, _meta: &EventMeta) {
        match event {
            UserEvent::Registered(e) => {
                self.id = Uuid::try_parse(&e.user_id).ok();
                self.issuer.clone_from(&e.issuer);
                self.subject.clone_from(&e.subject);
                self.email.clone_from(&e.email);
            }
            UserEvent::PlatformAdminGranted(_) => self.platform_admin = true,
            UserEvent::LoggedIn(_) => {}
        }
    }
}

fn registered(id: Uuid, issuer: &str, subject: &str, email: &str) -> UserEvent {
    UserEvent::Registered(pb::UserRegistered {
        user_id: id.to_string(),
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        email: email.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use tenantry_eventstore::PLATFORM_TENANT;
    use tenantry_kit::gwt::Given;

    use super::*;

    const ISSUER: &str = "https://idp.acme.com";

    fn user_id() -> Uuid {
        federated_id(ISSUER, "sub-1")
    }

    fn given(events: impl IntoIterator<Item = UserEvent>) -> Given<User> {
        tenantry_kit::gwt::given(events).of(PLATFORM_TENANT, user_id())
    }

    fn register() -> UserCommand {
        UserCommand::Register {
            id: user_id(),
            issuer: ISSUER.into(),
            subject: "sub-1".into(),
            email: "ada@acme.com".into(),
        }
    }

    fn registered_ada() -> UserEvent {
        registered(user_id(), ISSUER, "sub-1", "ada@acme.com")
    }

    fn tenant() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
    }

    fn provider() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000c)
    }

    fn federated_login(subject: &str) -> UserCommand {
        UserCommand::FederatedLogin {
            id: federated_id(ISSUER, subject),
            issuer: ISSUER.into(),
            subject: subject.into(),
            email: "ada@acme.com".into(),
            tenant_id: tenant(),
            provider_id: provider(),
            client_addr: "203.0.113.7".into(),
        }
    }

    fn logged_in() -> UserEvent {
        UserEvent::LoggedIn(pb::UserLoggedIn {
            tenant_id: tenant().to_string(),
            provider_id: provider().to_string(),
            client_addr: "203.0.113.7".into(),
        })
    }

    #[test]
    fn given_nothing_when_registered_then_registered() {
        let state = given([])
            .when(register())
            .then([UserEvent::Registered(pb::UserRegistered {
                user_id: user_id().to_string(),
                issuer: ISSUER.into(),
                subject: "sub-1".into(),
                email: "ada@acme.com".into(),
            })]);
        assert_eq!(
            state.state(),
            &User {
                id: Some(user_id()),
                issuer: ISSUER.into(),
                subject: "sub-1".into(),
                email: "ada@acme.com".into(),
                platform_admin: false,
            }
        );
    }

    #[test]
    fn given_registered_when_registered_again_then_already_exists() {
        given([registered_ada()])
            .when(register())
            .then_error(DomainError::AlreadyExists(format!("user {}", user_id())));
    }

    #[test]
    fn given_nothing_when_made_platform_admin_then_not_found() {
        given([])
            .when(UserCommand::GrantPlatformAdmin)
            .then_error(DomainError::NotFound("user".into()));
    }

    #[test]
    fn given_registered_when_made_platform_admin_then_granted_once() {
        let admin = given([registered_ada()])
            .when(UserCommand::GrantPlatformAdmin)
            .then([UserEvent::PlatformAdminGranted(pb::PlatformAdminGranted {
                user_id: user_id().to_string(),
            })]);
        assert!(admin.state().platform_admin);
        admin.when(UserCommand::GrantPlatformAdmin).then_nothing();
    }

    #[test]
    fn given_nothing_when_a_first_federated_login_then_registered_and_logged_in() {
        given([])
            .when(federated_login("sub-1"))
            .then([registered_ada(), logged_in()]);
    }

    #[test]
    fn given_registered_when_a_later_federated_login_then_logged_in() {
        given([registered_ada()])
            .when(federated_login("sub-1"))
            .then([logged_in()]);
    }

    #[test]
    fn given_registered_when_another_identity_logs_in_as_the_user_then_refused() {
        given([registered_ada()])
            .when(federated_login("sub-2"))
            .then_error(DomainError::Precondition("identity mismatch".into()));
    }

    #[test]
    fn a_federated_identity_always_finds_the_same_user_and_only_it() {
        assert_eq!(federated_id(ISSUER, "sub-1"), user_id());
        assert_ne!(federated_id(ISSUER, "sub-2"), user_id());
        assert_ne!(federated_id("https://other.example", "sub-1"), user_id());
    }
}
