//! Appending to the log: one message per command, with optimistic concurrency and dedupe.

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;
use futures::future::join_all;
use prost::Message as _;
use tenantry_proto::events::v1::EventBatch;

use crate::error::StoreError;
use crate::streams::EventStore;
use crate::subject::AggregateAddress;

/// One command's events for one aggregate.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub address: AggregateAddress,
    /// Stream sequence of the aggregate's last message; 0 means "must not exist yet";
    /// `None` skips the check (only for streams of facts no one decides on).
    pub expected: Option<u64>,
    /// Deduplicates retries: the command id (plus a suffix when a command writes twice).
    pub message_id: String,
    pub batch: EventBatch,
    pub traceparent: Option<String>,
    /// What the request that caused it was (see [`crate::CommandMeta::fingerprint`]): kept
    /// in a header, so a retry under the same message id can be told from another request.
    pub fingerprint: Option<String>,
}

/// Header holding a message's [`AppendRequest::fingerprint`].
pub const FINGERPRINT_HEADER: &str = "Tenantry-Request-Fingerprint";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Stream sequence of the message: the command's position.
    pub position: u64,
    /// The message id had been seen: nothing new was written, `position` is the original's.
    pub duplicate: bool,
}

impl EventStore {
    /// Appends one message and waits for its acknowledgement.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let subject = request.address.subject(self.root());
        let expected = request.expected.unwrap_or_default();
        let ack = self.publish(subject.clone(), &request).await?;
        settle(ack.await, subject, expected)
    }

    /// Appends many messages without waiting for each acknowledgement in turn: every message is
    /// written to the connection first, then the acknowledgements are collected. Results come
    /// back in the order of the requests.
    pub async fn append_many(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, StoreError>> {
        let mut pending = Vec::with_capacity(requests.len());
        for request in &requests {
            let subject = request.address.subject(self.root());
            let expected = request.expected.unwrap_or_default();
            pending.push(async move {
                let ack = self.publish(subject.clone(), request).await?;
                settle(ack.await, subject, expected)
            });
        }
        // The futures publish in order as they are first polled; join_all polls them all
        // before any acknowledgement is awaited, so the appends are in flight together.
        join_all(pending).await
    }

    async fn publish(
        &self,
        subject: String,
        request: &AppendRequest,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, StoreError> {
        // While disconnected the client would buffer the message and send it on reconnect,
        // after the caller was told the command failed: refuse instead, so a command reported
        // unavailable is not applied later behind the caller's back.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(StoreError::Unavailable("not connected to NATS".into()));
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", request.message_id.as_str());
        if let Some(expected) = request.expected {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                expected.to_string().as_str(),
            );
        }
        if let Some(tp) = &request.traceparent {
            headers.insert("traceparent", tp.as_str());
        }
        if let Some(fingerprint) = &request.fingerprint {
            headers.insert(FINGERPRINT_HEADER, fingerprint.as_str());
        }
        let payload = Bytes::from(request.batch.encode_to_vec());
        self.js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| StoreError::Unavailable(format!("publish: {e}")))
    }
}

impl EventStore {
    /// The request fingerprint stored with the message at `position` (`None`: it has none).
    pub async fn fingerprint_at(&self, position: u64) -> Result<Option<String>, StoreError> {
        let message = self
            .stream
            .direct_get(position)
            .await
            .map_err(|e| StoreError::Unavailable(format!("read message {position}: {e}")))?;
        Ok(message
            .headers
            .get(FINGERPRINT_HEADER)
            .map(|v| v.to_string()))
    }
}

fn settle(
    ack: Result<
        async_nats::jetstream::publish::PublishAck,
        async_nats::jetstream::context::PublishError,
    >,
    subject: String,
    expected: u64,
) -> Result<AppendOutcome, StoreError> {
    match ack {
        Ok(ack) => Ok(AppendOutcome {
            position: ack.sequence,
            duplicate: ack.duplicate,
        }),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
            Err(StoreError::Conflict { subject, expected })
        }
        Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
            Err(StoreError::TooLarge { size: 0, max: 0 })
        }
        Err(e) => Err(StoreError::Unavailable(format!("append to {subject}: {e}"))),
    }
}
