//! Events as stored: an `EventBatch` of `Envelope`s per JetStream message.

use chrono::{DateTime, Utc};
use prost::Message as _;
use tenantry_proto::events::v1::{Envelope, EventBatch};
use thiserror::Error;

use crate::time;

/// A domain event that can be written to and read from the log: the events of one aggregate
/// type, declared once with [`event_table!`](crate::event_table) in `tenantry-contracts`.
pub trait EventPayload: Sized + Send + Sync + 'static {
    /// The aggregate type whose subjects carry these events, e.g. `tenant`.
    const AGGREGATE_TYPE: &'static str;
    /// Every event type name this enum decodes (current and upcast versions).
    const EVENT_TYPES: &'static [&'static str];

    /// Dotted and versioned name, e.g. `tenant.created.v1`.
    fn event_type(&self) -> &'static str;
    fn encode_payload(&self) -> Vec<u8>;
    /// Old versions are upcast here; an unknown type is an error, never skipped.
    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, DecodeError>;

    /// The envelope's event, if it belongs to this aggregate type (`None` otherwise).
    fn from_envelope(envelope: &Envelope) -> Option<Result<Self, DecodeError>> {
        (envelope.aggregate_type == Self::AGGREGATE_TYPE)
            .then(|| Self::decode(&envelope.event_type, &envelope.payload))
    }
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("bad payload for {event_type}: {source}")]
    Payload {
        event_type: String,
        source: prost::DecodeError,
    },
}

impl DecodeError {
    pub fn payload(event_type: &str, source: prost::DecodeError) -> Self {
        Self::Payload {
            event_type: event_type.to_owned(),
            source,
        }
    }
}

/// What every event carries besides its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    pub event_id: String,
    pub tenant_id: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub causation_id: String,
    pub correlation_id: String,
    /// Stream sequence of the message that holds the event.
    pub position: u64,
}

/// A decoded event with its metadata.
#[derive(Debug, Clone)]
pub struct StoredEvent<E> {
    pub meta: EventMeta,
    pub event: E,
}

/// One message of the log: the events one command appended to one aggregate.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub position: u64,
    pub subject: String,
    pub batch: EventBatch,
    /// W3C trace context of the command that appended it, to continue the trace.
    pub traceparent: Option<String>,
}

impl StoredMessage {
    pub fn decode(
        position: u64,
        subject: impl Into<String>,
        payload: &[u8],
        traceparent: Option<String>,
    ) -> Result<Self, crate::StoreError> {
        let batch = EventBatch::decode(payload)
            .map_err(|e| crate::StoreError::Corrupt(format!("message {position}: {e}")))?;
        Ok(Self {
            position,
            subject: subject.into(),
            batch,
            traceparent,
        })
    }

    /// The events of this message decoded as `E`, in order.
    pub fn events<E: EventPayload>(&self) -> Result<Vec<StoredEvent<E>>, DecodeError> {
        self.batch
            .events
            .iter()
            .map(|env| {
                Ok(StoredEvent {
                    meta: meta_of(env, self.position),
                    event: E::decode(&env.event_type, &env.payload)?,
                })
            })
            .collect()
    }

    /// The tenant of the message (all its events share the aggregate, hence the tenant).
    pub fn tenant_id(&self) -> Option<&str> {
        self.batch.events.first().map(|e| e.tenant_id.as_str())
    }
}

/// A message of one of the store's streams, as its readers decode it: the event log's
/// [`StoredMessage`], or a [`RawMessage`] of the `USAGE` and `JOBS` streams.
pub trait StreamMessage: Sized + Send + Sync + 'static {
    fn decode(
        position: u64,
        subject: &str,
        payload: &[u8],
        traceparent: Option<String>,
    ) -> Result<Self, crate::StoreError>;

    /// Stream sequence of the message.
    fn position(&self) -> u64;
}

impl StreamMessage for StoredMessage {
    fn decode(
        position: u64,
        subject: &str,
        payload: &[u8],
        traceparent: Option<String>,
    ) -> Result<Self, crate::StoreError> {
        StoredMessage::decode(position, subject, payload, traceparent)
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// A message of a stream that is not the event log (usage reports, jobs): its payload is
/// the reader's to decode, with the contract of that stream.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub position: u64,
    pub subject: String,
    pub payload: Vec<u8>,
}

impl StreamMessage for RawMessage {
    fn decode(
        position: u64,
        subject: &str,
        payload: &[u8],
        _traceparent: Option<String>,
    ) -> Result<Self, crate::StoreError> {
        Ok(Self {
            position,
            subject: subject.to_owned(),
            payload: payload.to_vec(),
        })
    }

    fn position(&self) -> u64 {
        self.position
    }
}

pub(crate) fn meta_of(env: &Envelope, position: u64) -> EventMeta {
    EventMeta {
        event_id: env.event_id.clone(),
        tenant_id: env.tenant_id.clone(),
        aggregate_id: env.aggregate_id.clone(),
        occurred_at: time::from_proto(env.occurred_at.as_ref()),
        actor: env.actor.clone(),
        causation_id: env.causation_id.clone(),
        correlation_id: env.correlation_id.clone(),
        position,
    }
}

/// Implements [`EventPayload`] for an enum of protobuf messages from a table that declares,
/// once, the aggregate type and each variant's event type name and wire message:
///
/// ```ignore
/// event_table!(TenantEvent in "tenant" {
///     Created => "tenant.created.v1": pb::TenantCreated,
/// });
/// ```
#[macro_export]
macro_rules! event_table {
    ($enum:ident in $aggregate:literal { $($variant:ident => $name:literal : $msg:ty),* $(,)? }) => {
        impl $crate::EventPayload for $enum {
            const AGGREGATE_TYPE: &'static str = $aggregate;
            const EVENT_TYPES: &'static [&'static str] = &[$($name),*];

            fn event_type(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name),* }
            }

            fn encode_payload(&self) -> Vec<u8> {
                match self { $(Self::$variant(m) => $crate::__prost::Message::encode_to_vec(m)),* }
            }

            fn decode(event_type: &str, payload: &[u8]) -> Result<Self, $crate::DecodeError> {
                match event_type {
                    $($name => <$msg as $crate::__prost::Message>::decode(payload).map(Self::$variant).map_err(|e| $crate::DecodeError::payload(event_type, e)),)*
                    other => Err($crate::DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}
