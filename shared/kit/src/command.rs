//! A command's metadata from its request: idempotency key, actor, correlation, trace.

use std::sync::Arc;

use tenantry_eventstore::CommandMeta;
use uuid::Uuid;

use crate::{ApiError, Clock, TenantContext};

/// Metadata key of the client's idempotency key; the same key sent twice has one effect.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Metadata key grouping the events of one request or saga across services.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// Builds the metadata of a command made by `caller` through `request`.
pub fn meta<T: prost::Message>(
    request: &tonic::Request<T>,
    caller: &TenantContext,
    clock: &Arc<dyn Clock>,
) -> Result<CommandMeta, ApiError> {
    let metadata = request.metadata();
    let keyed = metadata.contains_key(IDEMPOTENCY_KEY);
    let command_id = match metadata.get(IDEMPOTENCY_KEY) {
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| ApiError::invalid(IDEMPOTENCY_KEY, "must be ASCII"))?;
            check_key(IDEMPOTENCY_KEY, key)?;
            // Scoped by caller so two tenants' keys cannot collide in the dedupe window.
            format!(
                "{}:{key}",
                caller
                    .tenant_id
                    .map_or_else(|| "platform".to_owned(), |t| t.to_string())
            )
        }
        None => Uuid::now_v7().to_string(),
    };
    let correlation_id = match metadata.get(CORRELATION_ID) {
        Some(value) => {
            let id = value
                .to_str()
                .map_err(|_| ApiError::invalid(CORRELATION_ID, "must be ASCII"))?;
            check_key(CORRELATION_ID, id)?;
            id.to_owned()
        }
        None => command_id.clone(),
    };
    Ok(CommandMeta {
        command_id,
        actor: caller.actor(),
        correlation_id,
        occurred_at: clock.now(),
        traceparent: crate::telemetry::current_traceparent(),
        fingerprint: keyed.then(|| fingerprint(request.get_ref())),
    })
}

/// What a request asked for: its type and encoded fields, digested. A retry of the same
/// request has the same fingerprint; the same key on another request does not.
pub fn fingerprint<T: prost::Message>(request: &T) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(std::any::type_name::<T>().as_bytes());
    context.update(&[0]);
    context.update(&request.encode_to_vec());
    context
        .finish()
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_key(field: &str, key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be 1-64 of [A-Za-z0-9_-]"))
    }
}
