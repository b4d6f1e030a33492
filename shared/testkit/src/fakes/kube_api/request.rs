//! The stand-in's reading of a request: which resource a path names, its query, and label
//! selectors.

use std::collections::HashMap;

use axum::http::Uri;
use serde_json::Value;

/// A resource of the table: its kind, apiVersion and whether it lives in a namespace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kind {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespaced: bool,
}

pub(super) fn kind_of(group_version: &str, resource: &str) -> Option<Kind> {
    let (kind, namespaced) = match (group_version, resource) {
        ("v1", "namespaces") => ("Namespace", false),
        ("v1", "pods") => ("Pod", true),
        ("v1", "services") => ("Service", true),
        ("v1", "secrets") => ("Secret", true),
        ("v1", "resourcequotas") => ("ResourceQuota", true),
        ("v1", "limitranges") => ("LimitRange", true),
        ("apps/v1", "deployments") => ("Deployment", true),
        ("autoscaling/v2", "horizontalpodautoscalers") => ("HorizontalPodAutoscaler", true),
        ("networking.k8s.io/v1", "networkpolicies") => ("NetworkPolicy", true),
        _ => return None,
    };
    let api_version = match group_version {
        "v1" => "v1",
        "apps/v1" => "apps/v1",
        "autoscaling/v2" => "autoscaling/v2",
        _ => "networking.k8s.io/v1",
    };
    Some(Kind {
        kind,
        api_version,
        namespaced,
    })
}

pub(super) fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `labels` satisfy a label selector.
pub(super) fn selects(selector: &str, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .all(|req| {
            if let Some((k, v)) = req.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                get(k.trim()) == Some(v.trim())
            } else if let Some(k) = req.strip_prefix('!') {
                get(k.trim()).is_none()
            } else {
                get(req).is_some()
            }
        })
}

/// What a path names: a collection (in one namespace or all) or one object.
pub(super) struct Target {
    pub resource: String,
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

pub(super) fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (resource, namespace, name) = match rest {
        [res] => (*res, None, None),
        ["namespaces", name] => ("namespaces", None, Some(*name)),
        ["namespaces", ns, res] => (*res, Some(*ns), None),
        ["namespaces", ns, res, name] => (*res, Some(*ns), Some(*name)),
        _ => return None,
    };
    let kind = kind_of(&gv, resource)?;
    // A namespaced object is named in its namespace; a cluster-scoped one never is.
    let fits = !matches!(
        (kind.namespaced, namespace.is_some(), name.is_some()),
        (true, false, true) | (false, true, _)
    );
    if !fits {
        return None;
    }
    Some(Target {
        resource: resource.to_owned(),
        kind,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
    })
}
