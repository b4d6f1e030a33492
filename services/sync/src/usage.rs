//! The usage outbox published to `USAGE`: `records` and `storage` reports for billing's
//! roll-up.
//!
//! Each outbox row is one report whose sequence is the row's id (increasing per tenant and
//! meter, as billing's roll-up requires of a reporter) and whose message id is
//! `sync:<tenant>:<id>`: a row published twice (a crash between the publish and marking it)
//! is counted once, by JetStream's duplicate window and by billing's per-reporter marks. Rows
//! are published one at a time in id order, so a later report never overtakes an earlier one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::PgPool;
use tenantry_contracts::usage::{self, UsageReport};
use tenantry_eventstore::{EventStore, StreamKind};
use tenantry_kit::db::{Scope, scoped_tx};
use tokio::sync::Notify;
use uuid::Uuid;

/// The reporter's instance id: one sequence space for every replica (the outbox is shared).
pub const INSTANCE: &str = "sync";

#[derive(Clone)]
pub struct UsagePublisher {
    pub pool: PgPool,
    pub store: EventStore,
    /// Woken when a batch of records wrote usage.
    pub wake: Arc<Notify>,
    /// The fallback interval between looks at the outbox.
    pub every: Duration,
}

impl UsagePublisher {
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.publish_pending().await {
                tracing::warn!(error = %e, "usage reports not published yet; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Publishes every pending row in id order; answers how many.
    pub async fn publish_pending(&self) -> Result<usize, PublishError> {
        let root = self.store.root_of(StreamKind::Usage).to_owned();
        let mut published = 0;
        loop {
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            // One publisher at a time across replicas: the rows stay locked until marked.
            let rows: Vec<(i64, Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(
                "SELECT id, tenant_id, meter, quantity, window_start FROM usage_outbox
                 WHERE NOT published ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED",
            )
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(published);
            }
            let mut done = Vec::with_capacity(rows.len());
            for (id, tenant, meter, quantity, window_start) in rows {
                let tenant_text = tenant.to_string();
                let subject = usage::subject(&root, &tenant_text, &meter)
                    .map_err(|e| PublishError::Nats(e.to_string()))?;
                let sequence = u64::try_from(id).unwrap_or(0);
                let report = UsageReport {
                    tenant_id: tenant_text.clone(),
                    instance_id: INSTANCE.into(),
                    window_start: window_start.timestamp(),
                    window_seconds: 1,
                    sequence,
                    quantity: u64::try_from(quantity).unwrap_or(0),
                    ..Default::default()
                };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    "Nats-Msg-Id",
                    usage::message_id(INSTANCE, &tenant_text, sequence).as_str(),
                );
                let ack = self
                    .store
                    .jetstream()
                    .publish_with_headers(subject, headers, report.encode_to_vec().into())
                    .await
                    .map_err(|e| PublishError::Nats(e.to_string()))?;
                ack.await.map_err(|e| PublishError::Nats(e.to_string()))?;
                done.push(id);
            }
            sqlx::query("UPDATE usage_outbox SET published = true WHERE id = ANY($1)")
                .bind(&done)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            published += done.len();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
}
