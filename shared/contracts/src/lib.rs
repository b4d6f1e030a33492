//! The event contracts of Tenantry: what each service publishes, in one place.
//!
//! A producer owns its contract (the tenant service owns [`tenant`], billing owns
//! [`billing`]'s `subscription` events); consumers depend on this crate, never on another
//! service's crate, and never match event or aggregate types by string. Each contract is an
//! enum of protobuf payloads declared with [`tenantry_eventstore::event_table!`], which gives
//! the aggregate type, every event type name with its version, and typed decoding
//! ([`EventPayload::decode`], [`EventPayload::from_envelope`]).
//!
//! Event type names are dotted and versioned (`tenant.created.v1`); a changed payload gets a
//! new version, and the old one is upcast in the same enum's decoding, never edited.
//!
//! # Layout
//! - [`tenant`]: the `tenant` and `reservation` aggregates (tenant service).
//! - [`auth`]: users, credentials, sessions, teams, service accounts, identity providers
//!   (auth service).
//! - [`gateway`]: the `route` aggregate (gateway).
//! - [`billing`]: the `subscription` aggregate: plan limits and quota states (billing).
//! - [`orchestration`]: the `deployment` aggregate: dedicated instances and what their
//!   runtime observed (orchestration).
//! - [`sync`]: the `integration` aggregate (sync), and the meters sync reports to `USAGE`.
//! - [`usage`]: the `USAGE` stream's reports and meters (gateways report, billing rolls up).

#![forbid(unsafe_code)]

pub mod auth;
pub mod billing;
pub mod gateway;
pub mod orchestration;
pub mod sync;
pub mod tenant;
pub mod usage;

pub use tenantry_eventstore::{DecodeError, EventPayload};
pub use tenantry_proto::events::v1 as pb;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every contract, by its aggregate type and event type names.
    fn contracts() -> Vec<(&'static str, &'static [&'static str])> {
        fn of<E: EventPayload>() -> (&'static str, &'static [&'static str]) {
            (E::AGGREGATE_TYPE, E::EVENT_TYPES)
        }
        vec![
            of::<tenant::TenantEvent>(),
            of::<tenant::ReservationEvent>(),
            of::<auth::UserEvent>(),
            of::<auth::CredentialEvent>(),
            of::<auth::SessionEvent>(),
            of::<auth::TeamEvent>(),
            of::<auth::ServiceAccountEvent>(),
            of::<auth::IdentityProviderEvent>(),
            of::<gateway::RouteEvent>(),
            of::<billing::SubscriptionEvent>(),
            of::<orchestration::DeploymentEvent>(),
            of::<sync::IntegrationEvent>(),
        ]
    }

    #[test]
    fn each_aggregate_type_has_one_contract_and_names_its_events_after_itself() {
        let mut seen = HashSet::new();
        for (aggregate, events) in contracts() {
            assert!(seen.insert(aggregate), "{aggregate} declared twice");
            for name in events {
                let mut parts = name.split('.');
                assert_eq!(parts.next(), Some(aggregate), "{name}");
                let version = name.rsplit('.').next().unwrap_or_default();
                assert!(
                    version.starts_with('v') && version[1..].parse::<u32>().is_ok(),
                    "{name} has no version"
                );
            }
        }
    }

    #[test]
    fn an_envelope_decodes_only_as_its_own_aggregate_type() {
        let event = tenant::TenantEvent::Suspended(pb::TenantSuspended {
            reason: "late payment".into(),
        });
        let envelope = pb::Envelope {
            aggregate_type: tenant::TENANT.into(),
            event_type: event.event_type().into(),
            payload: event.encode_payload(),
            ..Default::default()
        };
        let back = tenant::TenantEvent::from_envelope(&envelope)
            .unwrap()
            .unwrap();
        assert_eq!(back, event);
        assert!(gateway::RouteEvent::from_envelope(&envelope).is_none());
        assert!(matches!(
            tenant::TenantEvent::decode("tenant.exploded.v1", &[]),
            Err(DecodeError::UnknownType(_))
        ));
    }
}
