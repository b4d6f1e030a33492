//! The public API edge, on the gateway's API port: gRPC calls for the other `tenantry.*`
//! services (and their HTTP shapes, `/api/tenants/{id}/<service>/...`) are authenticated here (the kit's verifier: access tokens and API keys),
//! rate-limited per tenant (the tenant's plan, as on the data plane), and forwarded over
//! HTTP/2 to the owning service, which still applies its own access policy. The service is told
//! the caller's address in `X-Forwarded-For` (after a trusted proxy's list; anyone else's
//! forwarding headers are dropped, as on the data plane). Upgrades (the orchestration feed's
//! WebSocket) go over HTTP/1.1 and are spliced: see `edge/upgrade.rs`.

mod upgrade;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::uri::{Authority, Scheme};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tenantry_kit::auth::Verifier;

use crate::limit::Decision;
use crate::snapshot::follow::Current;
use tenantry_kit::client_addr::TrustedProxies;

/// `tenant=127.0.0.1:7001,auth=127.0.0.1:7002`: where each service listens.
pub fn parse_services(value: &str) -> Result<BTreeMap<String, Authority>, String> {
    let mut out = BTreeMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, address) = pair
            .split_once('=')
            .ok_or_else(|| format!("gateway-services: {pair:?} is not name=host:port"))?;
        let authority = address
            .parse::<Authority>()
            .map_err(|e| format!("gateway-services: {address:?}: {e}"))?;
        out.insert(name.to_owned(), authority);
    }
    Ok(out)
}

pub struct Edge {
    verifier: Arc<Verifier>,
    snapshot: Current,
    cluster: Arc<crate::limit::Cluster>,
    client: Client<HttpConnector, Body>,
    trusted: Arc<TrustedProxies>,
}

/// Routes `/<service>/<method>` of every `tenantry.<name>.v1` service in `services` to it.
pub fn router(
    verifier: Arc<Verifier>,
    snapshot: Current,
    cluster: Arc<crate::limit::Cluster>,
    services: &BTreeMap<String, Authority>,
    trusted: Arc<TrustedProxies>,
) -> axum::Router {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(3)));
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector);
    let edge = Arc::new(Edge {
        verifier,
        snapshot,
        cluster,
        client,
        trusted,
    });
    let mut router = axum::Router::new();
    let Ok(set) = prost_types::FileDescriptorSet::decode(tenantry_proto::FILE_DESCRIPTOR_SET)
    else {
        return router;
    };
    for file in &set.file {
        let package = file.package();
        let Some(name) = package
            .strip_prefix("tenantry.")
            .and_then(|rest| rest.strip_suffix(".v1"))
        else {
            continue;
        };
        let Some(target) = services.get(name) else {
            continue;
        };
        for service in &file.service {
            let path = format!("/{package}.{}/{{*method}}", service.name());
            router = route(router, &path, &edge, target, Errors::Grpc);
        }
        // The service's HTTP shapes (the seed's `/api/tenants/{id}/billing/...`).
        let path = format!("/api/tenants/{{id}}/{name}/{{*rest}}");
        router = route(router, &path, &edge, target, Errors::Json);
        // Sync's seed shapes live outside that tree (`/api/v2/tenant-integrations/...`).
        if name == "sync" {
            for path in [SYNC_API, format!("{SYNC_API}/{{*rest}}").as_str()] {
                router = route(router, path, &edge, target, Errors::Json);
            }
        }
    }
    router
}

/// The seed's integration endpoints, served by the sync service.
const SYNC_API: &str = "/api/v2/tenant-integrations";

/// How the edge's own refusals are written: as gRPC statuses, or as the HTTP API's JSON.
#[derive(Clone, Copy)]
enum Errors {
    Grpc,
    Json,
}

impl Errors {
    fn render(self, error: tenantry_kit::ApiError) -> Response {
        match self {
            Self::Grpc => tonic::Status::from(error).into_http::<Body>(),
            Self::Json => axum::response::IntoResponse::into_response(error),
        }
    }
}

fn route(
    router: axum::Router,
    path: &str,
    edge: &Arc<Edge>,
    target: &Authority,
    errors: Errors,
) -> axum::Router {
    let (edge, target) = (edge.clone(), target.clone());
    router.route(
        path,
        axum::routing::any(move |request: Request| {
            let (edge, target) = (edge.clone(), target.clone());
            async move { forward(State(edge), target, request, errors).await }
        }),
    )
}

async fn forward(
    State(edge): State<Arc<Edge>>,
    target: Authority,
    request: Request,
    errors: Errors,
) -> Response {
    let bearer = tenantry_kit::auth::bearer(request.headers()).map(str::to_owned);
    // Calls without a token go on: the service decides (sign-up and login are public).
    if let Some(token) = bearer {
        let caller = match edge.verifier.verify(&token).await {
            Ok(c) => c,
            Err(e) => return errors.render(e),
        };
        if let Some(tenant) = caller.tenant_id {
            let entry = edge.snapshot.load().tenants.get(&tenant).cloned();
            if let Some(entry) = entry
                && let Decision::Deny { retry_after } = edge.cluster.check(&entry.limiter).await
            {
                entry.metrics().rate_limited.increment(1);
                return errors.render(tenantry_kit::ApiError::ResourceExhausted(format!(
                    "rate limited; retry in {} ms",
                    retry_after.as_millis().max(1)
                )));
            }
        }
    }
    let (mut parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| edge.trusted.contains(ip));
    crate::proxy::forward::forward_for(&mut parts.headers, peer, trusted);
    // A WebSocket (the orchestration feed) is HTTP/1.1: see `upgrade`.
    if matches!(errors, Errors::Json) && crate::proxy::forward::is_upgrade(&parts.headers) {
        return match upgrade::forward(Request::from_parts(parts, body), &target).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(error = %e, "edge: upgrade not forwarded");
                errors.render(tenantry_kit::ApiError::Unavailable(e.to_string()))
            }
        };
    }
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(target);
    let Ok(uri) = http::Uri::from_parts(uri) else {
        return errors.render(tenantry_kit::ApiError::Internal(
            "bad upstream address".into(),
        ));
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_2;
    match edge.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new),
        Err(e) => {
            tracing::warn!(error = %e, "edge: service unreachable");
            errors.render(tenantry_kit::ApiError::Unavailable(e.to_string()))
        }
    }
}
