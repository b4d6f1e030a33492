//! `POST /webhooks/stripe`: Stripe's events, verified on the raw body (`Stripe-Signature`,
//! HMAC-SHA256 with the endpoint's secret, 300 s tolerance) before anything is read from
//! them. A forgery, a stale or unsigned delivery gets 400 and changes nothing; a delivery
//! billing could not act on gets 500, so Stripe retries it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::payments::service::Payments;
use crate::payments::stripe::{
    DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER, parse_event, verify_signature,
};

/// Stripe's events are small; anything larger is not one.
const MAX_BODY: usize = 512 * 1024;

#[derive(Clone)]
struct Stripe {
    payments: Arc<Payments>,
    secret: Arc<str>,
}

/// The webhook routes; none when no signing secret is configured (nothing could verify).
pub fn router(payments: Arc<Payments>, secret: &str) -> Router {
    if secret.is_empty() {
        return Router::new();
    }
    Router::new()
        .route("/webhooks/stripe", post(stripe))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Stripe {
            payments,
            secret: secret.into(),
        })
}

async fn stripe(
    State(s): State<Stripe>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    // The wall clock, not billing's (which tests move across months): the tolerance is
    // about how long ago Stripe signed, in real time.
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify_signature(header, &body, &s.secret, now, DEFAULT_TOLERANCE_SECS) {
        tracing::warn!(error = %e, "refused a Stripe webhook");
        return (StatusCode::BAD_REQUEST, "invalid signature");
    }
    let delivery = match parse_event(&body) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "a signed Stripe event billing cannot read");
            return (StatusCode::BAD_REQUEST, "unreadable event");
        }
    };
    match s.payments.deliver(delivery).await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "acting on a Stripe event failed; Stripe will retry");
            (StatusCode::INTERNAL_SERVER_ERROR, "retry later")
        }
    }
}
