//! A local user's credential, keyed by their e-mail address (the id is derived from it, so
//! sign-up of a taken address fails on the expected sequence, with no index to race).
//!
//! Failed logins are throttled here, per account: [`MAX_FAILURES`] within [`FAILURE_WINDOW`]
//! lock the account for [`LOCKOUT`]. Every success, failure and lockout is an event.
//!
//! The password hash arrives sealed under the master key and is stored so: whoever reads the
//! log gets no hash to attack offline. Credentials from before sealing hold the hash in the
//! clear ([`StoredPassword::Clear`]) and still verify.

use chrono::{DateTime, Duration, Utc};
use tenantry_eventstore::{Aggregate, EventMeta, time};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::events::CredentialEvent;
use super::{DomainError, derived_id};

pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
pub const LOCKOUT: Duration = Duration::minutes(15);

/// A credential's password hash as the log holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoredPassword {
    #[default]
    None,
    /// The PHC string sealed under the master key (`credential.created.v2`).
    Sealed(Vec<u8>),
    /// The PHC string in the clear (`credential.created.v1`, before sealing).
    Clear(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    pub user_id: Option<Uuid>,
    pub email: String,
    pub password: StoredPassword,
    /// Times of the failures since the last success or lockout.
    pub failures: Vec<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// The credential id of an e-mail address (compared case-insensitively).
pub fn credential_id(email: &str) -> Uuid {
    derived_id("credential", &email.to_lowercase())
}

impl Credential {
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

#[derive(Debug, Clone)]
pub enum CredentialCommand {
    Create {
        user_id: Uuid,
        email: String,
        /// The PHC string, sealed (see `crypto::password::seal_hash`).
        password_hash_sealed: Vec<u8>,
    },
    RecordSuccess {
        client_addr: String,
    },
    RecordFailure {
        client_addr: String,
        now: DateTime<Utc>,
    },
}

impl Aggregate for Credential {
    type Command = CredentialCommand;
    type Event = CredentialEvent;
    type Error = DomainError;

    fn decide(&self, command: &CredentialCommand) -> Result<Vec<CredentialEvent>, DomainError> {
        match command {
            CredentialCommand::Create {
                user_id,
                email,
                password_hash_sealed,
            } => {
                if self.user_id.is_some() {
                    return Err(DomainError::AlreadyExists(format!(
                        "an account for {email}"
                    )));
                }
                Ok(vec![CredentialEvent::Created(pb::CredentialCreated {
                    user_id: user_id.to_string(),
                    email: email.clone(),
                    password_hash: String::new(),
                    password_hash_sealed: password_hash_sealed.clone(),
                })])
            }
            CredentialCommand::RecordSuccess { client_addr } => {
                self.require_exists()?;
                Ok(vec![CredentialEvent::LoginSucceeded(
                    pb::CredentialLoginSucceeded {
                        client_addr: client_addr.clone(),
                    },
                )])
            }
            CredentialCommand::RecordFailure { client_addr, now } => {
                self.require_exists()?;
                let mut events = vec![CredentialEvent::LoginFailed(pb::CredentialLoginFailed {
                    client_addr: client_addr.clone(),
                })];
                let recent = self
                    .failures
                    .iter()
                    .filter(|t| **t > *now - FAILURE_WINDOW)
                    .count()
                    + 1;
                if recent >= MAX_FAILURES && !self.is_locked(*now) {
                    events.push(CredentialEvent::LockedOut(pb::CredentialLockedOut {
                        until: Some(time::to_proto(*now + LOCKOUT)),
                        failures: u32::try_from(recent).unwrap_or(u32::MAX),
                    }));
                }
                Ok(events)
            }
        }
    }

    fn evolve(&mut self, event: &CredentialEvent, meta: &EventMeta) {
        match event {
            CredentialEvent::Created(e) => {
                self.user_id = Uuid::try_parse(&e.user_id).ok();
                self.email.clone_from(&e.email);
                self.password = StoredPassword::Sealed(e.password_hash_sealed.clone());
            }
            CredentialEvent::CreatedV1(e) => {
                self.user_id = Uuid::try_parse(&e.user_id).ok();
                self.email.clone_from(&e.email);
                self.password = StoredPassword::Clear(e.password_hash.clone());
            }
            CredentialEvent::LoginSucceeded(_) => self.failures.clear(),
            CredentialEvent::LoginFailed(_) => {
                self.failures.push(meta.occurred_at);
                // Only the window matters; keep the state small.
                if self.failures.len() > MAX_FAILURES * 4 {
                    self.failures.drain(..MAX_FAILURES * 2);
                }
            }
            CredentialEvent::LockedOut(e) => {
                self.locked_until = Some(time::from_proto(e.until.as_ref()));
                self.failures.clear();
            }
        }
    }
}

impl Credential {
    fn require_exists(&self) -> Result<Uuid, DomainError> {
        self.user_id
            .ok_or_else(|| DomainError::NotFound("credential".into()))
    }
}
