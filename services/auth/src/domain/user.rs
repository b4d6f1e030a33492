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
