//! Reading a stream from a position and then live, without a durable consumer: for state kept
//! in memory and rebuilt at every start (see [`crate::follower`]), and feeds that resume from
//! a position a client saw last.

use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::{Consumer, DeliverPolicy};
use futures::StreamExt;

use crate::error::StoreError;
use crate::event::{StoredMessage, StreamMessage};
use crate::streams::{EventStore, StreamKind};

/// An ordered consumer over the messages of a stream matching a filter (the event log's by
/// default).
pub struct Tail<M = StoredMessage> {
    /// Messages waiting when the tail was opened: 0 means the reader is caught up already.
    pub pending_at_start: u64,
    messages: Ordered,
    /// The server-side consumer, asked directly by [`Tail::probe`].
    consumer: Consumer<OrderedConfig>,
    decoded: std::marker::PhantomData<fn() -> M>,
}

/// What [`Tail::next`] yields.
pub enum TailItem<M = StoredMessage> {
    /// A message (decoded, or why not), its position, and how many were still pending
    /// after it (0: caught up).
    Message {
        position: u64,
        decoded: Result<M, StoreError>,
        pending: u64,
    },
    /// The consumer failed (NATS away, consumer deleted, heartbeats missed): the reader
    /// should open a new tail after the last position it applied.
    Interrupted(String),
}

impl EventStore {
    /// Opens a [`Tail`] of the log's messages matching `filter`, from the first.
    pub async fn tail(&self, filter: String) -> Result<Tail<StoredMessage>, StoreError> {
        self.tail_after(StreamKind::Events, filter, 0).await
    }

    /// Opens a [`Tail`] of `kind`'s messages matching `filter` whose position is after
    /// `after` (0: from the first).
    pub async fn tail_after<M: StreamMessage>(
        &self,
        kind: StreamKind,
        filter: String,
        after: u64,
    ) -> Result<Tail<M>, StoreError> {
        let failed = |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("tail {e}"));
        let deliver_policy = match after {
            0 => DeliverPolicy::All,
            position => DeliverPolicy::ByStartSequence {
                start_sequence: position + 1,
            },
        };
        let mut consumer = self
            .stream_of(kind)
            .create_consumer(OrderedConfig {
                // Named, so the request to create it carries the filter in its subject
                // (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`), which a service's
                // NATS permissions restrict to what it may read; an unnamed consumer is created
                // on a subject without the filter, which no service may use (ADR 0009).
                name: Some(format!("tail_{}", uuid::Uuid::new_v4().simple())),
                filter_subject: filter,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let pending_at_start = consumer.info().await.map_err(|e| failed(&e))?.num_pending;
        let messages = consumer.clone().messages().await.map_err(|e| failed(&e))?;
        Ok(Tail {
            pending_at_start,
            messages,
            consumer,
            decoded: std::marker::PhantomData,
        })
    }
}

impl<M: StreamMessage> Tail<M> {
    /// Asks the server how many messages the tail's consumer has not delivered yet. An error
    /// means the consumer is gone (the server restarted, or recreated it after missed
    /// heartbeats) or the server does not answer: the reader should open a new tail. The
    /// ordered consumer hides such gaps while it recreates itself; this makes them visible.
    pub async fn probe(&mut self) -> Result<u64, StoreError> {
        self.consumer
            .get_info()
            .await
            .map(|info| info.num_pending)
            .map_err(|e| StoreError::Unavailable(format!("tail consumer: {e}")))
    }

    /// The next message, or the news that the consumer failed. A message that cannot be
    /// decoded is an error item, never skipped here. `None` once the consumer has ended.
    pub async fn next(&mut self) -> Option<TailItem<M>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => return Some(TailItem::Interrupted(e.to_string())),
            };
            // Without its metadata a message has no position: not one of the stream's.
            let Ok(info) = message.info() else { continue };
            let (position, pending) = (info.stream_sequence, info.pending);
            let traceparent = message
                .headers
                .as_ref()
                .and_then(|h| h.get("traceparent"))
                .map(|v| v.to_string());
            let decoded = M::decode(
                position,
                message.subject.as_str(),
                &message.payload,
                traceparent,
            );
            return Some(TailItem::Message {
                position,
                decoded,
                pending,
            });
        }
    }
}
