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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tenantry_eventstore::PLATFORM_TENANT;
    use tenantry_kit::gwt::Given;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn user_id() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001)
    }

    fn given(events: impl IntoIterator<Item = CredentialEvent>) -> Given<Credential> {
        tenantry_kit::gwt::given(events)
            .at(now())
            .of(PLATFORM_TENANT, credential_id("ada@acme.com"))
    }

    fn created() -> CredentialEvent {
        CredentialEvent::Created(pb::CredentialCreated {
            user_id: user_id().to_string(),
            email: "ada@acme.com".into(),
            password_hash: String::new(),
            password_hash_sealed: vec![0xa5; 40],
        })
    }

    fn fail_at(at: DateTime<Utc>) -> CredentialCommand {
        CredentialCommand::RecordFailure {
            client_addr: "203.0.113.7".into(),
            now: at,
        }
    }

    fn failed() -> CredentialEvent {
        CredentialEvent::LoginFailed(pb::CredentialLoginFailed {
            client_addr: "203.0.113.7".into(),
        })
    }

    fn locked_out(until: DateTime<Utc>, failures: u32) -> CredentialEvent {
        CredentialEvent::LockedOut(pb::CredentialLockedOut {
            until: Some(time::to_proto(until)),
            failures,
        })
    }

    /// The credential after `count` failed logins a minute apart from `from`.
    fn failing(state: Given<Credential>, from: DateTime<Utc>, count: i64) -> Given<Credential> {
        (0..count).fold(state, |state, i| {
            let at = from + Duration::minutes(i);
            state.at(at).when(fail_at(at)).then([failed()])
        })
    }

    #[test]
    fn given_nothing_when_created_then_created_with_the_sealed_hash_only() {
        let state = given([])
            .when(CredentialCommand::Create {
                user_id: user_id(),
                email: "ada@acme.com".into(),
                password_hash_sealed: vec![0xa5; 40],
            })
            .then([created()]);
        assert_eq!(
            state.state().password,
            StoredPassword::Sealed(vec![0xa5; 40])
        );
    }

    #[test]
    fn given_created_when_created_again_then_already_exists() {
        given([created()])
            .when(CredentialCommand::Create {
                user_id: Uuid::from_u128(2),
                email: "ada@acme.com".into(),
                password_hash_sealed: vec![1],
            })
            .then_error(DomainError::AlreadyExists(
                "an account for ada@acme.com".into(),
            ));
    }

    #[test]
    fn given_a_credential_from_before_sealing_then_its_hash_is_read_in_the_clear() {
        let v1 = CredentialEvent::CreatedV1(pb::CredentialCreated {
            user_id: user_id().to_string(),
            email: "ada@acme.com".into(),
            password_hash: "$argon2id$v=19$…".into(),
            password_hash_sealed: vec![],
        });
        assert_eq!(
            given([v1]).state().password,
            StoredPassword::Clear("$argon2id$v=19$…".into())
        );
    }

    #[test]
    fn given_nothing_when_a_login_is_recorded_then_not_found() {
        let missing = DomainError::NotFound("credential".into());
        given([])
            .when(CredentialCommand::RecordSuccess {
                client_addr: "203.0.113.7".into(),
            })
            .then_error(missing.clone());
        given([]).when(fail_at(now())).then_error(missing);
    }

    #[test]
    fn given_failures_when_a_login_succeeds_then_succeeded_and_the_failures_forgotten() {
        let state = failing(given([created()]), now(), MAX_FAILURES as i64 - 1);
        assert_eq!(state.state().failures.len(), MAX_FAILURES - 1);
        let state = state
            .when(CredentialCommand::RecordSuccess {
                client_addr: "203.0.113.7".into(),
            })
            .then([CredentialEvent::LoginSucceeded(
                pb::CredentialLoginSucceeded {
                    client_addr: "203.0.113.7".into(),
                },
            )]);
        assert!(state.state().failures.is_empty());
        // One more failure is the first again, not the fifth.
        let at = now() + Duration::minutes(5);
        state.at(at).when(fail_at(at)).then([failed()]);
    }

    #[test]
    fn given_four_recent_failures_when_a_fifth_then_failed_and_locked_out() {
        let state = failing(given([created()]), now(), MAX_FAILURES as i64 - 1);
        let at = now() + Duration::minutes(MAX_FAILURES as i64);
        let locked = state
            .at(at)
            .when(fail_at(at))
            .then([failed(), locked_out(at + LOCKOUT, MAX_FAILURES as u32)]);
        assert!(locked.state().is_locked(at));
        assert!(
            locked
                .state()
                .is_locked(at + LOCKOUT - Duration::seconds(1))
        );
        assert!(!locked.state().is_locked(at + LOCKOUT));
        assert!(locked.state().failures.is_empty());
    }

    #[test]
    fn given_failures_older_than_the_window_when_failing_again_then_not_locked_out() {
        let state = failing(given([created()]), now(), MAX_FAILURES as i64 - 1);
        // The first failure is exactly FAILURE_WINDOW old: out of the window.
        let at = now() + FAILURE_WINDOW;
        let state = state.at(at).when(fail_at(at)).then([failed()]);
        assert!(!state.state().is_locked(at));
    }

    #[test]
    fn given_locked_out_when_failing_again_while_locked_then_failed_but_not_locked_again() {
        let state = failing(given([created()]), now(), MAX_FAILURES as i64 - 1);
        let at = now() + Duration::minutes(MAX_FAILURES as i64);
        let locked = state.at(at).when(fail_at(at)).then_state();
        let still_locked = failing(locked, at + Duration::seconds(1), MAX_FAILURES as i64);
        assert_eq!(still_locked.state().locked_until, Some(at + LOCKOUT));
    }

    #[test]
    fn an_address_finds_its_credential_whatever_its_case() {
        assert_eq!(credential_id("Ada@Acme.COM"), credential_id("ada@acme.com"));
        assert_ne!(credential_id("bob@acme.com"), credential_id("ada@acme.com"));
    }
}
