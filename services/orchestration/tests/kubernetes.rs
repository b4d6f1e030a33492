//! The `kubernetes` runtime against the stand-in API server (`common/kube_api.rs`): the
//! manifests per tenant (golden files), server-side apply that is idempotent (also across a
//! restart of the service), the watches' pods and HPAs becoming events on the log, a tenant's
//! objects only in its own namespace; and, when `KUBECONFIG` is set, a real cluster.
//!
//! Golden files are in `tests/golden/`; `TENANTRY_UPDATE_GOLDEN=1` rewrites them.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::{Harness, healthy, spec, start_with, with_token};
use serde_json::json;
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_kit::Role;
use tenantry_orchestration::runtime::Target;
use tenantry_orchestration::runtime::kubernetes::manifests::{self, Settings};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1 as api;
use tenantry_testkit::eventually;
use tenantry_testkit::fakes::kube_api::KubeApi;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn kube_spec(replicas: i32) -> pb::DeploymentSpec {
    let mut s = spec(replicas);
    s.runtime = "kubernetes".into();
    s.image = "registry.example/shop".into();
    s.version = "1.4.2".into();
    s.port = 8080;
    s
}

fn autoscaled(mut s: pb::DeploymentSpec, min: i32, max: i32) -> pb::DeploymentSpec {
    s.autoscaling = Some(pb::AutoscalingSpec {
        enabled: true,
        min_replicas: min,
        max_replicas: max,
        target_cpu_percent: 50,
    });
    s
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("TENANTRY_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (TENANTRY_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs from what the manifests give now (TENANTRY_UPDATE_GOLDEN=1 rewrites it after a \
         deliberate change):\n{actual}",
        path.display()
    );
}

