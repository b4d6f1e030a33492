//! Attacks on the tenant service, each performed against the real service (issue 17): domain
//! squatting (13), domain proofs fetched from the platform's network (1), an idempotency key
//! reused for another request (16), one bad event stopping the read model (15).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Harness, loopback_allowed, prover_at, slug, start, start_with, with_token};
use tenantry_kit::Role;
use tenantry_kit::egress::{Egress, EgressPolicy, OutboundHttp, StaticResolver};
use tenantry_proto::events::v1::TenantType;
use tenantry_proto::tenant::v1 as api;
use tenantry_tenant::api::domains::{HttpProver, WELL_KNOWN_PATH, proof_limits};
use tonic::Code;

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

#[tokio::test]
async fn attack_a_tenant_at_its_domain_limit_cannot_reserve_more_names() {
    let h = start().await;
    let (squatter, _) = h.create(&slug(), TenantType::Business).await;
    let (owner, _) = h.create(&slug(), TenantType::Business).await;
    let base = format!("{}.example.com", slug());
    for i in 0..20 {
        add_domain(&h, &squatter, &format!("d{i}.{base}"))
            .await
            .unwrap();
    }
    // Past its limit the squatter's request fails, and must not keep the name.
    let wanted = format!("shop.{}.example.com", slug());
    for _ in 0..3 {
        let e = add_domain(&h, &squatter, &wanted).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(e.message().starts_with("max_custom_domains"), "{e:?}");
    }
    add_domain(&h, &owner, &wanted)
        .await
        .expect("the name was never reserved by the squatter");
}

#[tokio::test]
async fn attack_a_domain_under_the_platforms_base_domain_is_refused() {
    // The test service's base domain is the default, `localhost`: tenants answer on
    // `<slug>.localhost`, so a custom domain there would take another tenant's host.
    let h = start().await;
    let (victim, _) = h.create(&slug(), TenantType::Business).await;
    let (attacker, _) = h.create(&slug(), TenantType::Business).await;
    for domain in [
        format!("{}.localhost", victim.slug),
        format!("www.{}.localhost", victim.slug),
    ] {
        let e = add_domain(&h, &attacker, &domain).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{domain}: {e:?}");
        assert!(e.message().starts_with("domain"), "{}", e.message());
    }
}

