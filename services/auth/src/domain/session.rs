//! A session: one refresh-token family of one user (under tenant token `platform`).
//!
//! Every refresh presents the current token and replaces it. A spent token presented again
//! means it was copied: the whole family is revoked, so whoever holds the newer token is
//! logged out too (RFC 6819 §5.2.2.3; OAuth 2.0 Security BCP §4.14). That holds for a logout
//! too: logging out with a spent token ends the family rather than being refused.
//!
//! A session opened through a tenant's identity provider is bound to that tenant
//! ([`Binding::Tenant`]): that provider vouched for the user in that tenant only, so the
//! session never mints a token for another (docs/adr/0007-federated-sessions.md).

use chrono::{DateTime, Utc};
use tenantry_eventstore::{Aggregate, EventMeta, time};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::events::SessionEvent;
use super::{DomainError, same_digest};

pub const REUSE_DETECTED: &str = "reuse_detected";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub current: Vec<u8>,
    /// Digests of the spent tokens of the family.
    pub spent: Vec<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: Option<String>,
    /// The tenant of the last access token, kept by a refresh that names none.
    pub tenant_id: Option<Uuid>,
    /// How the session was opened: `password`, `signup`, `oidc:<provider>`.
    pub method: String,
    /// The tenant whose identity provider opened the session, if one did.
    pub bound_tenant: Option<Uuid>,
}

/// Which tenants a session may mint tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// A local login: any tenant the user is a member of (or all, as a platform admin).
    Free,
    /// Opened through this tenant's identity provider: this tenant only.
    Tenant(Uuid),
    /// Federated, but from before sessions recorded their tenant: nothing; sign in again.
    Unknown,
}

#[derive(Debug, Clone)]
pub enum SessionCommand {
    Start {
        id: Uuid,
        user_id: Uuid,
        digest: Vec<u8>,
        expires_at: DateTime<Utc>,
        method: String,
        /// The tenant whose identity provider vouched for the user (federated logins).
        bound_tenant: Option<Uuid>,
    },
    /// Presents `presented` and replaces it with `next`.
    Rotate {
        presented: Vec<u8>,
        next: Vec<u8>,
        tenant_id: Option<Uuid>,
        now: DateTime<Utc>,
    },
    Revoke {
        presented: Vec<u8>,
    },
}

/// Every refusal reads the same: a client learns nothing from which check failed.
fn invalid() -> DomainError {
    DomainError::Unauthenticated("invalid refresh token".into())
}

impl Session {
    /// Whether `presented` is the live token of a live session.
    pub fn accepts(&self, presented: &[u8], now: DateTime<Utc>) -> bool {
        self.id.is_some()
            && self.revoked.is_none()
            && self.expires_at.is_some_and(|e| e > now)
            && same_digest(&self.current, presented)
    }

    pub fn binding(&self) -> Binding {
        match self.bound_tenant {
            Some(tenant) => Binding::Tenant(tenant),
            None if self.method.starts_with(FEDERATED_PREFIX) => Binding::Unknown,
            None => Binding::Free,
        }
    }
}

/// `method` of a session opened through an identity provider: `oidc:<provider id>`.
pub const FEDERATED_PREFIX: &str = "oidc:";

impl Aggregate for Session {
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = DomainError;

    fn decide(&self, command: &SessionCommand) -> Result<Vec<SessionEvent>, DomainError> {
        match command {
            SessionCommand::Start {
                id,
                user_id,
                digest,
                expires_at,
                method,
                bound_tenant,
            } => {
                if self.id.is_some() {
                    return Err(DomainError::AlreadyExists(format!("session {id}")));
                }
                Ok(vec![SessionEvent::Started(pb::SessionStarted {
                    session_id: id.to_string(),
                    user_id: user_id.to_string(),
                    token_digest: digest.clone(),
                    expires_at: Some(time::to_proto(*expires_at)),
                    method: method.clone(),
                    bound_tenant_id: bound_tenant.map(|t| t.to_string()).unwrap_or_default(),
                })])
            }
            SessionCommand::Rotate {
                presented,
                next,
                tenant_id,
                now,
            } => {
                if self.accepts(presented, *now) {
                    return Ok(vec![SessionEvent::Refreshed(pb::SessionRefreshed {
                        token_digest: next.clone(),
                        tenant_id: tenant_id.map(|t| t.to_string()).unwrap_or_default(),
                    })]);
                }
                let reused = self.spent.iter().any(|d| same_digest(d, presented));
                if reused && self.revoked.is_none() {
                    // Written, then reported: the caller sees the session revoked.
                    return Ok(vec![SessionEvent::Revoked(pb::SessionRevoked {
                        reason: REUSE_DETECTED.into(),
                    })]);
                }
                Err(invalid())
            }
            SessionCommand::Revoke { presented } => {
                if self.revoked.is_some() {
                    return Ok(vec![]);
                }
                if self.id.is_none() {
                    return Err(invalid());
                }
                let reason = if same_digest(&self.current, presented) {
                    "logout"
                } else if self.spent.iter().any(|d| same_digest(d, presented)) {
                    // A spent token means someone else rotated it: a thief, or the owner after
                    // a thief. Logging out with it ends the whole family, both branches.
                    REUSE_DETECTED
                } else {
                    return Err(invalid());
                };
                Ok(vec![SessionEvent::Revoked(pb::SessionRevoked {
                    reason: reason.into(),
                })])
            }
        }
    }