#[test]
fn a_tenants_manifests_are_the_golden_ones() {
    let tenant = Uuid::parse_str("0190a000-0000-7000-8000-000000000001").unwrap();
    let web = Uuid::parse_str("0190a000-0000-7000-8000-0000000000a1").unwrap();
    let worker = Uuid::parse_str("0190a000-0000-7000-8000-0000000000a2").unwrap();
    let settings = Settings::default();
    // One with everything set: resources, environment, probe, autoscaling, a second revision.
    let mut full = autoscaled(kube_spec(2), 2, 6);
    full.env = [("LOG_LEVEL", "info"), ("FEATURE_X", "on")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    full.resources = Some(pb::DeploymentResources {
        cpu_request_millis: 250,
        cpu_limit_millis: 1000,
        memory_request_bytes: 268_435_456,
        memory_limit_bytes: 536_870_912,
    });
    full.health = Some(pb::HealthProbe {
        path: "/healthz".into(),
        interval_ms: 2_500,
        timeout_ms: 800,
        failure_threshold: 4,
    });
    // One with the defaults only (no port, no resources, no autoscaling).
    let mut bare = tenantry_orchestration::domain::spec::normalized(pb::DeploymentSpec {
        name: "worker".into(),
        runtime: "kubernetes".into(),
        image: "registry.example/worker".into(),
        version: "7".into(),
        replicas: 1,
        ..Default::default()
    });
    bare.port = 0;
    let objects = manifests::tenant(tenant, 3, &settings);
    let d1 = manifests::deployment(
        &Target {
            tenant_id: tenant,
            deployment_id: web,
            generation: 2,
            spec: full,
            secrets: [("API_TOKEN".to_owned(), "golden-token".to_owned())].into(),
        },
        2,
        &settings,
    );
    let d2 = manifests::deployment(
        &Target {
            tenant_id: tenant,
            deployment_id: worker,
            generation: 1,
            spec: bare,
            secrets: Default::default(),
        },
        1,
        &settings,
    );
    assert!(d2.autoscaler.is_none(), "no autoscaling, no HPA");
    assert!(d2.secret.is_none(), "no secret variables, no Secret");
    let all = json!([
        objects.namespace,
        objects.quota,
        objects.limits,
        objects.network,
        d1.service,
        d1.deployment,
        d1.autoscaler,
        d1.secret,
        d2.service,
        d2.deployment,
    ]);
    let mut text = serde_json::to_string_pretty(&all).unwrap();
    text.push('\n');
    golden("kubernetes_tenant.json", &text);
    // What the restricted profile needs, said once more here than in the golden file.
    let pod = &all[5]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0]["securityContext"];
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        all[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

/// A world with the stand-in as its cluster.
async fn with_stand_in() -> (KubeApi, Harness) {
    let api = KubeApi::start().await;
    let h = start_with(Some(api.kubeconfig())).await;
    (api, h)
}

#[tokio::test]
async fn without_a_cluster_configured_a_kubernetes_spec_is_invalid_and_nothing_is_appended() {
    let h = common::start().await;
    let tenant = h.tenant(1).await;
    let id = Uuid::now_v7().to_string();
    let e = h
        .client()
        .provision(with_token(
            api::ProvisionRequest {
                tenant_id: tenant.to_string(),
                spec: Some(kube_spec(1)),
                deployment_id: id.clone(),
                secrets: Default::default(),
            },
            &h.token(tenant, Role::Owner),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("spec.runtime: "), "{e:?}");
    assert!(h.events(tenant, &id).await.is_empty());
}

fn names(tenant: Uuid, id: &str) -> (String, String) {
    (format!("tenant-{tenant}"), format!("dep-{id}"))
}

async fn events_where(
    h: &Harness,
    tenant: Uuid,
    id: &str,
    what: &str,
    check: impl Fn(&DeploymentEvent) -> bool,
) -> DeploymentEvent {
    eventually(what, WAIT, || async {
        h.events(tenant, id).await.into_iter().find(|e| check(e))
    })
    .await
}

/// The instance-seconds reported to `USAGE` for `tenant` so far (tests' unit is a second).
async fn instance_seconds(h: &Harness, tenant: Uuid) -> u64 {
    use futures::StreamExt;
    use prost::Message;
    let store = h.env.event_store().await;
    let names = store.names().clone();
    let stream = store
        .jetstream()
        .get_stream(&names.usage_stream)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!(
                "{}.{tenant}.{}",
                names.usage_root,
                tenantry_contracts::usage::INSTANCE_HOURS
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut total = 0;
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(300), messages.next()).await
    {
        total += pb::UsageReport::decode(m.payload.as_ref())
            .unwrap()
            .quantity;
    }
    total
}

/// The objects of namespace `ns` (and the namespace itself) with their versions.
async fn versions_in(api: &KubeApi, ns: &str) -> Vec<(String, String, String)> {
    api.versions()
        .await
        .into_iter()
        .filter(|((res, n, name), _)| n == ns || (res == "namespaces" && name == ns))
        .map(|((res, _, name), rv)| (res, name, rv))
        .collect()
}

#[tokio::test]
async fn server_side_apply_is_idempotent_even_after_a_restart_and_updates_and_decommission_apply() {
    let (api, mut h) = with_stand_in().await;
    let tenant = h.tenant(2).await;
    let id = h
        .provision(tenant, autoscaled(kube_spec(2), 1, 4))
        .await
        .unwrap()
        .deployment_id;
    let (ns, name) = names(tenant, &id);
    eventually("the tenant's objects applied", WAIT, || async {
        api.get("horizontalpodautoscalers", &ns, &name).await
    })
    .await;
    let before = versions_in(&api, &ns).await;
    let kinds: Vec<&str> = before.iter().map(|(r, _, _)| r.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "deployments",
            "horizontalpodautoscalers",
            "limitranges",
            "namespaces",
            "networkpolicies",
            "resourcequotas",
            "services"
        ],
        "{before:?}"
    );
    let quota = api
        .get("resourcequotas", &ns, "tenantry-plan")
        .await
        .unwrap();
    assert_eq!(
        quota["spec"]["hard"]["count/deployments.apps"], "2",
        "the plan's 2 dedicated instances"
    );
    let applies = api.applies().await;
    assert_eq!(applies.len(), 7, "{applies:?}");
    for a in &applies {
        assert_eq!(a.content_type, "application/apply-patch+yaml");
        assert_eq!(a.field_manager, "tenantry-orchestration");
        assert!(a.force, "{a:?}");
    }
    // Many passes later (every 100 ms), nothing more was sent.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        api.applies().await.len(),
        7,
        "an unchanged object is not applied again"
    );

    // A restarted service applies every object once more: the server changes none.
    h.restart().await;
    eventually(
        "the restarted service applied its objects",
        WAIT,
        || async { (api.applies().await.len() >= 14).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.applies().await.len(), 14);
    assert_eq!(
        versions_in(&api, &ns).await,
        before,
        "the same resourceVersions"
    );

    // A Deployment deleted behind the service's back is applied again.
    api.delete("deployments", &ns, &name).await.unwrap();
    eventually("the Deployment applied again", WAIT, || async {
        api.get("deployments", &ns, &name).await
    })
    .await;
    let before = versions_in(&api, &ns).await;

    // A scale is applied (the Deployment changes, nothing else does).
    let owner = h.token(tenant, Role::Owner);
    h.client()
        .scale(with_token(
            api::ScaleRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                replicas: 3,
            },
            &owner,
        ))
        .await
        .unwrap();
    eventually("the Deployment scaled to 3", WAIT, || async {
        let d = api.get("deployments", &ns, &name).await?;
        (d["spec"]["replicas"] == 3).then_some(())
    })
    .await;
    let after = versions_in(&api, &ns).await;
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(changed, ["deployments"]);

    // An update (deployment.updated) is a new revision of the pod template: the new image,
    // the next generation; the Deployment controller rolls it out.
    let mut next = autoscaled(kube_spec(3), 1, 4);
    next.version = "1.5.0".into();
    h.client()
        .update(with_token(
            api::UpdateRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                spec: Some(next),
                secrets: Default::default(),
            },
            &owner,
        ))
        .await
        .unwrap();
    let template = eventually("the new revision applied", WAIT, || async {
        let d = api.get("deployments", &ns, &name).await?;
        let t = d["spec"]["template"].clone();
        (t["metadata"]["labels"]["tenantry.dev/generation"] == "2").then_some(t)
    })
    .await;
    assert_eq!(
        template["spec"]["containers"][0]["image"],
        "registry.example/shop:1.5.0"
    );
    assert_eq!(
        template["metadata"]["annotations"]["tenantry.dev/version"],
        "1.5.0"
    );

    // Decommissioned: its objects go, the namespace (quota, policies) stays.
    h.client()
        .decommission(with_token(
            api::DecommissionRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                reason: "test".into(),
            },
            &owner,
        ))
        .await
        .unwrap();
    eventually("the deployment's objects deleted", WAIT, || async {
        let gone = api.get("deployments", &ns, &name).await.is_none()
            && api.get("services", &ns, &name).await.is_none()
            && api
                .get("horizontalpodautoscalers", &ns, &name)
                .await
                .is_none();
        gone.then_some(())
    })
    .await;
    assert!(api.get("namespaces", "", &ns).await.is_some());
    assert!(
        api.get("networkpolicies", &ns, "tenantry-gateway-only")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn pods_and_autoscalers_seen_by_the_watches_become_events_on_the_log() {
    let (api, h) = with_stand_in().await;
    let tenant = h.tenant(1).await;
    let id = h
        .provision(tenant, autoscaled(kube_spec(1), 1, 3))
        .await
        .unwrap()
        .deployment_id;
    let (ns, name) = names(tenant, &id);
    eventually("the Deployment applied", WAIT, || async {
        api.get("deployments", &ns, &name).await
    })
    .await;

    // The Deployment controller creates a pod: pod.created with its address and revision.
    let (pod, uid) = api.run_pod(&ns, &name, "10.1.2.3").await;
    let created = events_where(
        &h,
        tenant,
        &id,
        "pod.created",
        |e| matches!(e, DeploymentEvent::PodCreated(c) if c.instance_id == uid),
    )
    .await;
    let DeploymentEvent::PodCreated(created) = created else {
        unreachable!()
    };
    assert_eq!(created.address, "10.1.2.3:8080");
    assert_eq!((created.generation, created.version.as_str()), (1, "1.4.2"));
    assert_eq!(created.runtime, "kubernetes");

    // The kubelet marks it ready: health.changed, and the deployment shows it healthy.
    api.set_ready(&ns, &pod, true).await;
    events_where(
        &h,
        tenant,
        &id,
        "health.changed (healthy)",
        |e| matches!(e, DeploymentEvent::HealthChanged(c) if c.instance_id == uid && c.healthy),
    )
    .await;
    h.deployment_where(tenant, &id, "one healthy instance", |d| healthy(d, 1))
        .await;

    // The HPA decides 2 at 80% CPU: autoscaling.triggered, and the next apply carries 2.
    api.set_status("horizontalpodautoscalers", &ns, &name, |s| {
        *s = json!({
            "currentReplicas": 1,
            "desiredReplicas": 2,
            "currentMetrics": [{ "type": "Resource", "resource": {
                "name": "cpu", "current": { "averageUtilization": 80 } } }],
        });
    })
    .await;
    let triggered = events_where(&h, tenant, &id, "autoscaling.triggered", |e| {
        matches!(e, DeploymentEvent::AutoscalingTriggered(_))
    })
    .await;
    assert!(
        matches!(triggered, DeploymentEvent::AutoscalingTriggered(t)
            if t == pb::AutoscalingTriggered { from_replicas: 1, to_replicas: 2, cpu_percent: 80 }),
        "{triggered:?}"
    );
    eventually("the Deployment at the HPA's 2", WAIT, || async {
        let d = api.get("deployments", &ns, &name).await?;
        (d["spec"]["replicas"] == 2).then_some(())
    })
    .await;

    // Its pod's time is the tenant's instance time, reported to USAGE.
    eventually("the pod's instance time in USAGE", WAIT, || async {
        let seconds = instance_seconds(&h, tenant).await;
        (seconds > 0).then_some(seconds)
    })
    .await;

    // Not ready any more: health.changed (unhealthy).
    api.set_ready(&ns, &pod, false).await;
    events_where(
        &h,
        tenant,
        &id,
        "health.changed (unhealthy)",
        |e| matches!(e, DeploymentEvent::HealthChanged(c) if c.instance_id == uid && !c.healthy),
    )
    .await;
    // Terminating: out of the gateways' rotation first (pod.draining), then gone.
    api.terminate(&ns, &pod).await;
    events_where(
        &h,
        tenant,
        &id,
        "pod.draining",
        |e| matches!(e, DeploymentEvent::PodDraining(d) if d.instance_id == uid),
    )
    .await;
    api.delete("pods", &ns, &pod).await.unwrap();
    events_where(
        &h,
        tenant,
        &id,
        "pod.deleted",
        |e| matches!(e, DeploymentEvent::PodDeleted(d) if d.instance_id == uid),
    )
    .await;
    h.deployment_where(tenant, &id, "no instance", |d| d.instances.is_empty())
        .await;
    // Each fact once.
    let events = h.events(tenant, &id).await;
    let count = |f: fn(&DeploymentEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, DeploymentEvent::PodCreated(_))), 1);
    assert_eq!(count(|e| matches!(e, DeploymentEvent::PodDeleted(_))), 1);
    assert_eq!(
        count(|e| matches!(e, DeploymentEvent::AutoscalingTriggered(_))),
        1
    );
}

