//! A stand-in for the Kubernetes API server (no cluster can run here), speaking its REST and
//! watch wire format for exactly the resources the `kubernetes` runtime uses: namespaces,
//! pods, services, secrets, resource quotas, limit ranges (core `v1`), deployments (`apps/v1`),
//! horizontal pod autoscalers (`autoscaling/v2`) and network policies
//! (`networking.k8s.io/v1`). No discovery is needed: the runtime uses typed objects.
//!
//! - **Server-side apply**: `PATCH` with `Content-Type: application/apply-patch+yaml` and the
//!   `fieldManager` (required) and `force` query parameters. The applied object replaces the
//!   object's fields except `status` and the server's metadata (uid, creationTimestamp,
//!   resourceVersion, generation, managedFields); when nothing changes, nothing is written and
//!   the `resourceVersion` stays (as a real server does for an unchanged apply). This does
//!   not merge several managers' fields: our runtime is the only manager of these objects.
//! - `GET` of an object or a collection (all namespaces or one; `labelSelector` with `k`,
//!   `!k`, `k=v`, `k==v`, `k!=v`), `DELETE` of an object (answers the object as it was).
//! - **Watch**: `GET <collection>?watch=1` streams newline-delimited JSON
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object":…}` of the changes after the given
//!   `resourceVersion` (all objects as `ADDED` first when it is absent or "0"), a `BOOKMARK`
//!   first when `allowWatchBookmarks` is set, and ends after `timeoutSeconds`.
//! - Errors are `Status` objects with the HTTP code (404 `NotFound`, 415, 422 …).
//!
//! The test plays the controllers: it creates pods for a Deployment, marks them ready,
//! deletes them and sets an HPA's status, each a watch event like the real ones.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast};
use uuid::Uuid;

mod request;
mod watch;

use request::{Target, parse_path, query, selects};

/// `(resource, namespace, name)`; a cluster-scoped object has namespace "".
type Key = (String, String, String);

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    resource: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

/// One server-side apply request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyRequest {
    pub path: String,
    pub content_type: String,
    pub field_manager: String,
    pub force: bool,
}

#[derive(Default)]
struct Store {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    changes: Vec<Change>,
    applies: Vec<ApplyRequest>,
}

struct Shared {
    store: Mutex<Store>,
    live: broadcast::Sender<Change>,
}

pub struct KubeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    /// Holds its kubeconfig; deleted with it.
    dir: PathBuf,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message.into(), "reason": reason,
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

/// An object without what the server owns, to compare what was applied.
fn applied_part(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "managedFields",
        ] {
            meta.remove(k);
        }
    }
    o
}

impl Store {
    fn record(
        &mut self,
        live: &broadcast::Sender<Change>,
        key: &Key,
        kind: &'static str,
        object: Value,
    ) {
        let change = Change {
            rv: self.rv,
            resource: key.0.clone(),
            namespace: key.1.clone(),
            kind,
            object,
        };
        self.changes.push(change.clone());
        let _ = live.send(change);
    }

    /// Writes `object` at `key` as a new version (creating it when absent); keeps the
    /// server's metadata of the old one.
    fn write(&mut self, live: &broadcast::Sender<Change>, key: Key, mut object: Value) -> Value {
        self.rv += 1;
        let old = self.objects.get(&key).cloned();
        let rv = json!(self.rv.to_string());
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.insert("resourceVersion".into(), rv);
            match &old {
                Some(old) => {
                    for k in ["uid", "creationTimestamp"] {
                        meta.insert(k.into(), old["metadata"][k].clone());
                    }
                    let spec_changed = old.get("spec") != object.get("spec");
                    let generation = old["metadata"]["generation"].as_u64().unwrap_or(1)
                        + u64::from(spec_changed);
                    object["metadata"]["generation"] = json!(generation);
                }
                None => {
                    if meta.get("uid").is_none() {
                        meta.insert("uid".into(), json!(Uuid::new_v4().to_string()));
                    }
                    meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
                    object["metadata"]["generation"] = json!(1);
                }
            }
        }
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        self.objects.insert(key.clone(), object.clone());
        self.record(live, &key, kind, object.clone());
        object
    }

    fn delete(&mut self, live: &broadcast::Sender<Change>, key: &Key) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(live, key, "DELETED", object.clone());
        Some(object)
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(target) = parse_path(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no such path {}", uri.path()),
        );
    };
    let q = query(&uri);
    match (&method, &target.name) {
        (&Method::GET, None)
            if matches!(q.get("watch").map(String::as_str), Some("1" | "true")) =>
        {
            watch::watch(shared, target, q).await
        }
        (&Method::GET, None) => list(&shared, &target, &q).await,
        (&Method::GET, Some(name)) => {
            let key = (
                target.resource.clone(),
                target.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            match shared.store.lock().await.objects.get(&key) {
                Some(o) => axum::Json(o.clone()).into_response(),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name:?} not found", target.resource),
                ),
            }
        }
        (&Method::PATCH, Some(name)) => {
            apply(&shared, &target, name, &q, &headers, &uri, &body).await
        }
        (&Method::DELETE, Some(name)) => {
            let key = (
                target.resource.clone(),
                target.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            let mut store = shared.store.lock().await;
            match store.delete(&shared.live, &key) {
                Some(o) => axum::Json(o).into_response(),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name:?} not found", target.resource),
                ),
            }
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} {}", uri.path()),
        ),
    }
}

