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
        let rows: Vec<(Uuid, Uuid, sqlx::types::Json<Integration>)> = sqlx::query_as(
            "SELECT i.tenant_id, i.integration_id, i.state FROM integrations i
             JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(tenant_id, integration_id)
               USING (tenant_id, integration_id)",
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
        for key in touched {
            let Some((s, version)) = states.get(&key) else {
                continue;
            };
            if !s.exists() {
                continue;
            }
            let next_run_at = s.next_run_at();
            sqlx::query(
                "INSERT INTO integrations
                     (tenant_id, integration_id, name, type, enabled, next_run_at, state, version,
                      updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                 ON CONFLICT (tenant_id, integration_id) DO UPDATE SET name = EXCLUDED.name,
                     enabled = EXCLUDED.enabled, next_run_at = EXCLUDED.next_run_at,
                     state = EXCLUDED.state, version = EXCLUDED.version, updated_at = now()",
            )
            .bind(key.0)
            .bind(key.1)
            .bind(&s.name)
            .bind(s.kind.map(|k| k.as_str()).unwrap_or_default())
            .bind(s.enabled)
            .bind(next_run_at)
            .bind(sqlx::types::Json(s))
            .bind(i64::try_from(*version).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
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
