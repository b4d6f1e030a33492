//! A tenant's team: who holds which role, and the invitations still open.
//!
//! One aggregate per tenant (`<tenant>.team.<tenant>`), so "the last owner cannot be removed
//! or demoted" is decided against the whole team under one expected sequence.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tenantry_eventstore::{Aggregate, EventMeta, time};
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::events::TeamEvent;
use super::{DomainError, same_digest};

/// Members a team may have when its tenant's plan sets no number of seats (billing's
/// `PlanLimitsChanged.seats` = 0, or no plan on the log yet).
pub const MAX_MEMBERS: usize = 10_000;
pub const MAX_OPEN_INVITATIONS: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub email: String,
    pub role: Role,
    pub digest: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Team {
    pub members: BTreeMap<Uuid, Member>,
    /// Open invitations only: accepted and revoked ones are gone.
    pub invitations: BTreeMap<Uuid, Invitation>,
}

#[derive(Debug, Clone)]
pub enum TeamCommand {
    /// Idempotent: an existing member keeps their role. `max_members`: the tenant's seats
    /// (its plan's, else [`MAX_MEMBERS`]), looked up before deciding, as for `Accept`.
    AddMember {
        user_id: Uuid,
        email: String,
        role: Role,
        via: String,
        max_members: usize,
    },
    ChangeRole {
        user_id: Uuid,
        role: Role,
    },
    RemoveMember {
        user_id: Uuid,
    },
    Invite {
        id: Uuid,
        email: String,
        role: Role,
        digest: Vec<u8>,
        expires_at: DateTime<Utc>,
    },
    Accept {
        id: Uuid,
        presented: Vec<u8>,
        user_id: Uuid,
        email: String,
        now: DateTime<Utc>,
        max_members: usize,
    },
    RevokeInvitation {
        id: Uuid,
    },
}

