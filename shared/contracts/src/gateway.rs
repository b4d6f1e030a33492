//! The gateway's contract: a tenant's `route` (hosts, path prefix, balancing, backends,
//! health check, drained backends).

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum RouteEvent {
    Upserted(pb::RouteUpserted),
    Removed(pb::RouteRemoved),
    BackendDrained(pb::BackendDrained),
    BackendUndrained(pb::BackendUndrained),
}

event_table!(RouteEvent in "route" {
    Upserted => "route.upserted.v1": pb::RouteUpserted,
    Removed => "route.removed.v1": pb::RouteRemoved,
    BackendDrained => "route.backend_drained.v1": pb::BackendDrained,
    BackendUndrained => "route.backend_undrained.v1": pb::BackendUndrained,
});
