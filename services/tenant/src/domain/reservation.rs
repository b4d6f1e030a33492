//! A platform-wide unique name (a slug, a custom domain) and the tenant holding it.
//!
//! Lives at `<root>.platform.reservation.<kind>:<name>`. Two creates racing for one slug both
//! append with the sequence they read; the log accepts one, the other reloads and is refused.

use serde::{Deserialize, Serialize};
use tenantry_eventstore::{Aggregate, AggregateAddress, EventMeta, InvalidToken, PLATFORM_TENANT};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::DomainError;
use super::events::ReservationEvent;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub holder: Option<Uuid>,
    /// The command that made the current claim: its retry is recognised, not refused.
    pub claimed_by: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ReservationCommand {
    Claim {
        kind: &'static str,
        name: String,
        tenant_id: Uuid,
        command_id: String,
    },
    Release {
        kind: &'static str,
        name: String,
        tenant_id: Uuid,
    },
}

/// Where the reservation of `name` of `kind` lives. Dots (domains) become `_`, which no
/// valid slug or host name contains, so the mapping is one to one.
pub fn address(kind: &'static str, name: &str) -> Result<AggregateAddress, InvalidToken> {
    AggregateAddress::of::<Reservation>(
        PLATFORM_TENANT,
        format!("{kind}:{}", name.replace('.', "_")),
    )
}

impl Aggregate for Reservation {
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = DomainError;

    fn decide(&self, command: &ReservationCommand) -> Result<Vec<ReservationEvent>, DomainError> {
        match command {
            ReservationCommand::Claim {
                kind,
                name,
                tenant_id,
                command_id,
            } => match self.holder {
                Some(holder) if holder == *tenant_id => Ok(vec![]),
                Some(_) if self.claimed_by.as_deref() == Some(command_id) => Ok(vec![]),
                Some(_) => Err(DomainError::AlreadyExists(format!("{kind} {name}"))),
                None => Ok(vec![ReservationEvent::Claimed(pb::ReservationClaimed {
                    kind: (*kind).to_owned(),
                    name: name.clone(),
                    tenant_id: tenant_id.to_string(),
                })]),
            },
            ReservationCommand::Release {
                kind,
                name,
                tenant_id,
            } => match self.holder {
                Some(holder) if holder == *tenant_id => {
                    Ok(vec![ReservationEvent::Released(pb::ReservationReleased {
                        kind: (*kind).to_owned(),
                        name: name.clone(),
                        tenant_id: tenant_id.to_string(),
                    })])
                }
                _ => Ok(vec![]),
            },
        }
    }

    fn evolve(&mut self, event: &ReservationEvent, meta: &EventMeta) {
        match event {
            ReservationEvent::Claimed(c) => {
                self.holder = Uuid::try_parse(&c.tenant_id).ok();
                self.claimed_by = Some(meta.causation_id.clone());
            }
            ReservationEvent::Released(_) => *self = Self::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(tenant: Uuid, by: &str) -> Reservation {
        let mut r = Reservation::default();
        let meta = EventMeta {
            event_id: String::new(),
            tenant_id: "platform".into(),
            aggregate_id: "slug:acme".into(),
            occurred_at: Default::default(),
            actor: "a".into(),
            causation_id: by.into(),
            correlation_id: by.into(),
            position: 1,
        };
        r.evolve(
            &ReservationEvent::Claimed(pb::ReservationClaimed {
                kind: "slug".into(),
                name: "acme".into(),
                tenant_id: tenant.to_string(),
            }),
            &meta,
        );
        r
    }

    #[test]
    fn given_a_claim_when_another_tenant_claims_then_already_exists() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let r = claimed(a, "cmd-1");
        let cmd = ReservationCommand::Claim {
            kind: "slug",
            name: "acme".into(),
            tenant_id: b,
            command_id: "cmd-2".into(),
        };
        assert_eq!(
            r.decide(&cmd),
            Err(DomainError::AlreadyExists("slug acme".into()))
        );
    }

    #[test]
    fn given_a_claim_when_the_same_command_retries_then_nothing_new() {
        let a = Uuid::now_v7();
        let r = claimed(a, "cmd-1");
        let retry = ReservationCommand::Claim {
            kind: "slug",
            name: "acme".into(),
            tenant_id: Uuid::now_v7(),
            command_id: "cmd-1".into(),
        };
        assert_eq!(r.decide(&retry), Ok(vec![]));
    }

    #[test]
    fn given_a_release_then_the_name_is_free_again() {
        let a = Uuid::now_v7();
        let r = claimed(a, "cmd-1");
        let events = r
            .decide(&ReservationCommand::Release {
                kind: "slug",
                name: "acme".into(),
                tenant_id: a,
            })
            .unwrap();
        assert_eq!(events.len(), 1);
        assert!(address("domain", "app.acme.com").unwrap().aggregate_id() == "domain:app_acme_com");
    }
}
