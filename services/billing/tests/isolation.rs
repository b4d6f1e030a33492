//! Isolation: tenant B cannot read or change tenant A's subscription, invoices, alerts or
//! usage; every table of tenant data has forced row-level security; bad input is refused
//! naming the field, and nothing is appended.

mod common;

use std::time::Duration;

use common::{plan, start, with_token};
use tenantry_proto::billing::v1 as api;
use tenantry_proto::events::v1 as pb;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn tenant_b_cannot_reach_tenant_a_through_any_rpc() {
    let h = start().await;
    h.define(plan("tiny", 1_000, 100, pb::QuotaBehaviour::BlockTraffic))
        .await;
    let (a, _) = h.tenant(pb::TenantType::Business).await;
    let (b, _) = h.tenant(pb::TenantType::Business).await;
    h.change_plan(a, "tiny").await.unwrap();
    h.report(a, "gw-a", 1, 150).await;
    tenantry_testkit::eventually("A's alerts", Duration::from_secs(10), || async {
        (h.alerts(a).await.len() == 3).then_some(())
    })
    .await;

    // B's owner names A's tenant id in every call.
    let b_token = h.owner(b);
    let a_id = a.to_string();
    let mut c = h.client();
    let t = b_token.as_str();
    let outcomes: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "GetSubscription",
            c.get_subscription(with_token(
                api::GetSubscriptionRequest {
                    tenant_id: a_id.clone(),
                    min_position: 0,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "ChangePlan",
            c.change_plan(with_token(
                api::ChangePlanRequest {
                    tenant_id: a_id.clone(),
                    plan: "enterprise".into(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "CancelSubscription",
            c.cancel_subscription(with_token(
                api::CancelSubscriptionRequest {
                    tenant_id: a_id.clone(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "SetBillingEmail",
            c.set_billing_email(with_token(
                api::SetBillingEmailRequest {
                    tenant_id: a_id.clone(),
                    billing_email: "b@b.example".into(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "GetUsage",
            c.get_usage(with_token(
                api::GetUsageRequest {
                    tenant_id: a_id.clone(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "UsageReport",
            c.usage_report(with_token(
                api::UsageReportRequest {
                    tenant_id: a_id.clone(),
                    period: "current".into(),
                    format: api::ReportFormat::Csv as i32,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "ListAlerts",
            c.list_alerts(with_token(
                api::ListAlertsRequest {
                    tenant_id: a_id.clone(),
                    min_position: 0,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "ListInvoices",
            c.list_invoices(with_token(
                api::ListInvoicesRequest {
                    tenant_id: a_id.clone(),
                    min_position: 0,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "GetInvoice",
            c.get_invoice(with_token(
                api::GetInvoiceRequest {
                    tenant_id: a_id.clone(),
                    number: 1,
                    min_position: 0,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "Checkout",
            c.checkout(with_token(
                api::CheckoutRequest {
                    tenant_id: a_id.clone(),
                    plan: "enterprise".into(),
                    payment_method: "credit_card".into(),
                    billing_email: "b@b.example".into(),
                    callback_url: "https://b.example/".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
    ];
    for (rpc, outcome) in outcomes {
        let err = outcome.expect_err(rpc);
        assert_eq!(err.code(), Code::NotFound, "{rpc}: {err:?}");
        assert!(
            !err.message().contains("tiny"),
            "{rpc} leaks A's plan: {err:?}"
        );
    }
    // A's subscription is as A left it.
    let sub = h.subscription(a).await;
    assert_eq!(sub.plan, "tiny");
    assert!(!sub.change_scheduled);
    assert!(sub.billing_email.is_empty());
    // B's own view shows nothing of A.
    assert!(h.alerts(b).await.is_empty());
    assert_eq!(h.used(b, "requests").await, 0);
}

#[tokio::test]
async fn every_table_of_tenant_data_has_forced_row_level_security() {
    let h = start().await;
    let (a, _) = h.tenant(pb::TenantType::Business).await;
    let (b, _) = h.tenant(pb::TenantType::Business).await;
    h.report(a, "gw-a", 1, 10).await;
    tenantry_testkit::eventually("A's usage", Duration::from_secs(10), || async {
        (h.used(a, "requests").await == 10).then_some(())
    })
    .await;
    let admin = h.env.admin_pool().await;
    let schema = h.env.schema("billing");
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
         WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(&schema)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(tables.len() >= 9, "{tables:?}");
    for (table, enabled, forced) in &tables {
        assert!(
            *enabled && *forced,
            "{table}: RLS enabled {enabled}, forced {forced}"
        );
    }
    // In B's scope, as the service's own role, A's rows are not there.
    let pool = h.svc.api.pool_for_tests();
    let mut tx = tenantry_kit::db::scoped_tx(&pool, tenantry_kit::db::Scope::Tenant(b))
        .await
        .unwrap();
    for table in ["subscriptions", "usage_hourly", "usage_periods"] {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(a)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table}: B sees A's rows");
    }
}

#[tokio::test]
async fn bad_input_names_the_field_and_appends_nothing() {
    let h = start().await;
    let (tenant, _) = h.tenant(pb::TenantType::Business).await;
    let store = h.env.event_store().await;
    let before = store.last_position().await.unwrap();
    let admin = h.admin();
    let bad_plans: Vec<(&str, api::Plan)> = vec![
        (
            "plan.currency",
            api::Plan {
                currency: "XYZ".into(),
                ..plan("p1", 100, 10, pb::QuotaBehaviour::AlertOnly)
            },
        ),
        (
            "plan.price_minor",
            api::Plan {
                price_minor: -1,
                ..plan("p2", 100, 10, pb::QuotaBehaviour::AlertOnly)
            },
        ),
        (
            "plan.name",
            api::Plan {
                name: "Bad Name".into(),
                ..plan("p3", 100, 10, pb::QuotaBehaviour::AlertOnly)
            },
        ),
        (
            "plan.interval",
            api::Plan {
                interval: 0,
                ..plan("p4", 100, 10, pb::QuotaBehaviour::AlertOnly)
            },
        ),
    ];
    for (field, p) in bad_plans {
        let err = h
            .client()
            .define_plan(with_token(api::DefinePlanRequest { plan: Some(p) }, &admin))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().starts_with(field),
            "{field}: {}",
            err.message()
        );
    }
    let err = h.change_plan(tenant, "no-such-plan").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("plan"), "{}", err.message());
    let err = h
        .client()
        .usage_report(with_token(
            api::UsageReportRequest {
                tenant_id: tenant.to_string(),
                period: "2026-03-01..2026-02-01".into(),
                format: api::ReportFormat::Json as i32,
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("period"), "{}", err.message());
    let err = h
        .client()
        .get_subscription(with_token(
            api::GetSubscriptionRequest {
                tenant_id: "not-a-uuid".into(),
                min_position: 0,
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap_err();
    assert!(err.message().starts_with("tenant_id"), "{}", err.message());
    assert_eq!(
        store.last_position().await.unwrap(),
        before,
        "nothing was appended"
    );
    let _ = Uuid::nil();
}
