//! Reading one aggregate's messages without a consumer.

use async_nats::jetstream::stream::DirectGetErrorKind;

use crate::error::StoreError;
use crate::event::StoredMessage;
use crate::streams::EventStore;
use crate::subject::AggregateAddress;

impl EventStore {
    /// Every message of the aggregate after stream sequence `after`, in order.
    ///
    /// Walks the subject with direct gets (`next_by_subj`): one request per message, answered
    /// by any replica, no consumer created.
    pub async fn read_aggregate(
        &self,
        address: &AggregateAddress,
        after: u64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let subject = address.subject(self.root());
        let mut messages = Vec::new();
        let mut next = after + 1;
        loop {
            match self
                .stream
                .direct_get_next_for_subject(subject.clone(), Some(next))
                .await
            {
                Ok(msg) => {
                    let traceparent = msg.headers.get("traceparent").map(|v| v.to_string());
                    next = msg.sequence + 1;
                    messages.push(StoredMessage::decode(
                        msg.sequence,
                        subject.clone(),
                        &msg.payload,
                        traceparent,
                    )?);
                }
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(messages),
                Err(e) => return Err(StoreError::Unavailable(format!("read {subject}: {e}"))),
            }
        }
    }
}
