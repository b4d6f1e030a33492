//! A run's job on the `JOBS` work queue.

use tenantry_eventstore::{EventStore, StreamKind};
use uuid::Uuid;

/// Incremental (from the saved cursors) or full (from the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Incremental,
    Full,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::Full => "full",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "" | "incremental" => Some(Self::Incremental),
            "full" => Some(Self::Full),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    /// Also the job's message id (a repeated enqueue is one job) and the outcome's command
    /// id (a repeated outcome is one event).
    pub run_id: Uuid,
    pub mode: Mode,
    /// 1 (lowest) to 9.
    pub priority: u8,
}

/// The work-queue subjects' kind token.
pub const KIND: &str = "sync";

impl Job {
    pub fn subject(&self, root: &str) -> String {
        format!("{root}.{KIND}.{}.{}", self.priority.min(9), self.tenant_id)
    }

    /// Puts the job on the queue (acknowledged by JetStream before it returns), with its run
    /// id as the message id.
    pub async fn enqueue(&self, store: &EventStore) -> Result<(), String> {
        self.enqueue_once(store, &self.run_id.to_string()).await
    }

    /// Puts the job on the queue unless a job with message id `once` was queued within the
    /// stream's duplicate window (webhooks coalesce a burst this way, the scheduler a due
    /// time seen twice).
    pub async fn enqueue_once(&self, store: &EventStore, once: &str) -> Result<(), String> {
        self.publish_once(store, once)
            .await?
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Publishes the job with message id `once`; answers JetStream's acknowledgement to await.
    async fn publish_once(
        &self,
        store: &EventStore,
        once: &str,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, String> {
        let root = store.root_of(StreamKind::Jobs);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", once);
        let body = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        store
            .jetstream()
            .publish_with_headers(self.subject(root), headers, body.into())
            .await
            .map_err(|e| e.to_string())
    }
}

/// Queues every `(job, once)` like [`Job::enqueue_once`], all published before any
/// acknowledgement is awaited: a batch costs about one round trip to JetStream, not one per
/// job (1,000 integrations due on the same minute are queued within a tick). Keep batches
/// well under the JetStream context's acknowledgements in flight (5,000), past which a
/// publish waits for one to be awaited.
pub async fn enqueue_all(store: &EventStore, jobs: &[(Job, String)]) -> Result<(), String> {
    let mut acks = Vec::with_capacity(jobs.len());
    for (job, once) in jobs {
        acks.push(job.publish_once(store, once).await?);
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
