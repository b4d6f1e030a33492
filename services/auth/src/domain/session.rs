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
    use super::*;
    use crate::domain::run;

    #[test]
    fn a_spent_token_revokes_the_family() {
        let now = Utc::now();
        let mut s = Session::default();
        run(
            &mut s,
            &SessionCommand::Start {
                id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                digest: vec![1],
                expires_at: now + chrono::Duration::days(1),
                method: "password".into(),
                bound_tenant: None,
            },
        )
        .unwrap();
        let rotate = |presented: u8, next: u8| SessionCommand::Rotate {
            presented: vec![presented],
            next: vec![next],
            tenant_id: None,
            now,
        };
        run(&mut s, &rotate(1, 2)).unwrap();
        run(&mut s, &rotate(2, 3)).unwrap();
        // A made-up token is refused without touching the session.
        assert!(run(&mut s, &rotate(9, 10)).is_err());
        assert!(s.revoked.is_none());
        // Token 1 again: the thief and the owner are both out.
        run(&mut s, &rotate(1, 4)).unwrap();
        assert_eq!(s.revoked.as_deref(), Some(REUSE_DETECTED));
        assert!(run(&mut s, &rotate(3, 5)).is_err());
    }

    #[test]
    fn a_federated_session_is_bound_to_its_tenant_and_an_unbound_one_to_nothing() {
        let tenant = Uuid::now_v7();
        let start = |method: &str, bound_tenant| SessionCommand::Start {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            digest: vec![1],
            expires_at: Utc::now() + chrono::Duration::days(1),
            method: method.into(),
            bound_tenant,
        };
        let opened = |command| {
            let mut s = Session::default();
            run(&mut s, &command).unwrap();
            s.binding()
        };
        assert_eq!(opened(start("password", None)), Binding::Free);
        assert_eq!(
            opened(start("oidc:p1", Some(tenant))),
            Binding::Tenant(tenant)
        );
        // Logged before sessions recorded their tenant: no tenant is known to be safe.
        assert_eq!(opened(start("oidc:p1", None)), Binding::Unknown);
    }

    #[test]
    fn logout_with_a_spent_token_ends_the_family() {
        let now = Utc::now();
        let mut s = Session::default();
        run(
            &mut s,
            &SessionCommand::Start {
                id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                digest: vec![1],
                expires_at: now + chrono::Duration::days(1),
                method: "password".into(),
                bound_tenant: None,
            },
        )
        .unwrap();
        let rotate = SessionCommand::Rotate {
            presented: vec![1],
            next: vec![2],
            tenant_id: None,
            now,
        };
        run(&mut s, &rotate).unwrap();
        // A token the family never had changes nothing.
        assert!(run(&mut s, &SessionCommand::Revoke { presented: vec![9] }).is_err());
        assert!(s.revoked.is_none());
        run(&mut s, &SessionCommand::Revoke { presented: vec![1] }).unwrap();
        assert_eq!(s.revoked.as_deref(), Some(REUSE_DETECTED));
        assert!(!s.accepts(&[2], now));
    }
}
