//! Watches of the tenants' pods, Deployments and HorizontalPodAutoscalers (every namespace,
//! selected by the `tenantry.dev/tenant` label), turned into what the reconciler reads:
//!
//! - **Pods** are the instances ([`Observed`]) once they have an address: the pod's uid is
//!   the instance id; `Starting` until its `Ready` condition is true, `Healthy` while it is,
//!   `Unhealthy` once it stops being ready, `Exited` when it failed, succeeded or was deleted (kept until the reconciler
//!   has put its end on the log and forgets it). A pod being deleted is `stopping`.
//! - **HPAs** are the autoscaling decisions ([`Scaled`]): the count an HPA wants
//!   (`status.desiredReplicas`) and the CPU it measured.
//! - **Deployments** (and HPAs): one deleted behind our back is forgotten from what was
//!   applied, so the next pass applies it again.
//!
//! kube's watcher lists, then watches from the list's `resourceVersion`, and lists again when
//! the watch ends or its version expired (410); a pod missing from a new list went away while
//! unwatched and is reported exited.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::apply::Applied;
use super::manifests::{
    DEFAULT_PORT, DEPLOYMENT_LABEL, GENERATION_LABEL, TENANT_LABEL, VERSION_ANNOTATION,
    namespace_name,
};
use crate::runtime::{Health, Observed, Scaled};

/// A pod as last seen.
#[derive(Debug, Clone)]
pub struct PodSeen {
    pub observed: Observed,
    pub namespace: String,
    pub name: String,
    /// Deleted (or missing from a new list): no event of it will follow.
    pub gone: bool,
}

/// What the watches have seen.
#[derive(Debug, Default)]
pub struct Seen {
    pub pods: HashMap<Uuid, PodSeen>,
    /// Pods the reconciler forgot after their end: a late event of theirs is ignored rather
    /// than reported as a new instance.
    forgotten: HashSet<Uuid>,
    pub scaled: HashMap<(Uuid, Uuid), Scaled>,
    /// Pods listed since the watch's last restart (the others went away meanwhile).
    relisted: Option<HashSet<Uuid>>,
}

impl Seen {
    pub fn forget(&mut self, instance: Uuid) {
        // A pod that ended without being deleted (failed) may still send events.
        if self.pods.remove(&instance).is_some_and(|p| !p.gone) {
            self.forgotten.insert(instance);
        }
    }
}

pub type Shared = Arc<RwLock<Seen>>;

/// The tenant and deployment an object belongs to: its labels, believed only in the
/// tenant's own namespace (an object elsewhere claiming a tenant is not that tenant's).
fn ids(meta: &ObjectMeta) -> Option<(Uuid, Uuid)> {
    let labels = meta.labels.as_ref()?;
    let tenant = Uuid::try_parse(labels.get(TENANT_LABEL)?).ok()?;
    let deployment = Uuid::try_parse(labels.get(DEPLOYMENT_LABEL)?).ok()?;
    (meta.namespace.as_deref() == Some(namespace_name(tenant).as_str()))
        .then_some((tenant, deployment))
}

/// A pod as an instance; `was` is how it was last seen (for `Unhealthy`).
pub fn observed(pod: &Pod, was: Option<&Health>) -> Option<PodSeen> {
    let meta = &pod.metadata;
    let (tenant_id, deployment_id) = ids(meta)?;
    let instance_id = Uuid::try_parse(meta.uid.as_deref()?).ok()?;
    let labels = meta.labels.as_ref()?;
    let generation = labels.get(GENERATION_LABEL)?.parse().ok()?;
    let version = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(VERSION_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    let spec = pod.spec.as_ref();
    let port = spec
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|p| p.first())
        .map_or(i64::from(DEFAULT_PORT), |p| i64::from(p.container_port));
    let status = pod.status.as_ref();
    let address = status
        .and_then(|s| s.pod_ip.as_deref())
        .map(|ip| format!("{ip}:{port}"))
        .unwrap_or_default();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let health = match phase {
        "Failed" | "Succeeded" => Health::Exited(format!("pod {}", phase.to_lowercase())),
        _ if ready => Health::Healthy,
        _ => match was {
            Some(Health::Healthy | Health::Unhealthy(_)) => {
                Health::Unhealthy("the pod is not ready".into())
            }
            _ => Health::Starting,
        },
    };
    Some(PodSeen {
        observed: Observed {
            instance_id,
            tenant_id,
            deployment_id,
            generation,
            version,
            address,
            health,
            stopping: meta.deletion_timestamp.is_some(),
            adopted: false,
        },
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        gone: false,
    })
}

