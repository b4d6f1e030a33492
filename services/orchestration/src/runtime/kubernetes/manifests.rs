//! The Kubernetes objects of a tenant and of its deployments, pure: the same inputs give the
//! same objects (golden files hold them), so applying them again changes nothing.
//!
//! Per tenant, in its namespace `tenant-<tenant id>`:
//! - the **Namespace**, labelled for Pod Security Standards `restricted` (enforced, audited,
//!   warned), so no pod that escapes the restricted profile is admitted;
//! - a **ResourceQuota** from the tenant's plan: as many Deployments, Services and
//!   HorizontalPodAutoscalers as its `dedicated_instances`, pods up to that many times
//!   [`MAX_REPLICAS`](crate::domain::spec::MAX_REPLICAS); no volume claims, node ports or load
//!   balancers (the gateway is the only way in);
//! - a **LimitRange** giving a container without requests or limits the platform's defaults
//!   (every spec field is optional: 0 means "none");
//! - a default-deny **NetworkPolicy** over every pod of the namespace that admits only the
//!   gateway's pods (namespace and pod labels configured).
//!
//! Per deployment, named `dep-<deployment id>`: a **Deployment** (rolling update with one
//! surge and none unavailable, as the process runtime does), a ClusterIP **Service** and, when
//! autoscaling is on, a **HorizontalPodAutoscaler** on average CPU.
//!
//! Everything carries `tenantry.dev/tenant` (and `tenantry.dev/deployment` below a
//! deployment), which is what the watches select and what ties a pod back to the log.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{Value, json};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::spec::MAX_REPLICAS;
use crate::runtime::Target;

/// Our field manager for server-side apply.
pub const MANAGER: &str = "tenantry-orchestration";
pub const TENANT_LABEL: &str = "tenantry.dev/tenant";
pub const DEPLOYMENT_LABEL: &str = "tenantry.dev/deployment";
/// The spec's revision a pod runs (the reconciler's `generation`).
pub const GENERATION_LABEL: &str = "tenantry.dev/generation";
/// The spec's version, as an annotation: a version may hold `/` and `:`, which a label
/// value may not.
pub const VERSION_ANNOTATION: &str = "tenantry.dev/version";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The container's port when the spec names none.
pub const DEFAULT_PORT: u32 = 8080;

/// What the operator configures about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The gateway's namespace (matched by its `kubernetes.io/metadata.name` label).
    pub gateway_namespace: String,
    /// Labels of the gateway's pods.
    pub gateway_pod_labels: BTreeMap<String, String>,
    /// How long a pod may take to stop after SIGTERM.
    pub termination_grace_seconds: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            gateway_namespace: "tenantry".into(),
            gateway_pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".into(),
                "tenantry-gateway".into(),
            )]),
            termination_grace_seconds: 10,
        }
    }
}

pub fn namespace_name(tenant: Uuid) -> String {
    format!("tenant-{tenant}")
}

/// DNS-1035 (a letter first), so it serves as the Service's name too.
pub fn deployment_name(deployment: Uuid) -> String {
    format!("dep-{deployment}")
}

/// The objects of one tenant, applied before its deployments' (the namespace first).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantObjects {
    pub namespace: Namespace,
    pub quota: ResourceQuota,
    pub limits: LimitRange,
    pub network: NetworkPolicy,
}

/// The Secret holding the secret environment variables of the deployment named
/// `deployment_name` ([`deployment_name`]).
pub fn secret_name(deployment_name: &str) -> String {
    format!("{deployment_name}-env")
}

/// The objects of one deployment; `autoscaler` is `None` when autoscaling is off (and then
/// deleted if it exists).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentObjects {
    pub deployment: Deployment,
    pub service: Service,
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// The secret environment variables, opened, for the pods to read by reference;
    /// `None` when there are none (and then deleted if it exists).
    pub secret: Option<Secret>,
}

