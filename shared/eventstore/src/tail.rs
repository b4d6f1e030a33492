//! Reading the log from its start and then live, without a durable consumer: for state kept
//! in memory and rebuilt at every start (the gateway's snapshot, the API-key directory).

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use futures::StreamExt;

use crate::error::StoreError;
use crate::event::StoredMessage;
use crate::streams::EventStore;

/// An ordered consumer over the messages matching a filter, from the first.
pub struct Tail {
    /// Messages waiting when the tail was opened: 0 means the reader is caught up already.
    pub pending_at_start: u64,
    messages: Ordered,
}

impl EventStore {
    /// Opens a [`Tail`] of the log's messages matching `filter`.
    pub async fn tail(&self, filter: String) -> Result<Tail, StoreError> {
        let failed = |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("tail {e}"));
        let mut consumer = self
            .stream
            .create_consumer(OrderedConfig {
                filter_subject: filter,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let pending_at_start = consumer.info().await.map_err(|e| failed(&e))?.num_pending;
        let messages = consumer.messages().await.map_err(|e| failed(&e))?;
        Ok(Tail {
            pending_at_start,
            messages,
        })
    }
}

impl Tail {
    /// The next message and how many were still pending after it (0: caught up). A message
    /// that cannot be decoded is an error item; consumer hiccups are retried inside (the
    /// ordered consumer recreates itself). `None` once the connection is gone for good.
    pub async fn next(&mut self) -> Option<(Result<StoredMessage, StoreError>, u64)> {
        loop {
            let message = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "tail: consumer error; it resumes");
                    continue;
                }
            };
            let Ok(info) = message.info() else { continue };
            let (position, pending) = (info.stream_sequence, info.pending);
            let decoded =
                StoredMessage::decode(position, message.subject.as_str(), &message.payload, None);
            return Some((decoded, pending));
        }
    }
}
