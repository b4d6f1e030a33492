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
    use tenantry_kit::gwt::Given;

    use super::*;

    fn acme() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
    }

    fn other() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000b)
    }

    fn given(events: impl IntoIterator<Item = ReservationEvent>) -> Given<Reservation> {
        tenantry_kit::gwt::given(events).of(PLATFORM_TENANT, "slug:acme")
    }

    fn claim(tenant_id: Uuid, command_id: &str) -> ReservationCommand {
        ReservationCommand::Claim {
            kind: "slug",
            name: "acme".into(),
            tenant_id,
            command_id: command_id.into(),
        }
    }

    fn release(tenant_id: Uuid) -> ReservationCommand {
        ReservationCommand::Release {
            kind: "slug",
            name: "acme".into(),
            tenant_id,
        }
    }

    fn claimed(tenant: Uuid) -> ReservationEvent {
        ReservationEvent::Claimed(pb::ReservationClaimed {
            kind: "slug".into(),
            name: "acme".into(),
            tenant_id: tenant.to_string(),
        })
    }

    fn released(tenant: Uuid) -> ReservationEvent {
        ReservationEvent::Released(pb::ReservationReleased {
            kind: "slug".into(),
            name: "acme".into(),
            tenant_id: tenant.to_string(),
        })
    }

    /// `acme` holds the name, claimed by command `cmd-1`.
    fn held() -> Given<Reservation> {
        given([]).by("cmd-1").and([claimed(acme())])
    }

    #[test]
    fn given_a_free_name_when_claimed_then_claimed_by_the_tenant_and_its_command() {
        let state = given([])
            .by("cmd-1")
            .when(claim(acme(), "cmd-1"))
            .then([claimed(acme())]);
        assert_eq!(
            state.state(),
            &Reservation {
                holder: Some(acme()),
                claimed_by: Some("cmd-1".into()),
            }
        );
    }

    #[test]
    fn given_a_claim_when_the_holder_claims_again_then_nothing() {
        held().when(claim(acme(), "cmd-9")).then_nothing();
    }

    #[test]
    fn given_a_claim_when_another_tenant_claims_then_already_exists() {
        held()
            .when(claim(other(), "cmd-2"))
            .then_error(DomainError::AlreadyExists("slug acme".into()));
    }

    #[test]
    fn given_a_claim_when_the_same_command_retries_then_nothing_new() {
        // A retried CreateTenant mints another tenant id: its claim is recognised by the
        // command id and answered with the first claim (whose holder is the tenant's id).
        held().when(claim(other(), "cmd-1")).then_nothing();
    }

    #[test]
    fn given_a_claim_when_the_holder_releases_then_released_and_the_name_is_free_again() {
        let free = held().when(release(acme())).then([released(acme())]);
        assert_eq!(free.state(), &Reservation::default());
        free.by("cmd-2")
            .when(claim(other(), "cmd-2"))
            .then([claimed(other())]);
    }

    #[test]
    fn given_a_claim_when_another_tenant_releases_then_nothing() {
        held().when(release(other())).then_nothing();
    }

    #[test]
    fn given_a_free_name_when_released_then_nothing() {
        given([]).when(release(acme())).then_nothing();
        given([claimed(acme()), released(acme())])
            .when(release(acme()))
            .then_nothing();
    }

    #[test]
    fn a_name_is_addressed_by_its_kind_with_dots_as_underscores() {
        let domain = address("domain", "app.acme.com").unwrap();
        assert_eq!(domain.aggregate_id(), "domain:app_acme_com");
        assert_eq!(address("slug", "acme").unwrap().aggregate_id(), "slug:acme");
    }
}
