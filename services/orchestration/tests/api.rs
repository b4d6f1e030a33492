//! The gRPC API: bad specs are refused naming the field and nothing is appended; only plans
//! with dedicated instances provision; roles; tenant B cannot reach tenant A's deployment
//! through any RPC.

mod common;

use common::{spec, start, with_token};
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1 as api;
use tonic::Code;
use uuid::Uuid;

/// A change that makes a good spec bad.
type Spoil = Box<dyn Fn(&mut pb::DeploymentSpec)>;

#[tokio::test]
async fn bad_specs_are_invalid_argument_naming_the_field_and_nothing_is_appended() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let owner = h.token(tenant, Role::Owner);
    let cases: Vec<(&str, Spoil)> = vec![
        ("spec.replicas", Box::new(|s| s.replicas = -1)),
        (
            "spec.autoscaling.min_replicas",
            Box::new(|s| {
                s.autoscaling = Some(pb::AutoscalingSpec {
                    enabled: true,
                    min_replicas: 4,
                    max_replicas: 2,
                    target_cpu_percent: 70,
                });
            }),
        ),
        ("spec.runtime", Box::new(|s| s.runtime = "nomad".into())),
        (
            "spec.resources.memory_limit_bytes",
            Box::new(|s| {
                s.resources = Some(pb::DeploymentResources {
                    memory_request_bytes: 512 << 20,
                    memory_limit_bytes: 256 << 20,
                    ..Default::default()
                });
            }),
        ),
        // A program the operator did not list is not runnable: a tenant never names a command.
        ("spec.image", Box::new(|s| s.image = "bash".into())),
    ];
    for (field, spoil) in cases {
        let mut bad = spec(1);
        spoil(&mut bad);
        let id = Uuid::now_v7();
        let e = h
            .client()
            .provision(with_token(
                api::ProvisionRequest {
                    tenant_id: tenant.to_string(),
                    spec: Some(bad),
                    deployment_id: id.to_string(),
                    secrets: Default::default(),
                },
                &owner,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(
            e.message().starts_with(&format!("{field}: ")),
            "{field}: {e:?}"
        );
        assert!(
            h.events(tenant, &id.to_string()).await.is_empty(),
            "{field}: nothing appended"
        );
    }
    // A bad update is refused the same way, and the deployment keeps its spec.
    let id = h.provision(tenant, spec(0)).await.unwrap().deployment_id;
    let before = h.events(tenant, &id).await.len();
    let mut bad = spec(-3);
    bad.version = "2".into();
    let e = h
        .client()
        .update(with_token(
            api::UpdateRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                spec: Some(bad),
                secrets: Default::default(),
            },
            &owner,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("spec.replicas: "), "{e:?}");
    assert_eq!(h.events(tenant, &id).await.len(), before);
}

#[tokio::test]
async fn only_a_plan_with_dedicated_instances_provisions_and_only_as_many_as_it_allows() {
    let h = start().await;
    let free = h.tenant(0).await;
    let e = h.provision(free, spec(0)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("dedicated instances"), "{e:?}");

    let enterprise = h.tenant(1).await;
    let first = h.provision(enterprise, spec(0)).await.unwrap();
    // The plan is checked against the deployments the service has read.
    assert!(
        h.svc
            .directory
            .applied(first.position, std::time::Duration::from_secs(10))
            .await
    );
    let e = h.provision(enterprise, spec(0)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().starts_with("dedicated_instances"), "{e:?}");

    // A retry with the same deployment id is the same provisioning: answered, not doubled.
    let owner = h.token(enterprise, Role::Owner);
    let again = h
        .client()
        .provision(with_token(
            api::ProvisionRequest {
                tenant_id: enterprise.to_string(),
                spec: Some(spec(0)),
                deployment_id: first.deployment_id.clone(),
                secrets: Default::default(),
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.deployment_id, first.deployment_id);
    assert_eq!(h.events(enterprise, &first.deployment_id).await.len(), 1);

    // A decommissioned deployment no longer counts against the plan.
    h.client()
        .decommission(with_token(
            api::DecommissionRequest {
                tenant_id: enterprise.to_string(),
                deployment_id: first.deployment_id.clone(),
                reason: String::new(),
            },
            &owner,
        ))
        .await
        .unwrap();
    common::eventually_provisions(&h, enterprise).await;
}

#[tokio::test]
async fn provisions_at_once_cannot_pass_the_plans_limit_together() {
    let h = start().await;
    let tenant = h.tenant(2).await;
    let tries = futures::future::join_all((0..6).map(|_| h.provision(tenant, spec(0)))).await;
    let accepted = tries.iter().filter(|t| t.is_ok()).count();
    assert_eq!(accepted, 2, "{tries:?}");
    for refused in tries.iter().filter_map(|t| t.as_ref().err()) {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    }
}

#[tokio::test]
async fn roles_a_viewer_reads_a_member_operates_an_owner_provisions() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let provisioned = h.provision(tenant, spec(0)).await.unwrap();
    let id = provisioned.deployment_id.clone();
    let viewer = h.token(tenant, Role::Viewer);
    let member = h.token(tenant, Role::Member);
    let mut c = h.client();
    let e = c
        .scale(with_token(
            api::ScaleRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                replicas: 1,
            },
            &viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .provision(with_token(
            api::ProvisionRequest {
                tenant_id: tenant.to_string(),
                spec: Some(spec(0)),
                deployment_id: String::new(),
                secrets: Default::default(),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let listed = c
        .list_deployments(with_token(
            api::ListDeploymentsRequest {
                tenant_id: tenant.to_string(),
                min_position: provisioned.position,
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner()
        .deployments;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].deployment_id, id);
}

#[tokio::test]
async fn tenant_b_cannot_reach_tenant_a_deployment_through_any_rpc() {
    let h = start().await;
    let a = h.tenant(1).await;
    let b = h.tenant(1).await;
    let id = h.provision(a, spec(0)).await.unwrap().deployment_id;
    let before = h.events(a, &id).await.len();
    let t = h.token(b, Role::Owner);
    let t = t.as_str();
    let a_id = a.to_string();
    let mut c = h.client();
    let outcomes: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "Provision",
            c.provision(with_token(
                api::ProvisionRequest {
                    tenant_id: a_id.clone(),
                    spec: Some(spec(0)),
                    deployment_id: String::new(),
                    secrets: Default::default(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "Scale",
            c.scale(with_token(
                api::ScaleRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                    replicas: 3,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "SetAutoscaling",
            c.set_autoscaling(with_token(
                api::SetAutoscalingRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                    autoscaling: Some(pb::AutoscalingSpec::default()),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "Update",
            c.update(with_token(
                api::UpdateRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                    spec: Some(spec(1)),
                    secrets: Default::default(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "Drain",
            c.drain(with_token(
                api::DrainRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                    reason: String::new(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "Resume",
            c.resume(with_token(
                api::ResumeRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "Decommission",
            c.decommission(with_token(
                api::DecommissionRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                    reason: String::new(),
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "GetDeployment",
            c.get_deployment(with_token(
                api::GetDeploymentRequest {
                    tenant_id: a_id.clone(),
                    deployment_id: id.clone(),
                    min_position: 0,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
        (
            "ListDeployments",
            c.list_deployments(with_token(
                api::ListDeploymentsRequest {
                    tenant_id: a_id.clone(),
                    min_position: 0,
                },
                t,
            ))
            .await
            .map(|_| ()),
        ),
    ];
    for (rpc, outcome) in outcomes {
        let e = outcome.expect_err(rpc);
        assert_eq!(e.code(), Code::NotFound, "{rpc}: {e:?}");
    }
    // B's own tenant id with A's deployment id: not found either (it lives under A).
    let e = c
        .get_deployment(with_token(
            api::GetDeploymentRequest {
                tenant_id: b.to_string(),
                deployment_id: id.clone(),
                min_position: 0,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .drain(with_token(
            api::DrainRequest {
                tenant_id: b.to_string(),
                deployment_id: id.clone(),
                reason: String::new(),
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(
        h.events(a, &id).await.len(),
        before,
        "nothing appended to A's"
    );
}
