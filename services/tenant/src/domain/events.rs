//! Event names and wire types of the tenant service's aggregates.

use tenantry_eventstore::event_table;
#[cfg(test)]
use tenantry_eventstore::{DecodeError, EventPayload};
use tenantry_proto::events::v1 as pb;

/// Events of the `tenant` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantEvent {
    Created(pb::TenantCreated),
    SettingsUpdated(pb::TenantSettingsUpdated),
    FeatureFlagsChanged(pb::TenantFeatureFlagsChanged),
    DomainAdded(pb::TenantDomainAdded),
    DomainVerified(pb::TenantDomainVerified),
    DomainRemoved(pb::TenantDomainRemoved),
    Suspended(pb::TenantSuspended),
    Reactivated(pb::TenantReactivated),
    MarkedForDecommission(pb::TenantMarkedForDecommission),
    TypeChanged(pb::TenantTypeChanged),
    TrialExpired(pb::TenantTrialExpired),
}

event_table!(TenantEvent {
    Created => "tenant.created.v1": pb::TenantCreated,
    SettingsUpdated => "tenant.settings_updated.v1": pb::TenantSettingsUpdated,
    FeatureFlagsChanged => "tenant.feature_flags_changed.v1": pb::TenantFeatureFlagsChanged,
    DomainAdded => "tenant.domain_added.v1": pb::TenantDomainAdded,
    DomainVerified => "tenant.domain_verified.v1": pb::TenantDomainVerified,
    DomainRemoved => "tenant.domain_removed.v1": pb::TenantDomainRemoved,
    Suspended => "tenant.suspended.v1": pb::TenantSuspended,
    Reactivated => "tenant.reactivated.v1": pb::TenantReactivated,
    MarkedForDecommission => "tenant.marked_for_decommission.v1": pb::TenantMarkedForDecommission,
    TypeChanged => "tenant.type_changed.v1": pb::TenantTypeChanged,
    TrialExpired => "tenant.trial_expired.v1": pb::TenantTrialExpired,
});

/// Events of the `reservation` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum ReservationEvent {
    Claimed(pb::ReservationClaimed),
    Released(pb::ReservationReleased),
}

event_table!(ReservationEvent {
    Claimed => "reservation.claimed.v1": pb::ReservationClaimed,
    Released => "reservation.released.v1": pb::ReservationReleased,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_types() {
        let e = TenantEvent::Suspended(pb::TenantSuspended {
            reason: "late payment".into(),
        });
        let back = TenantEvent::decode(e.event_type(), &e.encode_payload()).unwrap();
        assert_eq!(back, e);
        assert!(matches!(
            TenantEvent::decode("tenant.exploded.v1", &[]),
            Err(DecodeError::UnknownType(_))
        ));
    }
}