async fn list(shared: &Shared, target: &Target, q: &HashMap<String, String>) -> Response {
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let store = shared.store.lock().await;
    let items: Vec<Value> = store
        .objects
        .iter()
        .filter(|((res, ns, _), o)| {
            *res == target.resource
                && target.namespace.as_ref().is_none_or(|want| want == ns)
                && selects(&selector, o["metadata"].get("labels"))
        })
        .map(|(_, o)| o.clone())
        .collect();
    axum::Json(json!({
        "kind": format!("{}List", target.kind.kind),
        "apiVersion": target.kind.api_version,
        "metadata": { "resourceVersion": store.rv.to_string() },
        "items": items,
    }))
    .into_response()
}

async fn apply(
    shared: &Shared,
    target: &Target,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if content_type != "application/apply-patch+yaml" {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the stand-in takes server-side apply only, not {content_type:?}"),
        );
    }
    let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "fieldManager is required for apply requests",
        );
    };
    // YAML is a superset of JSON; the client sends JSON, and this stand-in reads only that.
    let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the stand-in reads JSON apply bodies only",
        );
    };
    let ns = target.namespace.clone().unwrap_or_default();
    let fits = object["kind"] == target.kind.kind
        && object["apiVersion"] == target.kind.api_version
        && object["metadata"]["name"] == name
        && (ns.is_empty()
            || object["metadata"]["namespace"]
                .as_str()
                .is_none_or(|n| n == ns));
    if !fits {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "kind, apiVersion, name or namespace do not match the path",
        );
    }
    if target.kind.namespaced {
        object["metadata"]["namespace"] = json!(ns);
    }
    let mut store = shared.store.lock().await;
    store.applies.push(ApplyRequest {
        path: uri.path().to_owned(),
        content_type,
        field_manager: manager.clone(),
        force: q.get("force").map(String::as_str) == Some("true"),
    });
    if target.kind.namespaced
        && !store
            .objects
            .contains_key(&("namespaces".to_owned(), String::new(), ns.clone()))
    {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces {ns:?} not found"),
        );
    }
    let key = (target.resource.clone(), ns, name.to_owned());
    if let Some(old) = store.objects.get(&key) {
        if applied_part(old) == applied_part(&object) {
            return axum::Json(old.clone()).into_response();
        }
        if let Some(s) = old.get("status") {
            object["status"] = s.clone();
        }
    }
    object["metadata"]["managedFields"] = json!([{
        "manager": manager, "operation": "Apply", "apiVersion": target.kind.api_version,
    }]);
    let written = store.write(&shared.live, key, object);
    axum::Json(written).into_response()
}

