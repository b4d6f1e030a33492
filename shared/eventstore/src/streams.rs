//! Stream names, their settings, and the handle every other part of the store hangs off.
//!
//! The store owns its infrastructure: opening it creates the three streams every service may
//! use (bringing their settings up to date where the connection may), so no service creates a
//! stream of its own.
//! - `EVENTS`: the event log, immutable, one subject per aggregate.
//! - `USAGE`: metered counts (`usage.<tenant>.<meter>`), kept 40 days for billing's roll-ups.
//! - `JOBS`: a work queue (`jobs.<kind>.<priority>.<tenant>`): a message is gone once acked.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::error::StoreError;
use crate::subject::validate_root;

/// The streams of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Events,
    Usage,
    Jobs,
}

/// Names of the streams and their subject roots. A prefix lets parallel test runs and several
/// installations share one NATS server without seeing each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    pub events_stream: String,
    /// Subject root of the event log, e.g. `evt` or `<prefix>.evt`.
    pub events_root: String,
    /// Metered counts (`USAGE`, `usage.<tenant>.<meter>`): not part of the log.
    pub usage_stream: String,
    pub usage_root: String,
    /// Work waiting for a worker (`JOBS`, `jobs.<kind>.<priority>.<tenant>`).
    pub jobs_stream: String,
    pub jobs_root: String,
}

impl StreamNames {
    /// `EVENTS`/`evt` (and `USAGE`/`usage`, `JOBS`/`jobs`) without a prefix;
    /// `<PREFIX>_EVENTS`/`<prefix>.evt` and so on with one.
    pub fn new(prefix: Option<&str>) -> Result<Self, StoreError> {
        let named = |stream: &str, root: &str| match prefix.filter(|p| !p.is_empty()) {
            None => (stream.to_owned(), root.to_owned()),
            Some(p) => (
                format!("{}_{stream}", p.to_uppercase()),
                format!("{p}.{root}"),
            ),
        };
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            crate::subject::validate_token("stream_prefix", p)?;
        }
        let (events_stream, events_root) = named("EVENTS", "evt");
        let (usage_stream, usage_root) = named("USAGE", "usage");
        let (jobs_stream, jobs_root) = named("JOBS", "jobs");
        Ok(Self {
            events_stream,
            events_root,
            usage_stream,
            usage_root,
            jobs_stream,
            jobs_root,
        })
    }

    /// The stream's name and subject root.
    pub fn of(&self, kind: StreamKind) -> (&str, &str) {
        match kind {
            StreamKind::Events => (&self.events_stream, &self.events_root),
            StreamKind::Usage => (&self.usage_stream, &self.usage_root),
            StreamKind::Jobs => (&self.jobs_stream, &self.jobs_root),
        }
    }

    /// Every stream of the installation (tests delete them all when they end).
    pub fn all(&self) -> [&str; 3] {
        [&self.events_stream, &self.usage_stream, &self.jobs_stream]
    }
}

/// Handle to the streams: appends, reads, tails and projections go through it. Cheap to
/// clone.
#[derive(Clone)]
pub struct EventStore {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) names: StreamNames,
    pub(crate) stream: stream::Stream,
    pub(crate) usage: stream::Stream,
    pub(crate) jobs: stream::Stream,
}

