//! The stand-in's watch: newline-delimited JSON events of one collection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::request::{Target, selects};
use super::{Change, Shared, status};

fn line(kind: &str, object: &Value) -> String {
    let mut s = json!({ "type": kind, "object": object }).to_string();
    s.push('\n');
    s
}

pub(super) async fn watch(
    shared: Arc<Shared>,
    target: Target,
    q: HashMap<String, String>,
) -> Response {
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(300u64);
    let bookmarks = matches!(
        q.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let from: Option<u64> = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && v.as_str() != "0")
        .and_then(|v| v.parse().ok());
    // Subscribed before reading the store: no change falls between the two.
    let mut live = shared.live.subscribe();
    let matches = {
        let target_resource = target.resource.clone();
        let target_ns = target.namespace.clone();
        move |c: &Change| {
            c.resource == target_resource
                && target_ns.as_ref().is_none_or(|ns| *ns == c.namespace)
                && selects(&selector, c.object["metadata"].get("labels"))
        }
    };
    let mut first = Vec::new();
    let mut last = {
        let store = shared.store.lock().await;
        if bookmarks {
            first.push(line(
                "BOOKMARK",
                &json!({
                    "kind": target.kind.kind, "apiVersion": target.kind.api_version,
                    "metadata": { "resourceVersion": store.rv.to_string() },
                }),
            ));
        }
        match from {
            Some(from) => {
                for c in store.changes.iter().filter(|c| c.rv > from && matches(c)) {
                    first.push(line(c.kind, &c.object));
                }
            }
            None => {
                for ((res, ns, _), o) in &store.objects {
                    let c = Change {
                        rv: 0,
                        resource: res.clone(),
                        namespace: ns.clone(),
                        kind: "ADDED",
                        object: o.clone(),
                    };
                    if matches(&c) {
                        first.push(line("ADDED", o));
                    }
                }
            }
        }
        store.rv
    };
    let (tx, rx) = futures::channel::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut tx = tx;
        use futures::SinkExt;
        for l in first {
            if tx.send(Ok(l)).await.is_err() {
                return;
            }
        }
        let end = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(end);
        loop {
            tokio::select! {
                () = &mut end => return,
                change = live.recv() => match change {
                    Ok(c) if c.rv > last && matches(&c) => {
                        last = c.rv;
                        if tx.send(Ok(line(c.kind, &c.object))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow: the client lists again, as after a real 410.
                        let expired = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": "Expired", "code": 410, "message": "too old resource version" });
                        let _ = tx.send(Ok(line("ERROR", &expired))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(rx))
        .unwrap_or_else(|_| {
            status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "response",
            )
        })
}