fn apply_pod(seen: &mut Seen, pod: &Pod) {
    let Some(uid) = uid_of(pod) else {
        return;
    };
    if seen.forgotten.contains(&uid) {
        return;
    }
    let was = seen.pods.get(&uid).map(|p| p.observed.clone());
    let health = was.as_ref().map(|w| w.health.clone());
    // An exited instance stays exited until forgotten.
    if matches!(health, Some(Health::Exited(_))) {
        return;
    }
    let Some(mut entry) = observed(pod, health.as_ref()) else {
        return;
    };
    match was {
        // An instance is what can be reached: a pod is one once it has an address (the
        // gateway routes to what `pod.created` says), and keeps the one it had.
        None if entry.observed.address.is_empty() => return,
        Some(was) if entry.observed.address.is_empty() => entry.observed.address = was.address,
        _ => {}
    }
    seen.pods.insert(uid, entry);
}

fn uid_of(pod: &Pod) -> Option<Uuid> {
    pod.metadata
        .uid
        .as_deref()
        .and_then(|u| Uuid::try_parse(u).ok())
}

/// The pod is gone for good (deleted, or missing from a new list).
fn ended(seen: &mut Seen, uid: Uuid, how: &str) {
    if let Some(p) = seen.pods.get_mut(&uid) {
        p.gone = true;
        if !matches!(p.observed.health, Health::Exited(_)) {
            p.observed.health = Health::Exited(how.into());
        }
    }
    // No later event names this uid.
    seen.forgotten.remove(&uid);
}

fn pod_event(seen: &Shared, event: Event<Pod>) {
    let mut seen = seen.write().unwrap_or_else(|p| p.into_inner());
    match event {
        Event::Apply(pod) => apply_pod(&mut seen, &pod),
        Event::Delete(pod) => {
            if let Some(uid) = uid_of(&pod) {
                ended(&mut seen, uid, "pod deleted");
            }
        }
        Event::Init => seen.relisted = Some(HashSet::new()),
        Event::InitApply(pod) => {
            if let (Some(uid), Some(listed)) = (uid_of(&pod), seen.relisted.as_mut()) {
                listed.insert(uid);
            }
            apply_pod(&mut seen, &pod);
        }
        Event::InitDone => {
            let listed = seen.relisted.take().unwrap_or_default();
            let gone: Vec<Uuid> = seen
                .pods
                .keys()
                .filter(|uid| !listed.contains(uid))
                .copied()
                .collect();
            for uid in gone {
                ended(&mut seen, uid, "pod gone while unwatched");
            }
        }
    }
}

fn hpa_event(seen: &Shared, event: Event<HorizontalPodAutoscaler>) {
    let (hpa, deleted) = match event {
        Event::Apply(h) | Event::InitApply(h) => (h, false),
        Event::Delete(h) => (h, true),
        Event::Init | Event::InitDone => return,
    };
    let Some(key) = ids(&hpa.metadata) else {
        return;
    };
    let mut seen = seen.write().unwrap_or_else(|p| p.into_inner());
    if deleted {
        seen.scaled.remove(&key);
        return;
    }
    let Some(status) = hpa.status.as_ref() else {
        return;
    };
    // Not decided yet: an HPA that has not measured reports 0.
    if status.desired_replicas < 1 {
        return;
    }
    let cpu_percent = status
        .current_metrics
        .iter()
        .flatten()
        .filter_map(|m| m.resource.as_ref())
        .filter(|r| r.name == "cpu")
        .find_map(|r| r.current.average_utilization)
        .and_then(|u| u32::try_from(u).ok())
        .unwrap_or(0);
    seen.scaled.insert(
        key,
        Scaled {
            tenant_id: key.0,
            deployment_id: key.1,
            replicas: status.desired_replicas,
            cpu_percent,
        },
    );
}

/// An object of ours deleted behind our back is applied again at the next pass.
async fn forget(applied: &Mutex<Applied>, kind: &str, meta: &ObjectMeta) {
    applied.lock().await.forget_named(
        kind,
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or(""),
    );
}

