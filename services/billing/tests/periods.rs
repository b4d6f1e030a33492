//! Periods closed when the month ends: every due subscription renewed and invoiced once by
//! the service's own round, its period's usage over the quota billed as overage.

mod common;

use std::time::Duration;

use common::{start, with_token};
use tenantry_billing::domain::period::{add_months, month_start};
use tenantry_contracts::tenant::TenantEvent;
use tenantry_kit::Clock;
use tenantry_proto::billing::v1 as api;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::eventually;
use uuid::Uuid;

impl common::Harness {
    /// A business tenant whose trial is over (its next period is billed in full).
    async fn paying_tenant(&self) -> Uuid {
        let id = Uuid::now_v7();
        let store = self.env.event_store().await;
        tenantry_testkit::append(
            &store,
            &id.to_string(),
            &id.to_string(),
            TenantEvent::Created(pb::TenantCreated {
                tenant_id: id.to_string(),
                name: "Acme".into(),
                slug: format!("t-{}", &id.simple().to_string()[20..]),
                r#type: pb::TenantType::Business as i32,
                settings: None,
                trial_ends_at: Some(tenantry_eventstore::time::to_proto(chrono::Utc::now())),
            }),
        )
        .await
        .unwrap();
        self.subscription(id).await;
        id
    }

    async fn invoices(&self, tenant: Uuid) -> Vec<pb::Invoice> {
        self.client()
            .list_invoices(with_token(
                api::ListInvoicesRequest {
                    tenant_id: tenant.to_string(),
                    min_position: 0,
                },
                &self.owner(tenant),
            ))
            .await
            .unwrap()
            .into_inner()
            .invoices
    }
}

#[tokio::test]
async fn every_due_period_is_closed_once_and_invoiced_with_its_usage() {
    let h = start().await;
    let tenants = [
        h.paying_tenant().await,
        h.paying_tenant().await,
        h.paying_tenant().await,
    ];
    // 301,000 requests: 1,000 over business's 300,000, one unit of 1,000 at 100.
    h.report(tenants[0], "gw-a", 1, 301_000).await;
    eventually("the usage rolled up", Duration::from_secs(10), || async {
        (h.used(tenants[0], "requests").await == 301_000).then_some(())
    })
    .await;

    let now = h.clock.now();
    let next = add_months(month_start(now), 1);
    h.clock.advance(next - now + chrono::Duration::minutes(1));
    for tenant in tenants {
        eventually("the period invoiced", Duration::from_secs(20), || async {
            (h.invoices(tenant).await.len() == 1).then_some(())
        })
        .await;
    }
    // Later rounds close nothing again: the periods are renewed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, tenant) in tenants.into_iter().enumerate() {
        let invoices = h.invoices(tenant).await;
        assert_eq!(invoices.len(), 1, "tenant {i}: {invoices:?}");
        let invoice = &invoices[0];
        assert_eq!(invoice.number, 1);
        assert_eq!(
            invoice.period_end,
            Some(tenantry_eventstore::time::to_proto(next))
        );
        let overage: Vec<(u64, i64)> = invoice
            .lines
            .iter()
            .filter(|l| l.kind == "overage")
            .map(|l| (l.quantity, l.amount_minor))
            .collect();
        let base = invoice.lines.iter().find(|l| l.kind == "base").unwrap();
        assert_eq!(base.amount_minor, 49_900, "tenant {i}");
        if i == 0 {
            assert_eq!(overage, [(1_000, 100)]);
            assert_eq!(invoice.total_minor, 50_000);
        } else {
            assert!(overage.is_empty(), "tenant {i}: {overage:?}");
        }
        let sub = h.subscription(tenant).await;
        assert_eq!(
            sub.period_end,
            Some(tenantry_eventstore::time::to_proto(add_months(next, 1)))
        );
    }
}
