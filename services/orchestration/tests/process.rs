//! The process runtime for real: provisioned instances are child processes answering HTTP;
//! a killed one is replaced and the log says so; a restarted service adopts what runs; a
//! rolling update replaces every instance; drain and decommission stop them all.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{healthy, kill9, spec, start, with_token};
use futures::StreamExt;
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_kit::Role;
use tenantry_orchestration::runtime::Runtime;
use tenantry_proto::orchestration::v1 as api;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn a_provisioned_instance_becomes_healthy_and_a_killed_one_is_replaced_on_the_log() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let id = h.provision(tenant, spec(1)).await.unwrap().deployment_id;
    let first = h
        .deployment_where(tenant, &id, "one healthy instance", |d| healthy(d, 1))
        .await;
    let instance = first.instances[0].clone();
    // It answers where the log says it listens.
    let (host, port) = instance.address.split_once(':').unwrap();
    let stream = tokio::net::TcpStream::connect((host, port.parse::<u16>().unwrap())).await;
    assert!(stream.is_ok(), "{stream:?}");

    let pid = h
        .svc
        .runtime
        .pid_of(instance.instance_id.parse().unwrap())
        .unwrap();
    kill9(pid);
    let second = h
        .deployment_where(tenant, &id, "a new healthy instance", |d| {
            healthy(d, 1) && d.instances[0].instance_id != instance.instance_id
        })
        .await;
    let replacement = &second.instances[0].instance_id;

    // On the log, in order: the killed one deleted (it exited by signal 9), then the new one
    // created and healthy.
    let events = h.events(tenant, &id).await;
    let at = |check: &dyn Fn(&DeploymentEvent) -> bool| {
        events
            .iter()
            .position(check)
            .unwrap_or_else(|| panic!("missing in {events:#?}"))
    };
    let deleted = at(&|e| {
        matches!(e, DeploymentEvent::PodDeleted(d)
            if d.instance_id == instance.instance_id && d.reason == "exited" && d.detail == "signal 9")
    });
    let created =
        at(&|e| matches!(e, DeploymentEvent::PodCreated(c) if &c.instance_id == replacement));
    let healthy_again = at(
        &|e| matches!(e, DeploymentEvent::HealthChanged(c) if &c.instance_id == replacement && c.healthy),
    );
    assert!(deleted < created && created < healthy_again, "{events:#?}");
    // The feed's names for them are the seed's.
    assert_eq!(events[deleted].feed_type(), "pod.deleted");
    assert_eq!(events[created].feed_type(), "pod.created");
    assert_eq!(events[healthy_again].feed_type(), "health.changed");
    assert_eq!(h.running_pids().len(), 1);

    // The same, in the same order, on the tenant's WebSocket feed.
    let request = format!(
        "ws://{}/api/tenants/{tenant}/orchestration/events?after=0",
        h.svc.addr
    );
    let mut request = request.into_client_request().unwrap();
    let bearer = format!("Bearer {}", h.token(tenant, Role::Viewer));
    request
        .headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(h.svc.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    let mut feed = Vec::new();
    while feed.len() < events.len() + 1 {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            continue;
        };
        let message: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        feed.push(message["type"].as_str().unwrap().to_owned());
    }
    let types: Vec<String> = std::iter::once("subscribed".to_owned())
        .chain(events.iter().map(|e| e.feed_type().to_owned()))
        .collect();
    assert_eq!(feed, types);
}