/// Turns the `json!` below into typed objects. They are literals of this file with only
/// strings and numbers substituted, so a failure is a bug of this file, caught by its tests.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    #[allow(clippy::expect_used)]
    serde_json::from_value(value).expect("a manifest of manifests.rs matches its type")
}

fn tenant_labels(tenant: Uuid) -> Value {
    json!({ TENANT_LABEL: tenant.to_string(), MANAGED_BY: MANAGER })
}

fn deployment_labels(tenant: Uuid, deployment: Uuid) -> Value {
    json!({
        TENANT_LABEL: tenant.to_string(),
        DEPLOYMENT_LABEL: deployment.to_string(),
        MANAGED_BY: MANAGER,
    })
}

/// A tenant's namespace-wide objects; `dedicated_instances` is its plan's (0: none).
pub fn tenant(tenant: Uuid, dedicated_instances: u32, settings: &Settings) -> TenantObjects {
    let ns = namespace_name(tenant);
    let mut ns_labels = tenant_labels(tenant);
    for mode in ["enforce", "audit", "warn"] {
        ns_labels[format!("pod-security.kubernetes.io/{mode}")] = json!("restricted");
        ns_labels[format!("pod-security.kubernetes.io/{mode}-version")] = json!("latest");
    }
    let count = i64::from(dedicated_instances);
    let pods = count * i64::from(MAX_REPLICAS);
    TenantObjects {
        namespace: typed(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": ns, "labels": ns_labels },
        })),
        quota: typed(json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": { "name": "tenantry-plan", "namespace": ns, "labels": tenant_labels(tenant) },
            "spec": { "hard": {
                "count/deployments.apps": count.to_string(),
                "count/horizontalpodautoscalers.autoscaling": count.to_string(),
                "services": count.to_string(),
                "pods": pods.to_string(),
                "persistentvolumeclaims": "0",
                "services.loadbalancers": "0",
                "services.nodeports": "0",
            }},
        })),
        limits: typed(json!({
            "apiVersion": "v1", "kind": "LimitRange",
            "metadata": { "name": "tenantry-defaults", "namespace": ns, "labels": tenant_labels(tenant) },
            "spec": { "limits": [{
                "type": "Container",
                "defaultRequest": { "cpu": "100m", "memory": "128Mi" },
                "default": { "cpu": "1", "memory": "512Mi" },
            }]},
        })),
        network: typed(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": { "name": "tenantry-gateway-only", "namespace": ns, "labels": tenant_labels(tenant) },
            "spec": {
                // Every pod of the namespace; ingress only, from the gateway's pods alone.
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{ "from": [{
                    "namespaceSelector": { "matchLabels": {
                        "kubernetes.io/metadata.name": settings.gateway_namespace,
                    }},
                    "podSelector": { "matchLabels": settings.gateway_pod_labels },
                }]}],
            },
        })),
    }
}

/// Resources as Kubernetes quantities; 0 leaves one out (the LimitRange's default applies).
fn resources(r: &pb::DeploymentResources) -> Value {
    let quantity = |value: i64, unit: &str| (value > 0).then(|| json!(format!("{value}{unit}")));
    let mut requests = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    for (name, request, limit, unit) in [
        ("cpu", r.cpu_request_millis, r.cpu_limit_millis, "m"),
        ("memory", r.memory_request_bytes, r.memory_limit_bytes, ""),
    ] {
        if let Some(q) = quantity(request, unit) {
            requests.insert(name.into(), q);
        }
        if let Some(q) = quantity(limit, unit) {
            limits.insert(name.into(), q);
        }
    }
    let mut out = serde_json::Map::new();
    if !requests.is_empty() {
        out.insert("requests".into(), Value::Object(requests));
    }
    if !limits.is_empty() {
        out.insert("limits".into(), Value::Object(limits));
    }
    Value::Object(out)
}

/// Whole seconds, at least one (Kubernetes' probe fields are in seconds).
fn seconds(ms: u32) -> u32 {
    ms.div_ceil(1000).max(1)
}