impl Team {
    fn owners(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Owner)
            .count()
    }

    fn member(&self, user_id: Uuid) -> Result<&Member, DomainError> {
        self.members
            .get(&user_id)
            .ok_or_else(|| DomainError::NotFound(format!("member {user_id}")))
    }

    /// Refuses a new member beyond `max_members` (a team over a lowered cap keeps its
    /// members, and takes no new one).
    fn room_for_one_more(&self, max_members: usize) -> Result<(), DomainError> {
        if self.members.len() >= max_members {
            return Err(DomainError::limit(
                "max_team_members",
                format!("a team has at most {max_members} members"),
            ));
        }
        Ok(())
    }

    /// Refuses to take away the last owner.
    fn keep_an_owner(&self, user_id: Uuid) -> Result<(), DomainError> {
        if self.member(user_id)?.role == Role::Owner && self.owners() == 1 {
            return Err(DomainError::Precondition(
                "the last owner cannot be removed or demoted; make another member owner first"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn added(user_id: Uuid, email: &str, role: Role, via: &str) -> TeamEvent {
    TeamEvent::MemberAdded(pb::MemberAdded {
        user_id: user_id.to_string(),
        role: role.as_str().into(),
        via: via.into(),
        email: email.into(),
    })
}

impl Aggregate for Team {
    type Command = TeamCommand;
    type Event = TeamEvent;
    type Error = DomainError;

    fn decide(&self, command: &TeamCommand) -> Result<Vec<TeamEvent>, DomainError> {
        match command {
            TeamCommand::AddMember {
                user_id,
                email,
                role,
                via,
                max_members,
            } => {
                if self.members.contains_key(user_id) {
                    return Ok(vec![]);
                }
                self.room_for_one_more(*max_members)?;
                Ok(vec![added(*user_id, email, *role, via)])
            }
            TeamCommand::ChangeRole { user_id, role } => {
                let member = self.member(*user_id)?;
                if member.role == *role {
                    return Ok(vec![]);
                }
                if *role != Role::Owner {
                    self.keep_an_owner(*user_id)?;
                }
                Ok(vec![TeamEvent::MemberRoleChanged(pb::MemberRoleChanged {
                    user_id: user_id.to_string(),
                    role: role.as_str().into(),
                })])
            }
            TeamCommand::RemoveMember { user_id } => {
                self.keep_an_owner(*user_id)?;
                Ok(vec![TeamEvent::MemberRemoved(pb::MemberRemoved {
                    user_id: user_id.to_string(),
                })])
            }
            TeamCommand::Invite {
                id,
                email,
                role,
                digest,
                expires_at,
            } => {
                if self.invitations.len() >= MAX_OPEN_INVITATIONS {
                    return Err(DomainError::limit(
                        "max_open_invitations",
                        format!("at most {MAX_OPEN_INVITATIONS} invitations may be open"),
                    ));
                }
                Ok(vec![TeamEvent::InvitationCreated(pb::InvitationCreated {
                    invitation_id: id.to_string(),
                    email: email.clone(),
                    role: role.as_str().into(),
                    token_digest: digest.clone(),
                    expires_at: Some(time::to_proto(*expires_at)),
                })])
            }
            TeamCommand::Accept {
                id,
                presented,
                user_id,
                email,
                now,
                max_members,
            } => {
                let refused = || DomainError::Unauthenticated("invalid invitation".into());
                let invitation = self.invitations.get(id).ok_or_else(refused)?;
                if !same_digest(&invitation.digest, presented) || invitation.expires_at <= *now {
                    return Err(refused());
                }
                if !invitation.email.eq_ignore_ascii_case(email) {
                    return Err(DomainError::Precondition(
                        "the invitation was sent to another e-mail address".into(),
                    ));
                }
                let mut events = vec![TeamEvent::InvitationAccepted(pb::InvitationAccepted {
                    invitation_id: id.to_string(),
                    user_id: user_id.to_string(),
                })];
                match self.members.get(user_id) {
                    // Joining by invitation is joining: the same bound as being added.
                    None => {
                        self.room_for_one_more(*max_members)?;
                        events.push(added(
                            *user_id,
                            email,
                            invitation.role,
                            &format!("invitation:{id}"),
                        ));
                    }
                    Some(m) if m.role < invitation.role => {
                        events.push(TeamEvent::MemberRoleChanged(pb::MemberRoleChanged {
                            user_id: user_id.to_string(),
                            role: invitation.role.as_str().into(),
                        }));
                    }
                    Some(_) => {}
                }
                Ok(events)
            }
            TeamCommand::RevokeInvitation { id } => {
                if !self.invitations.contains_key(id) {
                    return Err(DomainError::NotFound(format!("invitation {id}")));
                }
                Ok(vec![TeamEvent::InvitationRevoked(pb::InvitationRevoked {
                    invitation_id: id.to_string(),
                })])
            }
        }
    }

    fn evolve(&mut self, event: &TeamEvent, _meta: &EventMeta) {
        let id = |s: &str| Uuid::try_parse(s).unwrap_or_default();
        let role = |s: &str| s.parse::<Role>().unwrap_or(Role::Viewer);
        match event {
            TeamEvent::MemberAdded(e) => {
                self.members.insert(
                    id(&e.user_id),
                    Member {
                        role: role(&e.role),
                        email: e.email.clone(),
                    },
                );
            }
            TeamEvent::MemberRoleChanged(e) => {
                if let Some(m) = self.members.get_mut(&id(&e.user_id)) {
                    m.role = role(&e.role);
                }
            }
            TeamEvent::MemberRemoved(e) => {
                self.members.remove(&id(&e.user_id));
            }
            TeamEvent::InvitationCreated(e) => {
                self.invitations.insert(
                    id(&e.invitation_id),
                    Invitation {
                        email: e.email.clone(),
                        role: role(&e.role),
                        digest: e.token_digest.clone(),
                        expires_at: time::from_proto(e.expires_at.as_ref()),
                    },
                );
            }
            TeamEvent::InvitationAccepted(e) => {
                self.invitations.remove(&id(&e.invitation_id));
            }
            TeamEvent::InvitationRevoked(e) => {
                self.invitations.remove(&id(&e.invitation_id));
            }
        }
    }
}

#[cfg(test)]
mod tests;
