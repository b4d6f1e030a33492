//! The `integrations` table: one row per integration, the aggregate's state folded by its own
//! `evolve` (credentials left out), and when its schedule next wants a run; and the `alerts`
//! its events raise (in the same transaction: one checkpoint for both).

use std::collections::HashMap;

use sqlx::PgConnection;
use tenantry_contracts::sync::IntegrationEvent;
use tenantry_eventstore::{
    Aggregate, Projection, ProjectionError, StoreError, StoredMessage, aggregate::fold, subject,
};
use tenantry_kit::db::{Scope, set_scope};
use uuid::Uuid;

use crate::domain::Integration;

pub const NAME: &str = "sync_integrations";

#[derive(Default)]
pub struct IntegrationsProjection;

type Key = (Uuid, Uuid);

fn key_of(message: &StoredMessage) -> Result<Key, ProjectionError> {
    let first = message.batch.events.first();
    first
        .and_then(|e| {
            Some((
                Uuid::try_parse(&e.tenant_id).ok()?,
                Uuid::try_parse(&e.aggregate_id).ok()?,
            ))
        })
        // Never decodable: quarantined rather than retried.
        .ok_or_else(|| {
            ProjectionError::Store(StoreError::Corrupt(format!(
                "message {} has no tenant or integration id",
                message.position
            )))
        })
}

impl Projection for IntegrationsProjection {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        subject::type_filter(root, Integration::TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        set_scope(tx, Scope::Platform).await?;
        let mut touched: Vec<Key> = Vec::new();
        for message in messages {
            let key = key_of(message)?;
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = touched.iter().copied().unzip();
        // A lookup by key per touched integration (a join let the planner scan the table).
        let rows: Vec<(Uuid, Uuid, sqlx::types::Json<Integration>)> = sqlx::query_as(
            "SELECT i.tenant_id, i.integration_id, i.state
             FROM UNNEST($1::uuid[], $2::uuid[]) AS k(tenant_id, integration_id),
                  LATERAL (SELECT * FROM integrations i
                           WHERE i.tenant_id = k.tenant_id
                             AND i.integration_id = k.integration_id) i",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut states: HashMap<Key, (Integration, u64)> = rows
            .into_iter()
            .map(|(t, i, s)| ((t, i), (s.0, 0)))
            .collect();
        for message in messages {
            let entry = states.entry(key_of(message)?).or_default();
            fold(&mut entry.0, message)?;
            entry.1 = message.position;
            for stored in message.events::<IntegrationEvent>()? {
                let Some((kind, text)) = alert_of(&stored.event) else {
                    continue;
                };
                let (Ok(tenant), Ok(integration)) = (
                    Uuid::try_parse(&stored.meta.tenant_id),
                    Uuid::try_parse(&stored.meta.aggregate_id),
                ) else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO alerts
                         (tenant_id, alert_id, integration_id, kind, message, raised_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(tenant)
                .bind(&stored.meta.event_id)
                .bind(integration)
                .bind(kind)
                .bind(text)
                .bind(stored.meta.occurred_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Every touched integration's row in one statement (a batch's worth of runs would
        // otherwise be as many round trips).
        let mut rows = IntegrationRows::default();
        for key in touched {
            let Some((s, version)) = states.get(&key) else {
                continue;
            };
            if !s.exists() {
                continue;
            }
            rows.tenants.push(key.0);
            rows.ids.push(key.1);
            rows.names.push(s.name.clone());
            rows.kinds
                .push(s.kind.map(|k| k.as_str()).unwrap_or_default().to_owned());
            rows.enabled.push(s.enabled);
            rows.next_run_at.push(s.next_run_at());
            rows.states.push(
                serde_json::to_string(s)
                    .map_err(|e| ProjectionError::Store(StoreError::Corrupt(e.to_string())))?,
            );
            rows.versions
                .push(i64::try_from(*version).unwrap_or(i64::MAX));
        }
        if rows.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO integrations
                 (tenant_id, integration_id, name, type, enabled, next_run_at, state, version,
                  updated_at)
             SELECT r.tenant_id, r.integration_id, r.name, r.type, r.enabled, r.next_run_at,
                    r.state::jsonb, r.version, now()
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bool[],
                         $6::timestamptz[], $7::text[], $8::bigint[])
                  AS r(tenant_id, integration_id, name, type, enabled, next_run_at, state, version)
             ON CONFLICT (tenant_id, integration_id) DO UPDATE SET name = EXCLUDED.name,
                 enabled = EXCLUDED.enabled, next_run_at = EXCLUDED.next_run_at,
                 state = EXCLUDED.state, version = EXCLUDED.version, updated_at = now()",
        )
        .bind(&rows.tenants)
        .bind(&rows.ids)
        .bind(&rows.names)
        .bind(&rows.kinds)
        .bind(&rows.enabled)
        .bind(&rows.next_run_at)
        .bind(&rows.states)
        .bind(&rows.versions)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// The `integrations` rows of a batch, column by column (for `UNNEST`).
#[derive(Default)]
struct IntegrationRows {
    tenants: Vec<Uuid>,
    ids: Vec<Uuid>,
    names: Vec<String>,
    kinds: Vec<String>,
    enabled: Vec<bool>,
    next_run_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    states: Vec<String>,
    versions: Vec<i64>,
}

/// The alert an event raises, if any: (kind, message).
fn alert_of(event: &IntegrationEvent) -> Option<(String, String)> {
    match event {
        IntegrationEvent::AlertRaised(a) => Some((a.kind.clone(), a.message.clone())),
        IntegrationEvent::Failing(f) => Some((
            "failure_streak".into(),
            format!("failed {} times in a row", f.failure_streak),
        )),
        IntegrationEvent::Disabled(d) if d.automatic => {
            Some(("disabled".into(), format!("disabled itself: {}", d.reason)))
        }
        _ => None,
    }
}
