//! The worker: the durable consumer `sync_runs` on the `JOBS` work queue (shared by every
//! replica), a bounded number of runs at once.
//!
//! A job is acknowledged once its outcome is recorded; while it runs the worker tells
//! JetStream it is still at it (`+WPI`), so only a worker that died loses it, and it is
//! delivered again after `ack_wait`. A run that failed on our side is retried later (`-NAK`
//! with a delay), up to `max_deliver` times. At most `per_tenant` runs of one tenant go at
//! once in a replica; a free slot goes to the best ranked job waiting (its tenant's plan's
//! processing priority, then its own priority: see [`super::slots`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures::StreamExt;
use tenantry_eventstore::{EventStore, StreamKind};
use tenantry_kit::plans::PlanDirectory;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::job::{Job, KIND};
use super::runner::Runner;
use super::slots::{RankedSlots, plan_rank};

pub const CONSUMER: &str = "sync_runs";
/// Jobs asked for at once from `JOBS` (at least the replica's slots).
const PULL_BATCH: usize = 64;

pub struct Worker {
    pub runner: Arc<Runner>,
    pub store: EventStore,
    /// Runs at once in this replica.
    pub concurrency: usize,
    /// Runs of one tenant at once in this replica: a tenant with many jobs waits for its own
    /// runs, never holding a slot another tenant's job could use.
    pub per_tenant: usize,
    /// How long a job may go without word from its worker before it is delivered again.
    pub ack_wait: Duration,
    /// The tenants' plans: their processing priority ranks their jobs.
    pub plans: Arc<PlanDirectory>,
}

impl Worker {
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                result = self.consume() => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "sync worker: consuming jobs failed; retrying");
                    }
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn consume(&self) -> Result<(), String> {
        let js = self.store.jetstream();
        let stream = js
            .get_stream(self.store.names().of(StreamKind::Jobs).0)
            .await
            .map_err(|e| format!("jobs stream: {e}"))?;
        let consumer = stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    filter_subject: format!("{}.{KIND}.>", self.store.root_of(StreamKind::Jobs)),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_deliver: 20,
                    // Jobs taken but waiting for their tenant's turn count here: bounded.
                    max_ack_pending: 1_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("consumer: {e}"))?;
        let mut messages = consumer
            .stream()
            // Jobs wait for a slot here ([`RankedSlots`]), so pulling many at a time costs
            // no fairness within the replica and saves a pull's round trip per few jobs.
            .max_messages_per_batch(self.concurrency.max(PULL_BATCH))
            .messages()
            .await
            .map_err(|e| format!("consume: {e}"))?;
        let slots = Slots {
            all: RankedSlots::new(self.concurrency.max(1)),
            plans: self.plans.clone(),
            tenants: Arc::default(),
            per_tenant: self.per_tenant.max(1),
        };
        // The runs in flight belong to this loop: when it ends (shutdown), they are dropped
        // unacknowledged, as in a crash, and JetStream gives them to a worker after ack_wait.
        let mut running = tokio::task::JoinSet::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| format!("next job: {e}"))?;
            let runner = self.runner.clone();
            let every = self.ack_wait / 3;
            let slots = slots.clone();
            running.spawn(async move { handle(&runner, &slots, message, every).await });
            while running.try_join_next().is_some() {}
        }
        Err("the job stream ended".into())
    }
}

/// The replica's run slots: all of them, and each tenant's.
#[derive(Clone)]
struct Slots {
    all: RankedSlots,
    plans: Arc<PlanDirectory>,
    tenants: Arc<tokio::sync::Mutex<HashMap<Uuid, Arc<Semaphore>>>>,
    per_tenant: usize,
}

impl Slots {
    async fn tenant(&self, tenant: Uuid) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().await;
        // Forget idle tenants' semaphores now and then (a crude bound on the map).
        if tenants.len() > 10_000 {
            tenants.retain(|_, s| s.available_permits() < self.per_tenant);
        }
        tenants
            .entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone()
    }
}

/// Waits for `permit`, telling JetStream every `every` that the job is still ours.
async fn wait_for<F: std::future::Future>(
    message: &async_nats::jetstream::Message,
    every: Duration,
    permit: F,
) -> F::Output {
    tokio::pin!(permit);
    loop {
        tokio::select! {
            got = &mut permit => return got,
            () = tokio::time::sleep(every) => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    }
}

async fn handle(
    runner: &Runner,
    slots: &Slots,
    message: async_nats::jetstream::Message,
    every: Duration,
) {
    let job: Job = match serde_json::from_slice(&message.payload) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(subject = %message.subject, error = %e, "unreadable sync job dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    // The tenant's turn first, then a slot of the replica: a tenant's waiting jobs hold no
    // slot another tenant could run in.
    let tenant = slots.tenant(job.tenant_id).await;
    let Ok(tenant_turn) = wait_for(&message, every, tenant.acquire_owned()).await else {
        return;
    };
    let plan = slots
        .plans
        .limits(job.tenant_id)
        .map_or(0, |l| l.processing_priority);
    let Some(slot) = wait_for(
        &message,
        every,
        slots.all.acquire(plan_rank(plan), job.priority),
    )
    .await
    else {
        return;
    };
    let run = runner.run(&job);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            () = tokio::time::sleep(every) => {
                // Still ours: postpones redelivery.
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    };
    // The run is over: its slot and its tenant's turn go to the next job while the queue
    // hears how it ended.
    drop((slot, tenant_turn));
    match result {
        Ok(_) => {
            if let Err(e) = message.double_ack().await {
                tracing::warn!(run_id = %job.run_id, error = %e, "acknowledging a sync job failed");
            }
        }
        Err(e) => {
            let attempt = message.info().map(|i| i.delivered).unwrap_or(1).max(1);
            let delay = Duration::from_secs((1u64 << attempt.min(8)).min(300));
            tracing::warn!(run_id = %job.run_id, attempt, error = %e, "sync run failed on our side; retrying");
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
        }
    }
}