/// Runs the three watches until the task is aborted.
pub async fn run(client: Client, seen: Shared, applied: Arc<Mutex<Applied>>) {
    let config = watcher::Config::default().labels(TENANT_LABEL);
    let pods = watcher::watcher(Api::<Pod>::all(client.clone()), config.clone());
    let hpas = watcher::watcher(
        Api::<HorizontalPodAutoscaler>::all(client.clone()),
        config.clone(),
    );
    let deployments = watcher::watcher(Api::<Deployment>::all(client), config);
    let pods = {
        let seen = seen.clone();
        async move {
            futures::pin_mut!(pods);
            while let Some(event) = pods.next().await {
                match event {
                    Ok(event) => pod_event(&seen, event),
                    Err(e) => {
                        tracing::warn!(error = %e, "pod watch failed; it restarts");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        }
    };
    let hpas = {
        let (seen, applied) = (seen.clone(), applied.clone());
        async move {
            futures::pin_mut!(hpas);
            while let Some(event) = hpas.next().await {
                match event {
                    Ok(event) => {
                        if let Event::Delete(h) = &event {
                            forget(&applied, "HorizontalPodAutoscaler", &h.metadata).await;
                        }
                        hpa_event(&seen, event);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "autoscaler watch failed; it restarts");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        }
    };
    let deployments = async move {
        futures::pin_mut!(deployments);
        while let Some(event) = deployments.next().await {
            match event {
                Ok(Event::Delete(d)) => forget(&applied, "Deployment", &d.metadata).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "deployment watch failed; it restarts");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    };
    tokio::join!(pods, hpas, deployments);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: &str = "0190a000-0000-7000-8000-000000000001";
    const DEPLOYMENT: &str = "0190a000-0000-7000-8000-0000000000a1";
    const UID: &str = "5d0c3f6e-9f5c-4c39-9a53-0e1f2b3c4d5e";

    fn pod(namespace: &str, phase: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "dep-x-1", "namespace": namespace, "uid": UID,
                "labels": { TENANT_LABEL: TENANT, DEPLOYMENT_LABEL: DEPLOYMENT, GENERATION_LABEL: "3" },
                "annotations": { VERSION_ANNOTATION: "2.0" },
            },
            "spec": { "containers": [{ "name": "app", "ports": [{ "containerPort": 3000 }] }] },
            "status": { "phase": phase, "podIP": "10.0.0.9",
                "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
        }))
        .unwrap()
    }

    fn ns() -> String {
        format!("tenant-{TENANT}")
    }

    fn health(seen: &Shared) -> Option<Health> {
        let uid = Uuid::parse_str(UID).unwrap();
        let seen = seen.read().unwrap();
        seen.pods.get(&uid).map(|p| p.observed.health.clone())
    }

    #[test]
    fn a_pod_is_starting_then_healthy_then_unhealthy_then_exited_when_deleted() {
        let seen = Shared::default();
        pod_event(&seen, Event::Apply(pod(&ns(), "Pending", false)));
        assert_eq!(health(&seen), Some(Health::Starting));
        {
            let s = seen.read().unwrap();
            let o = &s.pods.values().next().unwrap().observed;
            assert_eq!((o.generation, o.version.as_str()), (3, "2.0"));
            assert_eq!(o.address, "10.0.0.9:3000");
        }
        pod_event(&seen, Event::Apply(pod(&ns(), "Running", true)));
        assert_eq!(health(&seen), Some(Health::Healthy));
        pod_event(&seen, Event::Apply(pod(&ns(), "Running", false)));
        assert!(matches!(health(&seen), Some(Health::Unhealthy(_))));
        pod_event(&seen, Event::Delete(pod(&ns(), "Running", false)));
        assert_eq!(health(&seen), Some(Health::Exited("pod deleted".into())));
        // Forgotten after its end is on the log: nothing is kept of a deleted pod.
        seen.write().unwrap().forget(Uuid::parse_str(UID).unwrap());
        assert!(seen.read().unwrap().forgotten.is_empty());
    }

    #[test]
    fn a_failed_pod_forgotten_is_not_reported_again_by_a_late_event() {
        let seen = Shared::default();
        pod_event(&seen, Event::Apply(pod(&ns(), "Failed", false)));
        assert_eq!(health(&seen), Some(Health::Exited("pod failed".into())));
        seen.write().unwrap().forget(Uuid::parse_str(UID).unwrap());
        pod_event(&seen, Event::Apply(pod(&ns(), "Failed", false)));
        assert_eq!(health(&seen), None);
        // Its deletion ends the watch on it.
        pod_event(&seen, Event::Delete(pod(&ns(), "Failed", false)));
        assert!(seen.read().unwrap().forgotten.is_empty());
    }

    #[test]
    fn a_pod_is_an_instance_once_it_has_an_address_and_keeps_it() {
        let seen = Shared::default();
        let mut unscheduled = pod(&ns(), "Pending", false);
        unscheduled.status.as_mut().unwrap().pod_ip = None;
        pod_event(&seen, Event::Apply(unscheduled.clone()));
        assert_eq!(health(&seen), None);
        pod_event(&seen, Event::Apply(pod(&ns(), "Running", true)));
        assert_eq!(health(&seen), Some(Health::Healthy));
        let mut failed = unscheduled;
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        pod_event(&seen, Event::Apply(failed));
        let s = seen.read().unwrap();
        let o = &s.pods.values().next().unwrap().observed;
        assert_eq!(o.address, "10.0.0.9:3000");
        assert!(matches!(o.health, Health::Exited(_)));
    }

    #[test]
    fn a_pod_missing_from_a_new_list_went_away_while_unwatched() {
        let seen = Shared::default();
        pod_event(&seen, Event::Apply(pod(&ns(), "Running", true)));
        pod_event(&seen, Event::Init);
        pod_event(&seen, Event::InitDone);
        assert_eq!(
            health(&seen),
            Some(Health::Exited("pod gone while unwatched".into()))
        );
    }

    #[test]
    fn a_pod_outside_its_tenants_namespace_is_nobodys() {
        let seen = Shared::default();
        pod_event(
            &seen,
            Event::Apply(pod("tenant-someone-else", "Running", true)),
        );
        assert_eq!(health(&seen), None);
    }
}
