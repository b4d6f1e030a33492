//! Server-side apply and delete of the objects of [`manifests`](super::manifests).
//!
//! Every object is applied whole with our field manager and `force`: the orchestration
//! service is the one owner of these objects' fields, so a conflict (someone edited a field
//! by hand) is settled in favour of the log. Applying the same object again is a no-op on
//! the server (same `resourceVersion`); on top of that the runtime remembers what it applied
//! and sends only what changed ([`Applied`]).

use std::collections::HashMap;
use std::fmt::Debug;

use tokio::sync::Mutex;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::manifests::{DeploymentObjects, MANAGER, TenantObjects, secret_name};

/// What was last applied, per object (`kind/namespace/name` → its JSON), so an unchanged
/// object is not sent again every pass. Forgotten for an object the watch saw deleted.
#[derive(Debug, Default)]
pub struct Applied {
    objects: HashMap<String, String>,
}

impl Applied {
    /// Forgets the `kind` object `namespace/name` (one deleted behind our back).
    pub fn forget_named(&mut self, kind: &str, namespace: &str, name: &str) {
        self.objects.remove(&format!("{kind}/{namespace}/{name}"));
    }
}

fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}/{}/{}",
        K::kind(&()),
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

fn params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

/// Applies a namespaced object unless it is what was applied last.
async fn namespaced<K>(
    client: &Client,
    applied: &Mutex<Applied>,
    object: &K,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let key = key(object);
    let body = serde_json::to_string(object).map_err(kube::Error::SerdeError)?;
    if applied.lock().await.objects.get(&key) == Some(&body) {
        return Ok(false);
    }
    let meta = object.meta();
    let api: Api<K> = Api::namespaced(client.clone(), meta.namespace.as_deref().unwrap_or(""));
    api.patch(
        meta.name.as_deref().unwrap_or(""),
        &params(),
        &Patch::Apply(object),
    )
    .await?;
    applied.lock().await.objects.insert(key, body);
    Ok(true)
}

/// Deletes a namespaced object; one already gone is fine.
async fn delete<K>(client: &Client, namespace: &str, name: &str) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Applies a tenant's namespace and its namespace-wide objects; how many were sent.
pub async fn tenant(
    client: &Client,
    applied: &Mutex<Applied>,
    objects: &TenantObjects,
) -> Result<usize, kube::Error> {
    let mut sent = 0;
    let key = key(&objects.namespace);
    let body = serde_json::to_string(&objects.namespace).map_err(kube::Error::SerdeError)?;
    if applied.lock().await.objects.get(&key) != Some(&body) {
        let api: Api<Namespace> = Api::all(client.clone());
        let name = objects.namespace.metadata.name.as_deref().unwrap_or("");
        api.patch(name, &params(), &Patch::Apply(&objects.namespace))
            .await?;
        applied.lock().await.objects.insert(key, body);
        sent += 1;
    }
    sent += usize::from(namespaced(client, applied, &objects.quota).await?);
    sent += usize::from(namespaced(client, applied, &objects.limits).await?);
    sent += usize::from(namespaced(client, applied, &objects.network).await?);
    Ok(sent)
}

/// Applies a deployment's objects (the Service first, so a pod is reachable once ready);
/// an autoscaler no longer wanted is deleted. How many were sent.
pub async fn deployment(
    client: &Client,
    applied: &Mutex<Applied>,
    objects: &DeploymentObjects,
) -> Result<usize, kube::Error> {
    let meta = &objects.deployment.metadata;
    let (ns, name) = (
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or(""),
    );
    let mut sent = usize::from(namespaced(client, applied, &objects.service).await?);
    // The Secret before the Deployment whose pods read it.
    sent += match &objects.secret {
        Some(secret) => usize::from(namespaced(client, applied, secret).await?),
        None => usize::from(absent::<Secret>(client, applied, ns, &secret_name(name)).await?),
    };
    sent += usize::from(namespaced(client, applied, &objects.deployment).await?);
    sent += match &objects.autoscaler {
        Some(hpa) => usize::from(namespaced(client, applied, hpa).await?),
        None => usize::from(absent::<HorizontalPodAutoscaler>(client, applied, ns, name).await?),
    };
    Ok(sent)
}

/// Deletes an object that should not exist, once: a marker remembers it is known to be
/// absent, so later passes send nothing. Whether a request was sent.
async fn absent<K>(
    client: &Client,
    applied: &Mutex<Applied>,
    namespace: &str,
    name: &str,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let key = format!("{}/{namespace}/{name}", K::kind(&()));
    let known_absent = applied.lock().await.objects.get(&key).map(String::as_str) == Some("");
    if known_absent {
        return Ok(false);
    }
    delete::<K>(client, namespace, name).await?;
    applied.lock().await.objects.insert(key, String::new());
    Ok(true)
}

/// Deletes a decommissioned deployment's objects (its pods go with its Deployment).
pub async fn remove(
    client: &Client,
    applied: &Mutex<Applied>,
    namespace: &str,
    name: &str,
) -> Result<usize, kube::Error> {
    let marker = format!("removed/{namespace}/{name}");
    if applied.lock().await.objects.contains_key(&marker) {
        return Ok(0);
    }
    let mut sent = 0;
    sent += usize::from(delete::<HorizontalPodAutoscaler>(client, namespace, name).await?);
    sent += usize::from(delete::<Deployment>(client, namespace, name).await?);
    sent += usize::from(delete::<Service>(client, namespace, name).await?);
    let secret = secret_name(name);
    sent += usize::from(delete::<Secret>(client, namespace, &secret).await?);
    let mut applied = applied.lock().await;
    applied.forget_named("Secret", namespace, &secret);
    for kind in ["HorizontalPodAutoscaler", "Deployment", "Service"] {
        applied.forget_named(kind, namespace, name);
    }
    applied.objects.insert(marker, String::new());
    Ok(sent)
}
