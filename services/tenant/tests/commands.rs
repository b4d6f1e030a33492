//! Commands end to end: read-your-writes, concurrency, idempotency, lifecycle, trials, domains.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{slug, start, start_with, with_token};
use futures::future::join_all;
use tenantry_kit::Role;
use tenantry_proto::events::v1::{TenantSettings, TenantType};
use tenantry_proto::tenant::v1 as api;
use tenantry_tenant::api::domains::WELL_KNOWN_PATH;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn create_then_get_with_min_position_finds_it_every_time() {
    let h = start().await;
    for _ in 0..25 {
        let (tenant, position) = h.create(&slug(), TenantType::Business).await;
        let got = h
            .client()
            .get_tenant(with_token(
                api::GetTenantRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    min_position: position,
                },
                Some(&h.admin()),
            ))
            .await
            .expect("found at once")
            .into_inner()
            .tenant
            .unwrap();
        assert_eq!(got.slug, tenant.slug);
        assert_eq!(got.version, position);
    }
}

#[tokio::test]
async fn fifty_concurrent_writers_one_success_per_version() {
    let h = start().await;
    let (tenant, _) = h.create(&slug(), TenantType::Business).await;
    let id: Uuid = tenant.tenant_id.parse().unwrap();
    let token = h.token(id, Role::Member);
    let writes = (1..=50u32).map(|i| {
        let mut client = h.client();
        let request = api::UpdateSettingsRequest {
            tenant_id: tenant.tenant_id.clone(),
            settings: Some(TenantSettings {
                data_retention_days: i,
                ..Default::default()
            }),
        };
        let token = token.clone();
        async move {
            client
                .update_settings(with_token(request, Some(&token)))
                .await
        }
    });
    let results = join_all(writes).await;
    let mut positions = Vec::new();
    for r in &results {
        match r {
            Ok(ok) => positions.push(ok.get_ref().position),
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    // Each success is its own version of the aggregate.
    let successes = positions.len();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(
        positions.len(),
        successes,
        "two writers reported the same version"
    );
    assert!(successes > 0);

    // The stored events: one creation and one settings change per success, and the state
    // folded from them is what the service reports.
    let store = h.env.event_store().await;
    let messages = store
        .read_aggregate(&tenantry_tenant::api::tenant_address(id).unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(messages.len(), successes + 1);
    let mut folded = tenantry_tenant::domain::Tenant::default();
    for m in &messages {
        tenantry_eventstore::aggregate::fold(&mut folded, m).unwrap();
    }
    let last = *positions.last().unwrap();
    let got = h
        .client()
        .get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: tenant.tenant_id.clone(),
                min_position: last,
            },
            Some(&token),
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(
        got.settings.unwrap().data_retention_days,
        folded.settings.unwrap().data_retention_days
    );
    assert_eq!(got.version, folded.version);
}

#[tokio::test]
async fn the_same_idempotency_key_twice_has_one_effect() {
    let h = start().await;
    let s = slug();
    let send = |key: &'static str| {
        let mut client = h.client();
        let mut request = with_token(
            api::CreateTenantRequest {
                name: "Once".into(),
                slug: s.clone(),
                r#type: TenantType::Trial as i32,
                settings: None,
            },
            Some(&h.admin()),
        );
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
        async move { client.create_tenant(request).await }
    };
    let first = send("create-once").await.unwrap().into_inner();
    let before = h.last_position().await;
    let second = send("create-once").await.unwrap().into_inner();
    assert_eq!(
        first.tenant.as_ref().unwrap().tenant_id,
        second.tenant.as_ref().unwrap().tenant_id
    );
    assert_eq!(first.position, second.position);
    assert_eq!(
        h.last_position().await,
        before,
        "a retry appended something"
    );
    // A different key for the same slug is a different command: the slug is taken.
    let third = send("create-twice").await.unwrap_err();
    assert_eq!(third.code(), Code::AlreadyExists);

    // Same for an update: the second send is acknowledged without a second event.
    let tenant_id = first.tenant.unwrap().tenant_id;
    let token = h.token(tenant_id.parse().unwrap(), Role::Member);
    let update = |days: u32| {
        let mut client = h.client();
        let mut request = with_token(
            api::UpdateSettingsRequest {
                tenant_id: tenant_id.clone(),
                settings: Some(TenantSettings {
                    data_retention_days: days,
                    ..Default::default()
                }),
            },
            Some(&token),
        );
        request
            .metadata_mut()
            .insert("idempotency-key", "update-1".parse().unwrap());
        async move { client.update_settings(request).await }
    };
    let a = update(90).await.unwrap().into_inner().position;
    let b = update(90).await.unwrap().into_inner().position;
    assert_eq!(a, b);
    assert_eq!(h.last_position().await, a);
}

#[tokio::test]
async fn lifecycle_suspend_reactivate_decommission_and_admin_listing() {
    let h = start().await;
    let (tenant, _) = h.create(&slug(), TenantType::Enterprise).await;
    let admin = h.admin();
    let mut c = h.client();
    let id = tenant.tenant_id.clone();
    let p = c
        .suspend_tenant(with_token(
            api::SuspendTenantRequest {
                tenant_id: id.clone(),
                reason: "unpaid invoice".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let got = c
        .get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: id.clone(),
                min_position: p,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(got.status, api::TenantStatus::Suspended as i32);
    assert_eq!(got.suspension_reason, "unpaid invoice");
    c.reactivate_tenant(with_token(
        api::ReactivateTenantRequest {
            tenant_id: id.clone(),
        },
        Some(&admin),
    ))
    .await
    .unwrap();
    let owner = h.token(id.parse().unwrap(), Role::Owner);
    let p = c
        .mark_for_decommission(with_token(
            api::MarkForDecommissionRequest {
                tenant_id: id.clone(),
                reason: "leaving".into(),
            },
            Some(&owner),
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let refused = c
        .reactivate_tenant(with_token(
            api::ReactivateTenantRequest {
                tenant_id: id.clone(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);

    // Platform admins page through every tenant.
    for _ in 0..4 {
        h.create(&slug(), TenantType::Business).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_tenants(with_token(
                api::ListTenantsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    min_position: h.last_position().await.max(p),
                },
                Some(&admin),
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.tenants.into_iter().map(|t| t.tenant_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    // A tenant's own token lists only that tenant.
    let mine = c
        .list_tenants(with_token(api::ListTenantsRequest::default(), Some(&owner)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.tenants
            .iter()
            .map(|t| t.tenant_id.clone())
            .collect::<Vec<_>>(),
        vec![id]
    );
}

#[tokio::test]
async fn trials_expire_after_thirty_days_unless_converted() {
    let h = start().await;
    let (trial, _) = h.create(&slug(), TenantType::Trial).await;
    let (converted, _) = h.create(&slug(), TenantType::Trial).await;
    let admin = h.admin();
    let p = h
        .client()
        .change_tenant_type(with_token(
            api::ChangeTenantTypeRequest {
                tenant_id: converted.tenant_id.clone(),
                r#type: TenantType::Business as i32,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    h.svc
        .positions
        .wait_for(p, Duration::from_secs(5))
        .await
        .unwrap();

    h.clock.advance(chrono::Duration::days(29));
    assert_eq!(h.svc.api.expire_due_trials().await.unwrap(), 0);
    h.clock.advance(chrono::Duration::days(1));
    assert_eq!(h.svc.api.expire_due_trials().await.unwrap(), 1);

    let last = h.last_position().await;
    let got = h
        .client()
        .get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: trial.tenant_id.clone(),
                min_position: last,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert!(got.trial_expired);
    let store = h.env.event_store().await;
    let messages = store
        .read_aggregate(
            &tenantry_tenant::api::tenant_address(trial.tenant_id.parse().unwrap()).unwrap(),
            0,
        )
        .await
        .unwrap();
    let types: Vec<_> = messages
        .iter()
        .flat_map(|m| m.batch.events.iter().map(|e| e.event_type.clone()))
        .collect();
    assert_eq!(types, vec!["tenant.created.v1", "tenant.trial_expired.v1"]);
    // A second sweep finds nothing more to do.
    assert_eq!(h.svc.api.expire_due_trials().await.unwrap(), 0);
}

/// Serves the verification token of whatever domain asks, like the customer's web server.
async fn serve_token(token: Arc<std::sync::RwLock<String>>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        WELL_KNOWN_PATH,
        axum::routing::get(move || {
            let token = token.clone();
            async move { token.read().unwrap().clone() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn custom_domains_are_added_proved_and_unique_across_tenants() {
    let served = Arc::new(std::sync::RwLock::new(String::from("wrong")));
    let addr = serve_token(served.clone()).await;
    let h = start_with(Some(common::prover_at(addr, common::loopback_allowed()))).await;
    let (a, _) = h.create(&slug(), TenantType::Business).await;
    let (b, _) = h.create(&slug(), TenantType::Business).await;
    let token_a = h.token(a.tenant_id.parse().unwrap(), Role::Member);
    let token_b = h.token(b.tenant_id.parse().unwrap(), Role::Member);
    let domain = format!("app.{}.example.com", slug());
    let mut c = h.client();

    let added = c
        .add_domain(with_token(
            api::AddDomainRequest {
                tenant_id: a.tenant_id.clone(),
                domain: domain.clone(),
            },
            Some(&token_a),
        ))
        .await
        .unwrap()
        .into_inner();
    let taken = c
        .add_domain(with_token(
            api::AddDomainRequest {
                tenant_id: b.tenant_id.clone(),
                domain: domain.clone(),
            },
            Some(&token_b),
        ))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);

    let unproved = c
        .verify_domain(with_token(
            api::VerifyDomainRequest {
                tenant_id: a.tenant_id.clone(),
                domain: domain.clone(),
            },
            Some(&token_a),
        ))
        .await
        .unwrap_err();
    assert_eq!(unproved.code(), Code::FailedPrecondition);
    *served.write().unwrap() = added.verification_token.clone();
    let p = c
        .verify_domain(with_token(
            api::VerifyDomainRequest {
                tenant_id: a.tenant_id.clone(),
                domain: domain.clone(),
            },
            Some(&token_a),
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let got = c
        .get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: a.tenant_id.clone(),
                min_position: p,
            },
            Some(&token_a),
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(
        got.domains,
        vec![api::Domain {
            name: domain.clone(),
            verified: true,
            verification_token: added.verification_token
        }]
    );

    // Removing frees the name for another tenant.
    c.remove_domain(with_token(
        api::RemoveDomainRequest {
            tenant_id: a.tenant_id.clone(),
            domain: domain.clone(),
        },
        Some(&token_a),
    ))
    .await
    .unwrap();
    c.add_domain(with_token(
        api::AddDomainRequest {
            tenant_id: b.tenant_id.clone(),
            domain,
        },
        Some(&token_b),
    ))
    .await
    .unwrap();
}
