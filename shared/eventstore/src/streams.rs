//! Stream names, their settings, and the handle every other part of the store hangs off.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::error::StoreError;
use crate::subject::validate_root;

/// Names of the streams and their subject roots. A prefix lets parallel test runs and several
/// installations share one NATS server without seeing each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    pub events_stream: String,
    /// Subject root of the event log, e.g. `evt` or `<prefix>.evt`.
    pub events_root: String,
    /// Gateways' usage counts (`USAGE`, `usage.<tenant>.<meter>`): not part of the log.
    pub usage_stream: String,
    pub usage_root: String,
}

impl StreamNames {
    /// `EVENTS`/`evt` without a prefix; `<PREFIX>_EVENTS`/`<prefix>.evt` with one.
    pub fn new(prefix: Option<&str>) -> Result<Self, StoreError> {
        match prefix.filter(|p| !p.is_empty()) {
            None => Ok(Self {
                events_stream: "EVENTS".into(),
                events_root: "evt".into(),
                usage_stream: "USAGE".into(),
                usage_root: "usage".into(),
            }),
            Some(p) => {
                crate::subject::validate_token("stream_prefix", p)?;
                Ok(Self {
                    events_stream: format!("{}_EVENTS", p.to_uppercase()),
                    events_root: format!("{p}.evt"),
                    usage_stream: format!("{}_USAGE", p.to_uppercase()),
                    usage_root: format!("{p}.usage"),
                })
            }
        }
    }
}

/// Handle to the event log: appends, reads and projections go through it. Cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) names: StreamNames,
    pub(crate) stream: stream::Stream,
}

impl EventStore {
    /// Creates the `EVENTS` stream or brings its settings up to date, and returns a handle.
    ///
    /// `replicas` is 1 on a laptop and 3 in production.
    pub async fn open(
        client: async_nats::Client,
        names: StreamNames,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        validate_root("events_root", &names.events_root)?;
        // A command waits at most this long for NATS before failing `UNAVAILABLE` (the
        // client's default is 30 s, far longer than any caller waits).
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .ack_timeout(Duration::from_secs(5))
            .build(client.clone());
        let config = stream::Config {
            name: names.events_stream.clone(),
            subjects: vec![format!("{}.>", names.events_root)],
            storage: stream::StorageType::File,
            // The log is immutable: erasure is crypto-shredding, not deletion.
            deny_delete: true,
            deny_purge: true,
            // Aggregate loads use direct gets, which any replica can answer.
            allow_direct: true,
            // Retries of a command inside this window are deduplicated by Nats-Msg-Id.
            duplicate_window: Duration::from_secs(120),
            num_replicas: replicas.max(1),
            ..Default::default()
        };
        js.create_or_update_stream(config)
            .await
            .map_err(|e| StoreError::Unavailable(format!("create stream: {e}")))?;
        let stream = js
            .get_stream(&names.events_stream)
            .await
            .map_err(|e| StoreError::Unavailable(format!("get stream: {e}")))?;
        Ok(Self {
            client,
            js,
            names,
            stream,
        })
    }

    pub fn names(&self) -> &StreamNames {
        &self.names
    }

    pub fn root(&self) -> &str {
        &self.names.events_root
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Sequence of the last message in the stream (0 when empty).
    pub async fn last_position(&self) -> Result<u64, StoreError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| StoreError::Unavailable(format!("stream info: {e}")))?;
        Ok(info.state.last_sequence)
    }
}