    fn evolve(&mut self, event: &SessionEvent, _meta: &EventMeta) {
        match event {
            SessionEvent::Started(e) => {
                self.id = Uuid::try_parse(&e.session_id).ok();
                self.user_id = Uuid::try_parse(&e.user_id).ok();
                self.current.clone_from(&e.token_digest);
                self.expires_at = Some(time::from_proto(e.expires_at.as_ref()));
                self.method.clone_from(&e.method);
                self.bound_tenant = Uuid::try_parse(&e.bound_tenant_id).ok();
            }
            SessionEvent::Refreshed(e) => {
                let spent = std::mem::replace(&mut self.current, e.token_digest.clone());
                self.spent.push(spent);
                if let Ok(t) = Uuid::try_parse(&e.tenant_id) {
                    self.tenant_id = Some(t);
                }
            }
            SessionEvent::Revoked(e) => self.revoked = Some(e.reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use tenantry_eventstore::PLATFORM_TENANT;
    use tenantry_kit::gwt::Given;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn session_id() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0005)
    }

    fn user_id() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001)
    }

    fn tenant() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
    }

    fn given(events: impl IntoIterator<Item = SessionEvent>) -> Given<Session> {
        tenantry_kit::gwt::given(events)
            .at(now())
            .of(PLATFORM_TENANT, session_id())
    }

    fn start(method: &str, bound_tenant: Option<Uuid>) -> SessionCommand {
        SessionCommand::Start {
            id: session_id(),
            user_id: user_id(),
            digest: vec![1],
            expires_at: now() + Duration::days(1),
            method: method.into(),
            bound_tenant,
        }
    }

    /// A password session whose live token is `[1]`.
    fn started() -> SessionEvent {
        SessionEvent::Started(pb::SessionStarted {
            session_id: session_id().to_string(),
            user_id: user_id().to_string(),
            token_digest: vec![1],
            expires_at: Some(time::to_proto(now() + Duration::days(1))),
            method: "password".into(),
            bound_tenant_id: String::new(),
        })
    }

    fn rotate_at(presented: u8, next: u8, now: DateTime<Utc>) -> SessionCommand {
        SessionCommand::Rotate {
            presented: vec![presented],
            next: vec![next],
            tenant_id: None,
            now,
        }
    }

    fn rotate(presented: u8, next: u8) -> SessionCommand {
        rotate_at(presented, next, now())
    }

    fn refreshed(next: u8) -> SessionEvent {
        SessionEvent::Refreshed(pb::SessionRefreshed {
            token_digest: vec![next],
            tenant_id: String::new(),
        })
    }

    fn revoked(reason: &str) -> SessionEvent {
        SessionEvent::Revoked(pb::SessionRevoked {
            reason: reason.into(),
        })
    }

    fn revoke(presented: u8) -> SessionCommand {
        SessionCommand::Revoke {
            presented: vec![presented],
        }
    }

    fn invalid_token() -> DomainError {
        DomainError::Unauthenticated("invalid refresh token".into())
    }

    #[test]
    fn given_nothing_when_started_then_started_with_the_token_digest() {
        let state = given([]).when(start("password", None)).then([started()]);
        assert!(state.state().accepts(&[1], now()));
        assert!(!state.state().accepts(&[2], now()));
        assert!(!state.state().accepts(&[1], now() + Duration::days(1)));
    }

    #[test]
    fn given_nothing_when_started_through_a_tenants_provider_then_started_bound_to_it() {
        let SessionEvent::Started(mut expected) = started() else {
            unreachable!()
        };
        expected.method = "oidc:p1".into();
        expected.bound_tenant_id = tenant().to_string();
        given([])
            .when(start("oidc:p1", Some(tenant())))
            .then([SessionEvent::Started(expected)]);
    }

    #[test]
    fn given_started_when_started_again_then_already_exists() {
        given([started()])
            .when(start("password", None))
            .then_error(DomainError::AlreadyExists(format!(
                "session {}",
                session_id()
            )));
    }

    #[test]
    fn given_a_federated_start_then_bound_to_its_tenant_and_an_unbound_one_to_nothing() {
        let opened = |command| given([]).when(command).then_state().state().binding();
        assert_eq!(opened(start("password", None)), Binding::Free);
        assert_eq!(
            opened(start("oidc:p1", Some(tenant()))),
            Binding::Tenant(tenant())
        );
        // Logged before sessions recorded their tenant: no tenant is known to be safe.
        assert_eq!(opened(start("oidc:p1", None)), Binding::Unknown);
    }

    #[test]
    fn given_started_when_rotated_with_the_live_token_then_refreshed_and_the_old_one_spent() {
        let state = given([started()]).when(rotate(1, 2)).then([refreshed(2)]);
        assert!(state.state().accepts(&[2], now()));
        assert!(!state.state().accepts(&[1], now()));
        assert_eq!(state.state().spent, [vec![1]]);
    }

    #[test]
    fn given_a_token_for_a_tenant_when_rotated_naming_none_then_the_tenant_is_kept() {
        let refresh = SessionCommand::Rotate {
            presented: vec![1],
            next: vec![2],
            tenant_id: Some(tenant()),
            now: now(),
        };
        let state = given([started()])
            .when(refresh)
            .then([SessionEvent::Refreshed(pb::SessionRefreshed {
                token_digest: vec![2],
                tenant_id: tenant().to_string(),
            })]);
        let state = state.when(rotate(2, 3)).then([refreshed(3)]);
        assert_eq!(state.state().tenant_id, Some(tenant()));
    }

    #[test]
    fn given_rotated_twice_when_a_spent_token_is_presented_then_the_family_is_revoked() {
        let state = given([started(), refreshed(2), refreshed(3)]);
        // A made-up token is refused without touching the session.
        state.when(rotate(9, 10)).then_error(invalid_token());
        // Token 1 again: the thief and the owner are both out.
        let revoked = state.when(rotate(1, 4)).then([revoked(REUSE_DETECTED)]);
        assert_eq!(revoked.state().revoked.as_deref(), Some(REUSE_DETECTED));
        revoked.when(rotate(3, 5)).then_error(invalid_token());
        revoked.when(rotate(1, 5)).then_error(invalid_token());
    }

    #[test]
    fn given_an_expired_session_when_rotated_then_invalid() {
        given([started()])
            .when(rotate_at(1, 2, now() + Duration::days(1)))
            .then_error(invalid_token());
    }

    #[test]
    fn given_nothing_when_rotated_or_revoked_then_invalid() {
        given([]).when(rotate(1, 2)).then_error(invalid_token());
        given([]).when(revoke(1)).then_error(invalid_token());
    }

    #[test]
    fn given_started_when_revoked_with_the_live_token_then_logged_out() {
        let state = given([started()]).when(revoke(1)).then([revoked("logout")]);
        assert!(!state.state().accepts(&[1], now()));
        state.when(rotate(1, 2)).then_error(invalid_token());
    }

    #[test]
    fn given_rotated_when_logged_out_with_a_spent_token_then_the_family_ends() {
        let state = given([started(), refreshed(2)]);
        // A token the family never had changes nothing.
        state.when(revoke(9)).then_error(invalid_token());
        let ended = state.when(revoke(1)).then([revoked(REUSE_DETECTED)]);
        assert!(!ended.state().accepts(&[2], now()));
    }

    #[test]
    fn given_revoked_when_revoked_again_then_nothing() {
        let state = given([started(), revoked("logout")]);
        state.when(revoke(1)).then_nothing();
        state.when(revoke(9)).then_nothing();
    }
}
