//! The custom-domain cap follows the tenant's plan: billing's `plan_limits_changed` appended
//! to the log (as billing would) sets it, per tenant, on a running tenant service.

mod common;

use std::time::Duration;

use common::{Harness, slug, start, with_token};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_kit::Role;
use tenantry_proto::events::v1::{self as pb, TenantType};
use tenantry_proto::tenant::v1 as api;
use tonic::Code;

/// Billing's plan for `tenant`, with `custom_domains`; returns once the service applied it.
async fn plan(h: &Harness, tenant: &api::Tenant, custom_domains: u32) {
    let store = h.env.event_store().await;
    let event = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: format!("domains-{custom_domains}"),
        custom_domains,
        seats: 3,
        ..Default::default()
    });
    let position = tenantry_testkit::append(&store, &tenant.tenant_id, &tenant.tenant_id, event)
        .await
        .unwrap();
    assert!(
        h.svc.plans.applied(position, Duration::from_secs(10)).await,
        "the plan directory applied position {position}"
    );
}

async fn add_domain(
    h: &Harness,
    tenant: &api::Tenant,
    domain: &str,
) -> Result<api::AddDomainResponse, tonic::Status> {
    let token = h.token(tenant.tenant_id.parse().unwrap(), Role::Member);
    h.client()
        .add_domain(with_token(
            api::AddDomainRequest {
                tenant_id: tenant.tenant_id.clone(),
                domain: domain.into(),
            },
            Some(&token),
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn assert_domain_limit(e: &tonic::Status) {
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().starts_with("max_custom_domains"), "{e:?}");
}

#[tokio::test]
async fn the_plans_custom_domains_cap_the_tenant_and_raising_it_lets_one_more_in() {
    let h = start().await;
    let (t, _) = h.create(&slug(), TenantType::Business).await;
    let base = format!("{}.example.com", slug());
    plan(&h, &t, 2).await;
    for i in 0..2 {
        add_domain(&h, &t, &format!("d{i}.{base}")).await.unwrap();
    }
    let third = format!("d2.{base}");
    let e = add_domain(&h, &t, &third).await.unwrap_err();
    assert_domain_limit(&e);
    assert!(e.message().contains("at most 2 custom domains"), "{e:?}");
    // A domain the tenant holds is still an idempotent add at its cap.
    add_domain(&h, &t, &format!("d0.{base}")).await.unwrap();

    // An upgrade raises the cap: the third gets in, a fourth does not.
    plan(&h, &t, 3).await;
    add_domain(&h, &t, &third).await.unwrap();
    assert_domain_limit(&add_domain(&h, &t, &format!("d3.{base}")).await.unwrap_err());

    // A plan that leaves the number to the service (0) gets its default, 20.
    plan(&h, &t, 0).await;
    add_domain(&h, &t, &format!("d3.{base}")).await.unwrap();
}

#[tokio::test]
async fn isolation_one_tenants_plan_does_not_cap_another() {
    let h = start().await;
    let (small, _) = h.create(&slug(), TenantType::Business).await;
    let (large, _) = h.create(&slug(), TenantType::Business).await;
    let (unplanned, _) = h.create(&slug(), TenantType::Business).await;
    plan(&h, &small, 2).await;
    plan(&h, &large, 10).await;
    for tenant in [&small, &large, &unplanned] {
        let base = format!("{}.example.com", slug());
        for i in 0..2 {
            add_domain(&h, tenant, &format!("d{i}.{base}"))
                .await
                .unwrap();
        }
        let third = add_domain(&h, tenant, &format!("d2.{base}")).await;
        if tenant.tenant_id == small.tenant_id {
            assert_domain_limit(&third.unwrap_err());
        } else {
            // The other tenants' caps are their own plan's (10) and the default (20).
            third.unwrap();
        }
    }
}
