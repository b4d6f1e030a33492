//! The `subscriptions` table (one row per tenant, folded by the aggregate's own `evolve`) and
//! the `alerts` its quota crossings raised.

use std::collections::HashMap;

use sqlx::PgConnection;
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_eventstore::{
    Aggregate, Projection, ProjectionError, StoredMessage, aggregate::fold, subject, time,
};
use tenantry_kit::db::{Scope, set_scope};
use uuid::Uuid;

use crate::domain::Subscription;

pub const NAME: &str = "billing_subscriptions";

#[derive(Default)]
pub struct SubscriptionsProjection;

impl Projection for SubscriptionsProjection {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        subject::type_filter(root, Subscription::TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        set_scope(tx, Scope::Platform).await?;
        let mut touched: Vec<Uuid> = Vec::new();
        for message in messages {
            let id = tenant_of(message)?;
            if !touched.contains(&id) {
                touched.push(id);
            }
        }
        let mut states: HashMap<Uuid, Subscription> = HashMap::new();
        let rows: Vec<(Uuid, sqlx::types::Json<Subscription>)> =
            sqlx::query_as("SELECT tenant_id, state FROM subscriptions WHERE tenant_id = ANY($1)")
                .bind(&touched)
                .fetch_all(&mut *tx)
                .await?;
        states.extend(rows.into_iter().map(|(id, s)| (id, s.0)));

        for message in messages {
            let id = tenant_of(message)?;
            fold(states.entry(id).or_default(), message)?;
            for stored in message.events::<SubscriptionEvent>()? {
                write_invoice(tx, id, &stored.event).await?;
                if let SubscriptionEvent::QuotaThresholdCrossed(e) = &stored.event {
                    sqlx::query(
                        "INSERT INTO alerts (tenant_id, meter, period_start, percent, used, quota, at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(&e.meter)
                    .bind(time::from_proto(e.period_start.as_ref()))
                    .bind(i32::try_from(e.percent).unwrap_or(i32::MAX))
                    .bind(i64::try_from(e.used).unwrap_or(i64::MAX))
                    .bind(i64::try_from(e.limit).unwrap_or(i64::MAX))
                    .bind(stored.meta.occurred_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        // The quotas in force, for the roll-up's threshold check.
        sqlx::query("DELETE FROM quotas WHERE tenant_id = ANY($1)")
            .bind(&touched)
            .execute(&mut *tx)
            .await?;
        let (mut q_tenants, mut q_meters, mut q_limits) = (Vec::new(), Vec::new(), Vec::new());
        for (id, s) in &states {
            if s.status == crate::domain::Status::Canceled {
                continue;
            }
            for m in s.limits.meters.iter().filter(|m| m.limit > 0) {
                q_tenants.push(*id);
                q_meters.push(m.meter.clone());
                q_limits.push(i64::try_from(m.limit).unwrap_or(i64::MAX));
            }
        }
        sqlx::query(
            "INSERT INTO quotas (tenant_id, meter, quota)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[])",
        )
        .bind(&q_tenants)
        .bind(&q_meters)
        .bind(&q_limits)
        .execute(&mut *tx)
        .await?;
        for id in touched {
            let Some(s) = states.get(&id) else { continue };
            let Some(price) = &s.price else { continue };
            sqlx::query(
                "INSERT INTO subscriptions
                     (tenant_id, plan, status, period_end, past_due_since, state, version,
                      quota_reset_due, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                 ON CONFLICT (tenant_id) DO UPDATE SET plan = EXCLUDED.plan,
                     status = EXCLUDED.status, period_end = EXCLUDED.period_end,
                     past_due_since = EXCLUDED.past_due_since, state = EXCLUDED.state,
                     version = EXCLUDED.version, quota_reset_due = EXCLUDED.quota_reset_due,
                     updated_at = now()",
            )
            .bind(id)
            .bind(&price.plan)
            .bind(s.status.as_str())
            .bind(s.period_end)
            .bind(s.past_due_since)
            .bind(sqlx::types::Json(s))
            .bind(i64::try_from(s.version).unwrap_or(i64::MAX))
            .bind(s.quota_reset_due())
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

fn tenant_of(message: &StoredMessage) -> Result<Uuid, ProjectionError> {
    message
        .batch
        .events
        .first()
        .and_then(|e| Uuid::try_parse(&e.aggregate_id).ok())
        // Never decodable: quarantined rather than retried.
        .ok_or_else(|| {
            ProjectionError::Store(tenantry_eventstore::StoreError::Corrupt(format!(
                "message {} has no subscription id",
                message.position
            )))
        })
}

/// An invoice event as the `invoices` row it makes or changes.
async fn write_invoice(
    tx: &mut PgConnection,
    tenant: Uuid,
    event: &SubscriptionEvent,
) -> Result<(), sqlx::Error> {
    use prost::Message;
    use tenantry_proto::events::v1 as pb;
    let (number, status) = match event {
        SubscriptionEvent::InvoiceDrafted(d) => {
            let invoice = d.invoice.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO invoices (tenant_id, number, status, total, issued_at, invoice)
                 VALUES ($1, $2, 'draft', $3, $4, $5) ON CONFLICT (tenant_id, number) DO NOTHING",
            )
            .bind(tenant)
            .bind(i64::try_from(invoice.number).unwrap_or(i64::MAX))
            .bind(invoice.total_minor)
            .bind(time::from_proto(invoice.issued_at.as_ref()))
            .bind(invoice.encode_to_vec())
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        SubscriptionEvent::InvoiceFinalized(e) => (e.number, pb::InvoiceStatus::Open),
        SubscriptionEvent::InvoicePaid(e) => (e.number, pb::InvoiceStatus::Paid),
        SubscriptionEvent::InvoiceVoided(e) => (e.number, pb::InvoiceStatus::Void),
        _ => return Ok(()),
    };
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT invoice FROM invoices WHERE tenant_id = $1 AND number = $2")
            .bind(tenant)
            .bind(i64::try_from(number).unwrap_or(i64::MAX))
            .fetch_optional(&mut *tx)
            .await?;
    let Some((bytes,)) = row else { return Ok(()) };
    let mut invoice = pb::Invoice::decode(bytes.as_slice()).unwrap_or_default();
    invoice.status = status as i32;
    sqlx::query(
        "UPDATE invoices SET status = $3, invoice = $4 WHERE tenant_id = $1 AND number = $2",
    )
    .bind(tenant)
    .bind(i64::try_from(number).unwrap_or(i64::MAX))
    .bind(
        status
            .as_str_name()
            .trim_start_matches("INVOICE_STATUS_")
            .to_lowercase(),
    )
    .bind(invoice.encode_to_vec())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
