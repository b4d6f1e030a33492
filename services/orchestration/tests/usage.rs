//! Instance time on the `USAGE` stream: each tenant's running instances are reported on its
//! own `instance_hours` subject, once each, with the time they ran (tests count in seconds:
//! `usage_unit_seconds` = 1).

mod common;

use std::time::{Duration, Instant};

use common::{Harness, healthy, spec, start, with_token};
use futures::StreamExt;
use prost::Message;
use tenantry_contracts::usage;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1 as api;
use uuid::Uuid;

/// Every report on `tenant`'s usage subjects until none comes for `quiet`.
async fn reports(
    h: &Harness,
    tenant: Uuid,
    quiet: Duration,
) -> Vec<(String, String, pb::UsageReport)> {
    let store = h.env.event_store().await;
    let names = store.names().clone();
    let stream = store
        .jetstream()
        .get_stream(&names.usage_stream)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{}.{tenant}.>", names.usage_root),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(quiet, messages.next()).await {
        let id = m
            .headers
            .as_ref()
            .and_then(|hd| hd.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let report = pb::UsageReport::decode(m.payload.as_ref()).unwrap();
        out.push((m.subject.to_string(), id, report));
    }
    out
}

async fn drain(h: &Harness, tenant: Uuid, id: &str) {
    h.client()
        .drain(with_token(
            api::DrainRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.into(),
                reason: "done".into(),
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn running_instances_are_reported_as_instance_time_per_tenant() {
    let h = start().await;
    let (two, one, none) = (h.tenant(1).await, h.tenant(1).await, h.tenant(1).await);
    let provisioned = Instant::now();
    let two_id = h.provision(two, spec(2)).await.unwrap().deployment_id;
    let one_id = h.provision(one, spec(1)).await.unwrap().deployment_id;
    // A deployment with no instance runs nothing and costs nothing.
    h.provision(none, spec(0)).await.unwrap();
    h.deployment_where(two, &two_id, "two healthy instances", |d| healthy(d, 2))
        .await;
    h.deployment_where(one, &one_id, "one healthy instance", |d| healthy(d, 1))
        .await;
    let running = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let draining = Instant::now();
    drain(&h, two, &two_id).await;
    drain(&h, one, &one_id).await;
    tenantry_testkit::eventually("no process", Duration::from_secs(10), || async {
        h.running_pids().is_empty().then_some(())
    })
    .await;
    let gone = Instant::now();

    let names = h.env.event_store().await.names().clone();
    for (tenant, instances) in [(two, 2u64), (one, 1)] {
        let seen = reports(&h, tenant, Duration::from_millis(1_500)).await;
        assert!(!seen.is_empty(), "no report for {tenant}");
        let mut last = 0;
        for (subject, id, report) in &seen {
            assert_eq!(
                subject,
                &format!("{}.{tenant}.{}", names.usage_root, usage::INSTANCE_HOURS)
            );
            assert_eq!(report.tenant_id, tenant.to_string());
            assert_eq!(
                id,
                &usage::message_id(&report.instance_id, &tenant.to_string(), report.sequence)
            );
            assert!(report.sequence > last, "{seen:?}");
            last = report.sequence;
            assert!(
                report.quantity > 0 && report.window_seconds > 0,
                "{report:?}"
            );
        }
        // Instance-seconds: at least while every instance was surely up (less the part of a
        // second carried and a probe interval before each was first seen), at most from the
        // provisioning until the last one was gone.
        let total: u64 = seen.iter().map(|(_, _, r)| r.quantity).sum();
        let least = instances * (draining - running).as_secs() - instances;
        let most = instances * (gone - provisioned).as_secs_f64().ceil() as u64;
        assert!(
            (least..=most).contains(&total),
            "{tenant}: {total} instance-seconds, expected {least}..={most}: {seen:?}"
        );
    }
    assert!(
        reports(&h, none, Duration::from_millis(500))
            .await
            .is_empty(),
        "a tenant without instances was reported"
    );
}
