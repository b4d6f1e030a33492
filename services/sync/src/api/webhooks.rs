//! `POST /webhooks/sync/{integration_id}`: a source telling us something changed (e.g. a VTEX
//! order hook). The delivery must carry the integration's webhook secret in
//! `X-Tenantry-Webhook-Secret` (shown once, when the integration was created; VTEX's hook
//! configuration sends it as a custom header); it then queues an incremental run at high
//! priority. The body is not read: the run fetches what changed from the source itself, so a
//! delivery cannot inject records.
//!
//! A burst of deliveries coalesces into one run per integration every few seconds (the job's
//! message id names the window). An unknown integration and a wrong secret get the same
//! answer, so neither tells whether the other exists.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use sqlx::PgPool;
use tenantry_eventstore::{EventStore, Repository};
use tenantry_kit::Clock;
use tenantry_kit::db::{Scope, scoped_tx};
use uuid::Uuid;

use crate::domain::Integration;
use crate::domain::integration;
use crate::runs::{Job, Mode};
use tenantry_kit::seal::{Keystore, Sealed};

pub const SECRET_HEADER: &str = "x-tenantry-webhook-secret";
/// Deliveries within this many seconds of each other start one run.
const COALESCE_SECS: i64 = 2;
/// Webhook runs go before manual (5) and scheduled (3) ones.
const PRIORITY: u8 = 8;

#[derive(Clone)]
pub struct Webhooks {
    pub pool: PgPool,
    pub integrations: Repository<Integration>,
    pub keystore: Keystore,
    pub store: EventStore,
    pub clock: Arc<dyn Clock>,
}

pub fn router(webhooks: Webhooks) -> Router {
    Router::new()
        .route("/webhooks/sync/{integration_id}", post(deliver))
        // Nothing is read from the body: a small cap keeps large posts cheap to refuse.
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
        .with_state(webhooks)
}

fn digest(value: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, value)
}

async fn deliver(
    State(w): State<Webhooks>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, &'static str) {
    const REFUSED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "unknown integration or secret");
    let Ok(id) = Uuid::try_parse(&integration_id) else {
        return REFUSED;
    };
    let Some(presented) = headers.get(SECRET_HEADER).map(|v| v.as_bytes().to_vec()) else {
        return REFUSED;
    };
    match w.accept(id, &presented).await {
        Ok(true) => (StatusCode::ACCEPTED, "queued"),
        Ok(false) => {
            tracing::warn!(integration_id = %id, "refused a sync webhook");
            REFUSED
        }
        Err(e) => {
            tracing::error!(integration_id = %id, error = %e, "a sync webhook could not be handled");
            (StatusCode::SERVICE_UNAVAILABLE, "retry later")
        }
    }
}

impl Webhooks {
    /// Whether the delivery is the integration's; if so, its run is queued.
    async fn accept(&self, id: Uuid, presented: &[u8]) -> Result<bool, String> {
        // The tenant is not in the URL: looked up across tenants, for this one id only.
        let mut tx = scoped_tx(&self.pool, Scope::Platform)
            .await
            .map_err(|e| e.to_string())?;
        let tenant: Option<Uuid> =
            sqlx::query_scalar("SELECT tenant_id FROM integrations WHERE integration_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        let Some(tenant) = tenant else {
            return Ok(false);
        };
        let address = integration::address(tenant, id).map_err(|e| e.to_string())?;
        let (state, _) = self
            .integrations
            .load(&address)
            .await
            .map_err(|e| e.to_string())?;
        let Some(sealed) = state.webhook_secret.as_ref() else {
            return Ok(false);
        };
        let Ok(secret) = self.keystore.open(tenant, id, &Sealed::from(sealed)).await else {
            return Ok(false);
        };
        // Digests compared, so the comparison's time says nothing about the secret.
        if digest(&secret).as_ref() != digest(presented).as_ref() {
            return Ok(false);
        }
        if !state.enabled {
            return Ok(true); // accepted, and nothing to run
        }
        let job = Job {
            tenant_id: tenant,
            integration_id: id,
            run_id: Uuid::now_v7(),
            mode: Mode::Incremental,
            priority: PRIORITY,
        };
        let window = self.clock.now().timestamp().div_euclid(COALESCE_SECS);
        job.enqueue_once(&self.store, &format!("webhook-{id}-{window}"))
            .await?;
        Ok(true)
    }
}
