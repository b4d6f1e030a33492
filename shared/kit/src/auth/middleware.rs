//! The gRPC request edge of every service: a span per call (continuing the caller's trace),
//! request metrics, and authentication against the service's [`RpcPolicy`].

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::{Access, Role, RpcPolicy, TenantDirectory, Verifier};
use crate::ApiError;

/// The `rpc` label of every path the policy does not declare.
pub const UNKNOWN_RPC: &str = "unknown";

/// Shared state of [`authenticate`].
#[derive(Clone)]
pub struct AuthState {
    pub verifier: Arc<Verifier>,
    pub policy: Arc<RpcPolicy>,
    /// Tenants whose members may not write now (suspended, being decommissioned).
    pub tenants: Arc<TenantDirectory>,
}

/// Outermost: opens the request span with the caller's trace as parent and records metrics.
///
/// Metrics are labelled with the RPC as the policy declares it; every path the policy does not
/// know shares the label `unknown`, so requests for made-up paths cannot grow the metric
/// series without bound (the span still names the path).
pub async fn trace(State(policy): State<Arc<RpcPolicy>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let method = policy.declared(path).unwrap_or(UNKNOWN_RPC).to_owned();
    let span = tracing::info_span!("grpc", rpc = %path, tenant_id = tracing::field::Empty, code = tracing::field::Empty);
    crate::telemetry::set_parent_from_headers(&span, request.headers());
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    // Unary errors travel in headers (trailers-only responses); success is 0.
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_owned();
    span.record("code", code.as_str());
    metrics::counter!("tenantry_grpc_requests_total", "rpc" => method.clone(), "code" => code)
        .increment(1);
    metrics::histogram!("tenantry_grpc_request_duration_seconds", "rpc" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Denies what the policy does not allow; puts the verified [`super::TenantContext`] into the
/// request.
pub async fn authenticate(
    State(auth): State<AuthState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    match auth.policy.lookup(path) {
        Some(Access::Public) => next.run(request).await,
        None => reject(ApiError::PermissionDenied(format!(
            "{path} is not declared in the access policy"
        ))),
        Some(Access::Role(required)) => {
            let Some(token) = super::bearer(request.headers()) else {
                return reject(ApiError::Unauthenticated("missing bearer token".into()));
            };
            let context = match auth.verifier.verify(token).await {
                Ok(c) => c,
                Err(e) => return reject(e),
            };
            if !context.role.satisfies(required) {
                return reject(ApiError::PermissionDenied(format!(
                    "requires role {required}"
                )));
            }
            // A write (more than a viewer may do) by a member of a tenant that is not in good
            // standing; platform admins act on such tenants (they reactivate them).
            if required.satisfies(Role::Member)
                && !context.is_platform_admin()
                && let Some(tenant) = context.tenant_id
                && let Some(why) = auth.tenants.refuses_writes(tenant)
            {
                return reject(ApiError::FailedPrecondition(why));
            }
            if let Some(tenant) = context.tenant_id {
                tracing::Span::current().record("tenant_id", tracing::field::display(tenant));
            }
            request.extensions_mut().insert(context);
            next.run(request).await
        }
    }
}

fn reject(error: ApiError) -> Response {
    tonic::Status::from(error).into_http::<Body>()
}
