//! `tenantry events --tenant <id>` against the orchestration service on the real NATS: it
//! prints the tenant's history after `--after`, then what happens live, and nothing of another
//! tenant; another tenant's token is refused.

use std::time::Duration;

use tenantry_cli::events::{EventsArgs, EventsError, Format, follow};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_kit::Role;
use tenantry_kit::service::Service;
use tenantry_orchestration::{OrchestrationConfig, OrchestrationService};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

fn scaled(replicas: i32) -> DeploymentEvent {
    DeploymentEvent::Scaled(pb::DeploymentScaled {
        replicas,
        previous: replicas - 1,
    })
}

#[tokio::test]
async fn events_prints_a_tenants_history_then_what_happens_live_and_nothing_else() {
    let env = TestEnv::new().await;
    let svc = env
        .start(OrchestrationService::new(OrchestrationConfig::ephemeral(
            std::env::temp_dir().join(&env.id).join("orchestration"),
            vec![],
        )))
        .await;
    let store = env.event_store().await;
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let (deployment, theirs) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let append = |t: Uuid, d: String, e: DeploymentEvent| {
        let store = store.clone();
        async move {
            tenantry_testkit::append(&store, &t.to_string(), &d, e)
                .await
                .unwrap()
        }
    };
    append(tenant, deployment.clone(), scaled(2)).await;
    append(other, theirs.clone(), scaled(5)).await;
    append(tenant, deployment.clone(), scaled(3)).await;

    let args = EventsArgs {
        tenant: tenant.to_string(),
        after: Some(0),
        limit: Some(3),
        output: Format::Json,
        endpoint: format!("http://{}", svc.addr),
        token: env.token(Some(tenant), Role::Viewer),
    };
    let following = tokio::spawn(async move {
        let mut out = Vec::new();
        follow(&args, &mut out).await.map(|()| out)
    });
    // The third event happens while it follows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    append(tenant, deployment.clone(), scaled(4)).await;
    let out = tokio::time::timeout(Duration::from_secs(20), following)
        .await
        .expect("three events within 20 s")
        .unwrap()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String, i64)> = lines
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_owned(),
                m["deployment_id"].as_str().unwrap().to_owned(),
                m["data"]["replicas"].as_i64().unwrap(),
            )
        })
        .collect();
    let scaled = |n| ("deployment.scaled".to_owned(), deployment.clone(), n);
    assert_eq!(seen, [scaled(2), scaled(3), scaled(4)]);
    assert!(lines.iter().all(|m| m["tenant_id"] == tenant.to_string()));

    // The text form: one line per event.
    let mut out = Vec::new();
    let args = EventsArgs {
        tenant: tenant.to_string(),
        after: Some(0),
        limit: Some(1),
        output: Format::Text,
        endpoint: format!("http://{}", svc.addr),
        token: env.token(Some(tenant), Role::Viewer),
    };
    follow(&args, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!("deployment.scaled {deployment} "))
            && text.contains(r#""replicas":2"#),
        "{text}"
    );

    // Another tenant's token: refused by the feed (4403), and the command fails.
    let args = EventsArgs {
        token: env.token(Some(other), Role::Owner),
        ..args
    };
    let refused = tokio::time::timeout(Duration::from_secs(10), follow(&args, &mut Vec::new()))
        .await
        .expect("refused at once");
    assert!(
        matches!(refused, Err(EventsError::Refused { code: 4403, .. })),
        "{refused:?}"
    );
}