#[tokio::test]
async fn a_tenants_objects_and_pods_stay_in_its_own_namespace() {
    let (api, h) = with_stand_in().await;
    let (a, b) = (h.tenant(1).await, h.tenant(1).await);
    let id_a = h.provision(a, kube_spec(1)).await.unwrap().deployment_id;
    let id_b = h.provision(b, kube_spec(1)).await.unwrap().deployment_id;
    let ((ns_a, name_a), (ns_b, name_b)) = (names(a, &id_a), names(b, &id_b));
    for (ns, name) in [(&ns_a, &name_a), (&ns_b, &name_b)] {
        eventually("both deployments applied", WAIT, || async {
            api.get("deployments", ns, name).await
        })
        .await;
    }
    // Every object of a tenant's namespace is labelled for that tenant, and only there.
    for resource in [
        "services",
        "deployments",
        "resourcequotas",
        "limitranges",
        "networkpolicies",
    ] {
        for (ns, o) in api.all(resource).await {
            let label = o["metadata"]["labels"]["tenantry.dev/tenant"]
                .as_str()
                .unwrap();
            assert_eq!(ns, format!("tenant-{label}"), "{resource} {o}");
            if let Some(d) = o["metadata"]["labels"]["tenantry.dev/deployment"].as_str() {
                let own = if label == a.to_string() { &id_a } else { &id_b };
                assert_eq!(d, own.as_str(), "{resource} {o}");
            }
        }
    }
    assert!(api.get("deployments", &ns_b, &name_a).await.is_none());

    // A pod of b's deployment is b's alone; one in b's namespace claiming a's labels is
    // nobody's.
    let (_, uid_b) = api.run_pod(&ns_b, &name_b, "10.9.0.2").await;
    events_where(
        &h,
        b,
        &id_b,
        "b's pod.created",
        |e| matches!(e, DeploymentEvent::PodCreated(c) if c.instance_id == uid_b),
    )
    .await;
    let d_a = api.get("deployments", &ns_a, &name_a).await.unwrap();
    let forged_uid = Uuid::new_v4().to_string();
    api.put_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "forged", "namespace": ns_b, "uid": forged_uid,
            "labels": d_a["spec"]["template"]["metadata"]["labels"],
        },
        "status": { "phase": "Running", "podIP": "10.9.0.3",
            "conditions": [{ "type": "Ready", "status": "True" }] },
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let on_a = h.events(a, &id_a).await;
    assert!(
        !on_a
            .iter()
            .any(|e| matches!(e, DeploymentEvent::PodCreated(_))),
        "{on_a:?}"
    );
    let on_b = h.events(b, &id_b).await;
    let created: Vec<&str> = on_b
        .iter()
        .filter_map(|e| match e {
            DeploymentEvent::PodCreated(c) => Some(c.instance_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created, [uid_b.as_str()]);
}

/// Runs against the cluster `KUBECONFIG` names (its first file), when set: a real
/// deployment of an unprivileged nginx becomes ready, then is decommissioned, and the
/// tenant's namespace is deleted. Skipped otherwise (there is no cluster on these machines).
#[tokio::test]
async fn against_a_real_cluster_when_kubeconfig_is_set() {
    let Some(path) = std::env::var_os("KUBECONFIG")
        .and_then(|p| std::env::split_paths(&p).next())
        .filter(|p| !p.as_os_str().is_empty())
    else {
        eprintln!(
            "skipped: KUBECONFIG is not set (README.md, \"Dedicated instances\", says how to run it)"
        );
        return;
    };
    let h = start_with(Some(PathBuf::from(&path))).await;
    let tenant = h.tenant(1).await;
    let mut s = kube_spec(1);
    s.image = "nginxinc/nginx-unprivileged".into();
    s.version = "1.27-alpine".into();
    let id = h.provision(tenant, s).await.unwrap().deployment_id;
    let ready = eventually(
        "a ready pod on the cluster",
        Duration::from_secs(300),
        || async {
            let d = h.try_deployment(tenant, &id).await.ok()?;
            healthy(&d, 1).then_some(d)
        },
    )
    .await;
    assert!(!ready.instances[0].address.is_empty());
    h.client()
        .decommission(with_token(
            api::DecommissionRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                reason: "test".into(),
            },
            &h.token(tenant, Role::Owner),
        ))
        .await
        .unwrap();
    eventually("the pod gone", Duration::from_secs(180), || async {
        let d = h.try_deployment(tenant, &id).await.ok()?;
        d.instances.is_empty().then_some(())
    })
    .await;
    let client = tenantry_orchestration::runtime::kubernetes::Cluster::Kubeconfig(path)
        .client()
        .await
        .unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let _ = namespaces
        .delete(&format!("tenant-{tenant}"), &Default::default())
        .await;
}