impl KubeApi {
    pub async fn start() -> Self {
        let (live, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            live,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let dir =
            std::env::temp_dir().join(format!("tenantry-kube-api-{}", Uuid::now_v7().simple()));
        Self {
            addr,
            shared,
            task,
            dir,
        }
    }

    /// A kubeconfig pointing at the stand-in (plain HTTP on loopback, no credentials).
    pub fn kubeconfig(&self) -> PathBuf {
        std::fs::create_dir_all(&self.dir).expect("the kubeconfig's directory");
        let path = self.dir.join("kubeconfig.yaml");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://{}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: nobody\n    namespace: default\nusers:\n- name: nobody\n  user: {{}}\ncurrent-context: stand-in\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    pub async fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        self.shared.store.lock().await.objects.get(&key).cloned()
    }

    /// Every object of a resource, all namespaces: `(namespace, object)`.
    pub async fn all(&self, resource: &str) -> Vec<(String, Value)> {
        self.shared
            .store
            .lock()
            .await
            .objects
            .iter()
            .filter(|((r, _, _), _)| r == resource)
            .map(|((_, ns, _), o)| (ns.clone(), o.clone()))
            .collect()
    }

    /// Every object: `(resource, namespace, name)` → its `resourceVersion`.
    pub async fn versions(&self) -> BTreeMap<Key, String> {
        self.shared
            .store
            .lock()
            .await
            .objects
            .iter()
            .map(|(k, o)| {
                let rv = o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (k.clone(), rv)
            })
            .collect()
    }

    pub async fn applies(&self) -> Vec<ApplyRequest> {
        self.shared.store.lock().await.applies.clone()
    }

    /// How many apply requests it has received.
    pub async fn apply_count(&self) -> usize {
        self.shared.store.lock().await.applies.len()
    }

    /// The object at an apply request's path, as a client would apply it again (without
    /// `status` and the server's metadata); `None` if there is none.
    pub async fn applied_at(&self, path: &str) -> Option<Value> {
        let target = parse_path(path)?;
        let key = (
            target.resource,
            target.namespace.unwrap_or_default(),
            target.name?,
        );
        let store = self.shared.store.lock().await;
        store.objects.get(&key).map(applied_part)
    }

    /// The Deployment controller's part: a pod of Deployment `name`, from its template, with
    /// an IP and not ready yet. Returns the pod's name and uid.
    pub async fn run_pod(&self, namespace: &str, deployment: &str, ip: &str) -> (String, String) {
        let mut store = self.shared.store.lock().await;
        let key = (
            "deployments".to_owned(),
            namespace.to_owned(),
            deployment.to_owned(),
        );
        let d = store
            .objects
            .get(&key)
            .cloned()
            .expect("the deployment exists");
        let template = &d["spec"]["template"];
        let uid = Uuid::new_v4().to_string();
        let name = format!("{deployment}-{}", &uid[..8]);
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": namespace, "uid": uid,
                "labels": template["metadata"]["labels"],
                "annotations": template["metadata"]["annotations"],
            },
            "spec": template["spec"],
            "status": {
                "phase": "Running", "podIP": ip,
                "conditions": [{ "type": "Ready", "status": "False" }],
            },
        });
        let key = ("pods".to_owned(), namespace.to_owned(), name.clone());
        store.write(&self.shared.live, key, pod);
        (name, uid)
    }

    /// A pod written as given (a controller, or anyone with access to the namespace).
    pub async fn put_pod(&self, pod: Value) {
        let key = (
            "pods".to_owned(),
            pod["metadata"]["namespace"]
                .as_str()
                .expect("a pod's namespace")
                .to_owned(),
            pod["metadata"]["name"]
                .as_str()
                .expect("a pod's name")
                .to_owned(),
        );
        self.shared
            .store
            .lock()
            .await
            .write(&self.shared.live, key, pod);
    }

    /// The kubelet's part: the pod's `Ready` condition.
    pub async fn set_ready(&self, namespace: &str, pod: &str, ready: bool) {
        self.set_status(
            "pods",
            namespace,
            pod,
            |s| {
                s["conditions"] =
                    json!([{ "type": "Ready", "status": if ready { "True" } else { "False" } }])
            },
        )
        .await;
    }

    /// A controller's write of an object's status.
    pub async fn set_status(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let mut store = self.shared.store.lock().await;
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        let mut object = store.objects.get(&key).cloned().expect("the object exists");
        if object.get("status").is_none() {
            object["status"] = json!({});
        }
        change(&mut object["status"]);
        store.write(&self.shared.live, key, object);
    }

    /// A graceful deletion begun: the pod has its `deletionTimestamp` and is terminating.
    pub async fn terminate(&self, namespace: &str, pod: &str) {
        let mut store = self.shared.store.lock().await;
        let key = ("pods".to_owned(), namespace.to_owned(), pod.to_owned());
        let mut object = store.objects.get(&key).cloned().expect("the pod exists");
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:10Z");
        store.write(&self.shared.live, key, object);
    }

    /// A deletion (a pod's eviction, an operator's `kubectl delete`).
    pub async fn delete(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        self.shared
            .store
            .lock()
            .await
            .delete(&self.shared.live, &key)
    }
}
