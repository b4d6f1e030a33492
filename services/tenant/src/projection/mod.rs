//! The `tenants` read model: one row per tenant, folded from the log by the same `evolve` the
//! aggregate uses.
//!
//! A batch is applied with two statements whatever its size: load the rows it touches, fold
//! the events in memory, upsert them all with one `UNNEST`.

pub mod queries;

use std::collections::HashMap;

use sqlx::PgConnection;
use tenantry_eventstore::{
    Aggregate, Projection, ProjectionError, StoredMessage, aggregate::fold, subject,
};
use tenantry_kit::db::{Scope, set_scope};
use uuid::Uuid;

use crate::domain::Tenant;

pub const NAME: &str = "tenant_tenants";

pub struct TenantsProjection;

impl Projection for TenantsProjection {
    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        // Aggregate types are constants: a valid token by construction.
        subject::type_filter(root, Tenant::TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        // The projection writes every tenant's rows.
        set_scope(tx, Scope::Platform).await?;
        let ids: Vec<Uuid> = messages.iter().filter_map(aggregate_id).collect();
        let mut rows: HashMap<Uuid, Tenant> = HashMap::new();
        let existing: Vec<(Uuid, sqlx::types::Json<Tenant>)> =
            sqlx::query_as("SELECT tenant_id, state FROM tenants WHERE tenant_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        rows.extend(existing.into_iter().map(|(id, state)| (id, state.0)));
        let mut order: Vec<Uuid> = Vec::new();
        for message in messages {
            let Some(id) = aggregate_id(message) else {
                return Err(ProjectionError::Other(format!(
                    "message {} has no tenant aggregate id",
                    message.position
                )));
            };
            let state = rows.entry(id).or_insert_with(|| {
                order.push(id);
                Tenant::default()
            });
            if !order.contains(&id) {
                order.push(id);
            }
            fold(state, message)?;
        }
        upsert(tx, order.iter().filter_map(|id| rows.get(id))).await?;
        Ok(())
    }
}

fn aggregate_id(message: &StoredMessage) -> Option<Uuid> {
    message
        .batch
        .events
        .first()
        .and_then(|e| Uuid::try_parse(&e.aggregate_id).ok())
}

async fn upsert<'a>(
    tx: &mut PgConnection,
    tenants: impl Iterator<Item = &'a Tenant>,
) -> Result<(), ProjectionError> {
    let mut cols = Columns::default();
    for t in tenants {
        let Some(id) = t.id else { continue };
        cols.id.push(id);
        cols.slug.push(t.slug.clone());
        cols.name.push(t.name.clone());
        cols.kind.push(t.kind.as_str().to_owned());
        cols.status.push(t.status.as_str().to_owned());
        cols.trial_ends_at.push(t.trial_ends_at);
        cols.trial_expired.push(t.trial_expired);
        cols.state
            .push(serde_json::to_string(t).map_err(|e| ProjectionError::Other(e.to_string()))?);
        cols.version.push(t.version as i64);
        cols.created_at.push(t.created_at);
        cols.updated_at.push(t.updated_at);
    }
    sqlx::query(
        "INSERT INTO tenants (tenant_id, slug, name, kind, status, trial_ends_at, trial_expired, state, version, created_at, updated_at)
         SELECT u.id, u.slug, u.name, u.kind, u.status, u.trial_ends_at, u.trial_expired, u.state::jsonb, u.version, u.created_at, u.updated_at
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bool[], $8::text[], $9::int8[], $10::timestamptz[], $11::timestamptz[])
           AS u(id, slug, name, kind, status, trial_ends_at, trial_expired, state, version, created_at, updated_at)
         ON CONFLICT (tenant_id) DO UPDATE SET
           slug = EXCLUDED.slug, name = EXCLUDED.name, kind = EXCLUDED.kind, status = EXCLUDED.status,
           trial_ends_at = EXCLUDED.trial_ends_at, trial_expired = EXCLUDED.trial_expired, state = EXCLUDED.state,
           version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
    )
    .bind(cols.id)
    .bind(cols.slug)
    .bind(cols.name)
    .bind(cols.kind)
    .bind(cols.status)
    .bind(cols.trial_ends_at)
    .bind(cols.trial_expired)
    .bind(cols.state)
    .bind(cols.version)
    .bind(cols.created_at)
    .bind(cols.updated_at)
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    slug: Vec<String>,
    name: Vec<String>,
    kind: Vec<String>,
    status: Vec<String>,
    trial_ends_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    trial_expired: Vec<bool>,
    state: Vec<String>,
    version: Vec<i64>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    updated_at: Vec<chrono::DateTime<chrono::Utc>>,
}