#[tokio::test]
async fn secret_variables_go_in_a_secret_the_pods_reference_and_it_goes_when_they_do() {
    let (api, h) = with_stand_in().await;
    let tenant = h.tenant(1).await;
    let owner = h.token(tenant, Role::Owner);
    let canary = format!("canary-{}", Uuid::now_v7().simple());
    let id = h
        .client()
        .provision(with_token(
            api::ProvisionRequest {
                tenant_id: tenant.to_string(),
                spec: Some(kube_spec(1)),
                deployment_id: String::new(),
                secrets: [("API_TOKEN".to_owned(), canary.clone())].into(),
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .deployment_id;
    let (ns, name) = names(tenant, &id);
    let secret_name = format!("{name}-env");
    let secret = eventually("the deployment's Secret applied", WAIT, || async {
        api.get("secrets", &ns, &secret_name).await
    })
    .await;
    assert_eq!(secret["type"], "Opaque");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&canary);
    assert_eq!(secret["data"]["API_TOKEN"], encoded.as_str());
    // The Deployment names the Secret, never the value.
    let deployment = eventually("the Deployment applied", WAIT, || async {
        api.get("deployments", &ns, &name).await
    })
    .await;
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    let token = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "API_TOKEN")
        .unwrap();
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["name"],
        secret_name.as_str()
    );
    assert_eq!(token["valueFrom"]["secretKeyRef"]["key"], "API_TOKEN");
    assert!(!deployment.to_string().contains(&canary));

    // An update that removes the last secret variable deletes the Secret.
    h.client()
        .update(with_token(
            api::UpdateRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                spec: Some(kube_spec(1)),
                secrets: [("API_TOKEN".to_owned(), String::new())].into(),
            },
            &owner,
        ))
        .await
        .unwrap();
    eventually("the Secret deleted", WAIT, || async {
        api.get("secrets", &ns, &secret_name)
            .await
            .is_none()
            .then_some(())
    })
    .await;
}
