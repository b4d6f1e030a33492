//! The tenant service's contracts: the `tenant` aggregate (one per tenant, id = tenant id)
//! and the platform-level `reservation` aggregate (unique slugs and domains).

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

/// Aggregate type of a tenant.
pub const TENANT: &str = "tenant";
/// Aggregate type of a claimed unique name (under the platform tenant).
pub const RESERVATION: &str = "reservation";

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

event_table!(TenantEvent in "tenant" {
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

event_table!(ReservationEvent in "reservation" {
    Claimed => "reservation.claimed.v1": pb::ReservationClaimed,
    Released => "reservation.released.v1": pb::ReservationReleased,
});