impl EventStore {
    /// Creates the streams if they are missing, and returns a handle. Settings of existing
    /// streams are brought up to date only where the connection may update streams (ADR 0009).
    ///
    /// `replicas` is 1 on a laptop and 3 in production.
    pub async fn open(
        client: async_nats::Client,
        names: StreamNames,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        validate_root("events_root", &names.events_root)?;
        validate_root("usage_root", &names.usage_root)?;
        validate_root("jobs_root", &names.jobs_root)?;
        // A command waits at most this long for NATS before failing `UNAVAILABLE` (the
        // client's default is 30 s, far longer than any caller waits).
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .ack_timeout(Duration::from_secs(5))
            .build(client.clone());
        let replicas = replicas.max(1);
        let events = stream::Config {
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
            num_replicas: replicas,
            ..Default::default()
        };
        let usage = stream::Config {
            name: names.usage_stream.clone(),
            subjects: vec![format!("{}.>", names.usage_root)],
            storage: stream::StorageType::File,
            // 40 days: billing can roll a month up after the fact.
            max_age: Duration::from_secs(40 * 86_400),
            // A reporter retries a report with the same id; it counts once.
            duplicate_window: Duration::from_secs(120),
            num_replicas: replicas,
            ..Default::default()
        };
        let jobs = stream::Config {
            name: names.jobs_stream.clone(),
            subjects: vec![format!("{}.>", names.jobs_root)],
            storage: stream::StorageType::File,
            // A job is removed once a worker acknowledges it.
            retention: stream::RetentionPolicy::WorkQueue,
            duplicate_window: Duration::from_secs(120),
            num_replicas: replicas,
            ..Default::default()
        };
        let stream = create(&js, events).await?;
        let usage = create(&js, usage).await?;
        let jobs = create(&js, jobs).await?;
        Ok(Self {
            client,
            js,
            names,
            stream,
            usage,
            jobs,
        })
    }

    pub fn names(&self) -> &StreamNames {
        &self.names
    }

    /// Subject root of the event log.
    pub fn root(&self) -> &str {
        &self.names.events_root
    }

    /// Subject root of `kind`'s stream.
    pub fn root_of(&self, kind: StreamKind) -> &str {
        self.names.of(kind).1
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub(crate) fn stream_of(&self, kind: StreamKind) -> &stream::Stream {
        match kind {
            StreamKind::Events => &self.stream,
            StreamKind::Usage => &self.usage,
            StreamKind::Jobs => &self.jobs,
        }
    }

    /// Sequence of the last message in the event log (0 when empty).
    pub async fn last_position(&self) -> Result<u64, StoreError> {
        self.last_position_of(StreamKind::Events).await
    }

    /// Sequence of the last message in `kind`'s stream (0 when empty).
    pub async fn last_position_of(&self, kind: StreamKind) -> Result<u64, StoreError> {
        let info = self
            .stream_of(kind)
            .get_info()
            .await
            .map_err(|e| StoreError::Unavailable(format!("stream info: {e}")))?;
        Ok(info.state.last_sequence)
    }
}

/// Creates the stream if it is missing. One that exists with other settings is brought up
/// to date only if this connection may update streams (the operator's, or a NATS without
/// authentication): a service's NATS user may create streams but not update them, since an
/// update can shrink the log's limits and so delete events that `deny_delete` protects
/// (ADR 0009). A service whose update is refused keeps the stream as the operator set it.
async fn create(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, StoreError> {
    let name = config.name.clone();
    let mut attempt = 0;
    loop {
        match js.create_stream(config.clone()).await {
            // Created, or it exists with exactly these settings.
            Ok(stream) => return Ok(stream),
            // The server failed to make the stream's store: nats-server removes an account's
            // store directory when its last stream is deleted, and a creation racing that
            // removal fails once ("could not create storage directory"). Asked again, it
            // makes the directory anew.
            Err(e) if store_not_created(&e) && attempt < 4 => {
                attempt += 1;
                tracing::warn!(stream = %name, error = %e, attempt, "stream store not created; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            Err(e) if !exists_with_other_settings(&e) => {
                return Err(StoreError::Unavailable(format!(
                    "create stream {name}: {e}"
                )));
            }
            Err(_) => break,
        }
    }
    if let Err(e) = js.update_stream(config).await {
        tracing::warn!(
            stream = %name,
            error = %e,
            "stream settings differ from this version's and could not be updated; an operator updates them (ADR 0009)"
        );
    }
    js.get_stream(&name)
        .await
        .map_err(|e| StoreError::Unavailable(format!("get stream {name}: {e}")))
}

fn store_not_created(error: &async_nats::jetstream::context::CreateStreamError) -> bool {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::CreateStreamErrorKind;
    matches!(error.kind(), CreateStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_CREATE)
}

fn exists_with_other_settings(error: &async_nats::jetstream::context::CreateStreamError) -> bool {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::CreateStreamErrorKind;
    matches!(error.kind(), CreateStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NAME_EXIST)
}