#[tokio::test]
async fn a_restarted_service_adopts_running_instances_and_starts_no_duplicate() {
    let mut h = start().await;
    let tenant = h.tenant(1).await;
    let id = h.provision(tenant, spec(2)).await.unwrap().deployment_id;
    h.deployment_where(tenant, &id, "two healthy instances", |d| healthy(d, 2))
        .await;
    let pids: BTreeSet<u32> = h.running_pids().into_iter().collect();
    assert_eq!(pids.len(), 2);
    let events_before = h.events(tenant, &id).await.len();

    h.restart().await;
    // Several passes of the new reconciler (100 ms apart) and probes of the adopted ones.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let adopted = h.svc.runtime.instances();
    assert_eq!(adopted.len(), 2, "{adopted:?}");
    assert!(adopted.iter().all(|i| i.adopted), "{adopted:?}");
    let after: BTreeSet<u32> = h.running_pids().into_iter().collect();
    assert_eq!(
        after, pids,
        "the same processes run: none restarted, none added"
    );
    let events = h.events(tenant, &id).await;
    assert_eq!(
        events.len(),
        events_before,
        "nothing new on the log: {:#?}",
        &events[events_before..]
    );
    // The adopted instances are still looked after: a scale down stops one of them.
    h.client()
        .scale(with_token(
            api::ScaleRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                replicas: 1,
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap();
    h.deployment_where(tenant, &id, "one instance left", |d| healthy(d, 1))
        .await;
    tenantry_testkit::eventually("one process left", Duration::from_secs(10), || async {
        (h.running_pids().len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rolling_update_replaces_every_instance_then_drain_and_decommission_stop_them() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let id = h.provision(tenant, spec(2)).await.unwrap().deployment_id;
    let before = h
        .deployment_where(tenant, &id, "two healthy instances", |d| healthy(d, 2))
        .await;
    let member = h.token(tenant, Role::Member);
    let mut next = spec(2);
    next.version = "1.1.0".into();
    h.client()
        .update(with_token(
            api::UpdateRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                spec: Some(next),
                secrets: Default::default(),
            },
            &member,
        ))
        .await
        .unwrap();
    let after = h
        .deployment_where(
            tenant,
            &id,
            "two healthy instances of the new version",
            |d| healthy(d, 2) && d.instances.iter().all(|i| i.version == "1.1.0"),
        )
        .await;
    assert_eq!(after.generation, 2);
    let old: BTreeSet<_> = before.instances.iter().map(|i| &i.instance_id).collect();
    assert!(
        after
            .instances
            .iter()
            .all(|i| !old.contains(&i.instance_id))
    );
    // Never fewer than two healthy instances during the rollout: replay the log.
    let events = h.events(tenant, &id).await;
    let mut healthy_now = BTreeSet::new();
    let mut rolling = false;
    for event in &events {
        match event {
            DeploymentEvent::Updated(_) => rolling = true,
            DeploymentEvent::HealthChanged(c) if c.healthy => {
                healthy_now.insert(c.instance_id.clone());
            }
            DeploymentEvent::HealthChanged(c) => {
                healthy_now.remove(&c.instance_id);
            }
            DeploymentEvent::PodDeleted(d) => {
                healthy_now.remove(&d.instance_id);
                assert!(
                    !rolling || healthy_now.len() >= 2,
                    "an old instance stopped before its replacement was healthy: {events:#?}"
                );
            }
            _ => {}
        }
    }

    h.client()
        .drain(with_token(
            api::DrainRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                reason: "maintenance".into(),
            },
            &member,
        ))
        .await
        .unwrap();
    h.deployment_where(tenant, &id, "no instance", |d| d.instances.is_empty())
        .await;
    tenantry_testkit::eventually("no process", Duration::from_secs(10), || async {
        h.running_pids().is_empty().then_some(())
    })
    .await;
    let events = h.events(tenant, &id).await;
    let stopped = events
        .iter()
        .filter(|e| matches!(e, DeploymentEvent::PodDeleted(d) if d.reason == "stopped"))
        .count();
    assert_eq!(
        stopped, 4,
        "two replaced by the update, two drained: {events:#?}"
    );

    h.client()
        .decommission(with_token(
            api::DecommissionRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                reason: "done".into(),
            },
            &h.token(tenant, Role::Owner),
        ))
        .await
        .unwrap();
    let events = h.events(tenant, &id).await;
    let Some(DeploymentEvent::Decommissioned(gone)) = events.last() else {
        panic!("{events:#?}");
    };
    assert_eq!(gone.saved_spec.as_ref().unwrap().version, "1.1.0");
    h.deployment_where(tenant, &id, "decommissioned", |d| {
        d.status == api::DeploymentStatus::Decommissioned as i32
    })
    .await;
}
