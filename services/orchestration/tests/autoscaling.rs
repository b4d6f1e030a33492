//! Autoscaling on measured CPU, for real: an instance that burns a core is measured from
//! `/proc`, the deployment gets `autoscaling.triggered` and a second instance; once the load is
//! gone it goes back to its minimum (windows of 1 s up and 1.5 s down in tests).

mod common;

use std::time::Duration;

use common::{BURN, healthy, spec, start};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_proto::events::v1 as pb;

#[tokio::test]
async fn a_cpu_burn_adds_an_instance_and_the_load_gone_brings_it_back_to_the_minimum() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let mut s = spec(1);
    s.image = BURN.into();
    s.resources = Some(pb::DeploymentResources {
        cpu_request_millis: 500,
        ..Default::default()
    });
    s.autoscaling = Some(pb::AutoscalingSpec {
        enabled: true,
        min_replicas: 1,
        max_replicas: 2,
        target_cpu_percent: 50,
    });
    let id = h.provision(tenant, s).await.unwrap().deployment_id;
    let first = h
        .deployment_where(tenant, &id, "one healthy instance", |d| healthy(d, 1))
        .await;
    // Idle, it stays at one: a few windows' worth of samples decide nothing.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        !h.events(tenant, &id)
            .await
            .iter()
            .any(|e| matches!(e, DeploymentEvent::AutoscalingTriggered(_))),
        "an idle deployment was autoscaled"
    );

    // One core busy for 8 s: 200% of a 500m request, above the 50% target. The burn runs
    // while the test waits for the second instance: on a loaded machine that instance may
    // take seconds to turn healthy, and once the burn ends the deployment scales back down.
    let address = &first.instances[0].address;
    let burn = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect(&address).unwrap();
            c.write_all(b"GET /burn?seconds=8 HTTP/1.0\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        }
    });

    h.deployment_where(tenant, &id, "two healthy instances", |d| healthy(d, 2))
        .await;
    let answer = burn.await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    let events = h.events(tenant, &id).await;
    let up = events
        .iter()
        .find_map(|e| match e {
            DeploymentEvent::AutoscalingTriggered(t) => Some(*t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no autoscaling.triggered in {events:#?}"));
    assert_eq!((up.from_replicas, up.to_replicas), (1, 2), "{up:?}");
    assert!(up.cpu_percent > 50, "{up:?}");
    assert_eq!(
        DeploymentEvent::AutoscalingTriggered(up).feed_type(),
        "autoscaling.triggered"
    );

    // The burn ends: back to one instance, by a second decision.
    h.deployment_where(tenant, &id, "back to one healthy instance", |d| {
        d.spec.as_ref().is_some_and(|s| s.replicas == 1) && healthy(d, 1)
    })
    .await;
    let events = h.events(tenant, &id).await;
    let decisions: Vec<(i32, i32)> = events
        .iter()
        .filter_map(|e| match e {
            DeploymentEvent::AutoscalingTriggered(t) => Some((t.from_replicas, t.to_replicas)),
            _ => None,
        })
        .collect();
    assert_eq!(decisions, [(1, 2), (2, 1)], "{events:#?}");
    tenantry_testkit::eventually("one process left", Duration::from_secs(10), || async {
        (h.running_pids().len() == 1).then_some(())
    })
    .await;
}