/// A deployment's objects. `replicas` is the count the log wants (0 while drained); with
/// autoscaling on, the HPA moves it and the reconciler records the move on the log, so the
/// next apply carries the HPA's own count.
pub fn deployment(target: &Target, replicas: usize, settings: &Settings) -> DeploymentObjects {
    let (tenant, id, spec) = (target.tenant_id, target.deployment_id, &target.spec);
    let ns = namespace_name(tenant);
    let name = deployment_name(id);
    let port = if spec.port == 0 {
        DEFAULT_PORT
    } else {
        spec.port
    };
    let selector = json!({ TENANT_LABEL: tenant.to_string(), DEPLOYMENT_LABEL: id.to_string() });
    let mut pod_labels = deployment_labels(tenant, id);
    pod_labels[GENERATION_LABEL] = json!(target.generation.to_string());
    // Sorted by name, so the same spec always gives the same object.
    let mut env: Vec<Value> = spec
        .env
        .iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| json!({ "name": k, "value": v }))
        .collect();
    // Secret variables by reference: their values are in the Secret, not in the
    // Deployment (whose spec every reader of deployments sees).
    let secret = secret_name(&name);
    for k in target.secrets.keys() {
        env.push(json!({
            "name": k,
            "valueFrom": { "secretKeyRef": { "name": secret, "key": k } },
        }));
    }
    for (k, v) in [
        ("PORT", port.to_string()),
        ("TENANTRY_TENANT_ID", tenant.to_string()),
        ("TENANTRY_DEPLOYMENT_ID", id.to_string()),
        ("TENANTRY_VERSION", spec.version.clone()),
    ] {
        env.push(json!({ "name": k, "value": v }));
    }
    let health = spec.health.clone().unwrap_or_default();
    let path = if health.path.is_empty() {
        "/".to_owned()
    } else {
        health.path
    };
    let replicas = i32::try_from(replicas).unwrap_or(MAX_REPLICAS);
    let deployment = typed(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": ns, "labels": deployment_labels(tenant, id) },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": selector },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": { VERSION_ANNOTATION: spec.version },
                },
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": settings.termination_grace_seconds,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "app",
                        "image": format!("{}:{}", spec.image, spec.version),
                        "ports": [{ "name": "http", "containerPort": port, "protocol": "TCP" }],
                        "env": env,
                        "resources": resources(&spec.resources.unwrap_or_default()),
                        "readinessProbe": {
                            "httpGet": { "path": path, "port": "http" },
                            "periodSeconds": seconds(health.interval_ms),
                            "timeoutSeconds": seconds(health.timeout_ms),
                            "failureThreshold": health.failure_threshold.max(1),
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "runAsNonRoot": true,
                            "capabilities": { "drop": ["ALL"] },
                            "seccompProfile": { "type": "RuntimeDefault" },
                        },
                    }],
                },
            },
        },
    }));
    let service = typed(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": ns, "labels": deployment_labels(tenant, id) },
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{ "name": "http", "port": port, "targetPort": "http", "protocol": "TCP" }],
        },
    }));
    let autoscaler = spec.autoscaling.filter(|a| a.enabled).map(|a| {
        typed(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": name, "namespace": ns, "labels": deployment_labels(tenant, id) },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "metrics": [{ "type": "Resource", "resource": {
                    "name": "cpu",
                    "target": { "type": "Utilization", "averageUtilization": a.target_cpu_percent },
                }}],
            },
        }))
    });
    let secret = (!target.secrets.is_empty()).then(|| {
        let data: BTreeMap<&String, String> = target
            .secrets
            .iter()
            .map(|(k, v)| (k, STANDARD.encode(v)))
            .collect();
        typed(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": secret,
                "namespace": ns,
                "labels": deployment_labels(tenant, id),
            },
            "type": "Opaque",
            "immutable": false,
            "data": data,
        }))
    });
    DeploymentObjects {
        deployment,
        service,
        autoscaler,
        secret,
    }
}
