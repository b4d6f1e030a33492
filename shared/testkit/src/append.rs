//! Writing another service's events into a test's log, as that service would: what tests of a
//! consumer do instead of starting the producer (the gateway's tests append the tenant
//! service's and billing's events through their contracts).

use tenantry_eventstore::aggregate::batch_of;
use tenantry_eventstore::{
    AggregateAddress, AppendRequest, CommandMeta, EventPayload, EventStore, StoreError,
};
use uuid::Uuid;

/// Appends `event` to aggregate `aggregate_id` of its contract's type in `tenant`, with no
/// expectation on the aggregate's version; returns its position.
pub async fn append<E: EventPayload>(
    store: &EventStore,
    tenant: &str,
    aggregate_id: &str,
    event: E,
) -> Result<u64, StoreError> {
    let address = AggregateAddress::for_events::<E>(tenant, aggregate_id)?;
    let meta = CommandMeta {
        command_id: Uuid::now_v7().to_string(),
        actor: "test".into(),
        correlation_id: Uuid::now_v7().to_string(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    };
    let outcome = store
        .append(AppendRequest {
            address: address.clone(),
            expected: None,
            message_id: meta.command_id.clone(),
            batch: batch_of(&address, &[event], &meta),
            traceparent: None,
            fingerprint: None,
        })
        .await?;
    Ok(outcome.position)
}