/// A web server answering every request with `answer(token)`, counting them.
async fn serve(
    token: Arc<std::sync::RwLock<String>>,
    answer: fn(&str) -> axum::response::Response,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let token = token.read().unwrap().clone();
        async move { answer(&token) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

fn plain(token: &str) -> axum::response::Response {
    axum::response::IntoResponse::into_response(token.to_owned())
}

/// Adds a domain to a new tenant, lets the server behind it serve the token, and asks for
/// verification: the verdict's status code.
async fn verify_with(h: &Harness, served: &Arc<std::sync::RwLock<String>>) -> Result<(), Code> {
    let (tenant, _) = h.create(&slug(), TenantType::Business).await;
    let domain = format!("app.{}.example.com", slug());
    let added = add_domain(h, &tenant, &domain).await.unwrap();
    *served.write().unwrap() = added.verification_token;
    let token = h.token(tenant.tenant_id.parse().unwrap(), Role::Member);
    h.client()
        .verify_domain(with_token(
            api::VerifyDomainRequest {
                tenant_id: tenant.tenant_id.clone(),
                domain,
            },
            Some(&token),
        ))
        .await
        .map(|_| ())
        .map_err(|e| e.code())
}

#[tokio::test]
async fn attack_a_domain_resolving_to_loopback_proves_nothing_and_is_not_contacted() {
    // The domain resolves to a platform-side server that would serve whatever the attacker
    // needs; under the default policy it is never contacted.
    let served = Arc::new(std::sync::RwLock::new(String::new()));
    let (internal, hits) = serve(served.clone(), plain).await;
    let h = start_with(Some(prover_at(internal, EgressPolicy::default()))).await;
    assert_eq!(
        verify_with(&h, &served).await,
        Err(Code::FailedPrecondition)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn attack_a_domain_proof_redirecting_to_another_host_is_not_followed() {
    let served = Arc::new(std::sync::RwLock::new(String::new()));
    let (elsewhere, elsewhere_hits) = serve(served.clone(), plain).await;
    let (redirecting, _) = serve(served.clone(), |_| {
        axum::response::IntoResponse::into_response(axum::response::Redirect::temporary(&format!(
            "http://elsewhere.test{WELL_KNOWN_PATH}"
        )))
    })
    .await;
    let resolver = StaticResolver::new()
        .with("elsewhere.test", &[elsewhere])
        .others(&[redirecting]);
    let http = OutboundHttp::new(
        Arc::new(Egress::new(loopback_allowed(), Arc::new(resolver))),
        proof_limits(),
    )
    .unwrap();
    let h = start_with(Some(Arc::new(HttpProver::new(http)))).await;
    assert_eq!(
        verify_with(&h, &served).await,
        Err(Code::FailedPrecondition)
    );
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn attack_an_oversized_domain_proof_is_not_read() {
    // The token followed by 8 MiB of blanks: read whole and trimmed it would prove the domain.
    let served = Arc::new(std::sync::RwLock::new(String::new()));
    let (big, _) = serve(served.clone(), |token| {
        let body = format!("{token}{}", " ".repeat(8 * 1024 * 1024));
        axum::response::IntoResponse::into_response(body)
    })
    .await;
    let h = start_with(Some(prover_at(big, loopback_allowed()))).await;
    assert_eq!(
        verify_with(&h, &served).await,
        Err(Code::FailedPrecondition)
    );
}

fn settings_request(
    tenant: &api::Tenant,
    currency: &str,
    key: &str,
    token: &str,
) -> tonic::Request<api::UpdateSettingsRequest> {
    let mut request = with_token(
        api::UpdateSettingsRequest {
            tenant_id: tenant.tenant_id.clone(),
            settings: Some(tenantry_proto::events::v1::TenantSettings {
                currency: currency.into(),
                ..Default::default()
            }),
        },
        Some(token),
    );
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().unwrap());
    request
}

/// Item 16: a client that sends the key of an earlier request with another request was told
/// it succeeded while nothing happened (JetStream dropped it as a duplicate).
#[tokio::test]
async fn attack_an_idempotency_key_reused_for_another_request_is_refused() {
    let h = start().await;
    let (tenant, _) = h.create(&slug(), TenantType::Business).await;
    let member = h.token(tenant.tenant_id.parse().unwrap(), Role::Member);
    let first = h
        .client()
        .update_settings(settings_request(&tenant, "BRL", "settings-1", &member))
        .await
        .expect("the first request")
        .into_inner();
    // The same request again (a retry): the same outcome, nothing new.
    let retry = h
        .client()
        .update_settings(settings_request(&tenant, "BRL", "settings-1", &member))
        .await
        .expect("a retry")
        .into_inner();
    assert_eq!(retry.position, first.position);
    // Another request under the same key: refused as such, not silently dropped.
    let reused = h
        .client()
        .update_settings(settings_request(&tenant, "USD", "settings-1", &member))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused:?}");
    assert!(
        reused.message().starts_with("idempotency-key"),
        "{reused:?}"
    );
    let read = h
        .client()
        .get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: tenant.tenant_id.clone(),
                min_position: first.position,
            },
            Some(&member),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.tenant.unwrap().settings.unwrap().currency, "BRL");

    // Another tenant's key of the same name is its own.
    let (other, _) = h.create(&slug(), TenantType::Business).await;
    let theirs = h.token(other.tenant_id.parse().unwrap(), Role::Member);
    let done = h
        .client()
        .update_settings(settings_request(&other, "USD", "settings-1", &theirs))
        .await
        .expect("another tenant's own key")
        .into_inner();
    assert_ne!(done.position, first.position);
}

/// Item 15: an event the projection cannot decode (a newer writer, a bug) stopped the tenants
/// read model for good: every later tenant was missing from it.
#[tokio::test]
async fn attack_one_undecodable_event_stops_the_read_model_forever() {
    use tenantry_eventstore::{AggregateAddress, AppendRequest};
    use tenantry_proto::events::v1::{Envelope, EventBatch};

    let h = start().await;
    let (victim, _) = h.create(&slug(), TenantType::Business).await;
    let store = h.env.event_store().await;
    let address = AggregateAddress::of::<tenantry_tenant::domain::Tenant>(
        victim.tenant_id.clone(),
        victim.tenant_id.clone(),
    )
    .unwrap();
    let bad = store
        .append(AppendRequest {
            address,
            expected: None,
            message_id: uuid::Uuid::now_v7().to_string(),
            batch: EventBatch {
                events: vec![Envelope {
                    tenant_id: victim.tenant_id.clone(),
                    aggregate_type: "tenant".into(),
                    aggregate_id: victim.tenant_id.clone(),
                    event_type: "tenant.exploded.v9".into(),
                    payload: vec![1, 2, 3],
                    ..Default::default()
                }],
            },
            traceparent: None,
            fingerprint: None,
        })
        .await
        .unwrap()
        .position;
    // A tenant created after it is read back: the projection went on.
    let (later, position) = h.create(&slug(), TenantType::Business).await;
    let read = h
        .client()
        .get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: later.tenant_id.clone(),
                min_position: position,
            },
            Some(&h.admin()),
        ))
        .await
        .expect("the read model is past the bad event");
    assert_eq!(read.into_inner().tenant.unwrap().slug, later.slug);
    // The bad event is recorded, not skipped silently.
    let quarantined: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT position, error FROM \"{}\".projection_quarantine",
        h.env.schema("tenant")
    )))
    .fetch_all(&h.env.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0].0, bad as i64);
    assert!(
        quarantined[0].1.contains("tenant.exploded.v9"),
        "{quarantined:?}"
    );
}
