//! The payment providers' webhooks on the service's port:
//! - `POST /webhooks/stripe`: Stripe's events, verified on the raw body (`Stripe-Signature`,
//!   HMAC-SHA256 with the endpoint's secret, 300 s tolerance) before anything is read from
//!   them. A forgery, a stale or unsigned delivery gets 400 and changes nothing.
//! - `POST /webhooks/efi/charges`: Efí's boleto notifications (`notification=<token>`),
//!   whose meaning billing asks of Efí itself (`payments::efi::notification`); a token Efí
//!   does not know gets 400 and changes nothing.
//!
//! A delivery billing could not act on gets 500, so the provider retries it. (Efí's Pix
//! webhook has a listener of its own: it requires Efí's client certificate.)

use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::payments::efi::EfiClient;
use crate::payments::efi::notification::well_formed;
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

/// The webhook routes of the providers configured: Stripe's when it has a signing secret
/// (nothing could verify without), Efí's charges notifications when Efí is set up.
pub fn router(payments: Arc<Payments>, secret: &str, efi: Option<Arc<EfiClient>>) -> Router {
    let mut router = Router::new();
    if !secret.is_empty() {
        router = router.merge(
            Router::new()
                .route("/webhooks/stripe", post(stripe))
                .with_state(Stripe {
                    payments: payments.clone(),
                    secret: secret.into(),
                }),
        );
    }
    if let Some(efi) = efi {
        router = router.merge(
            Router::new()
                .route("/webhooks/efi/charges", post(efi_charges))
                .with_state(Efi { payments, efi }),
        );
    }
    router.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
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

#[derive(Clone)]
struct Efi {
    payments: Arc<Payments>,
    efi: Arc<EfiClient>,
}

/// Efí's notification body: the token alone.
#[derive(serde::Deserialize)]
struct Notification {
    notification: String,
}

async fn efi_charges(
    State(s): State<Efi>,
    Form(notice): Form<Notification>,
) -> (StatusCode, &'static str) {
    if !well_formed(&notice.notification) {
        return (StatusCode::BAD_REQUEST, "not a notification token");
    }
    let deliveries = match s.efi.boleto_notification(&notice.notification).await {
        Ok(Some(deliveries)) => deliveries,
        Ok(None) => {
            tracing::warn!("a boleto notification with a token Efí does not know");
            return (StatusCode::BAD_REQUEST, "unknown notification");
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a boleto notification failed; Efí will retry");
            return (StatusCode::INTERNAL_SERVER_ERROR, "retry later");
        }
    };
    for delivery in deliveries {
        if let Err(e) = s.payments.deliver(delivery).await {
            tracing::error!(error = %e, "acting on a boleto payment failed; Efí will retry");
            return (StatusCode::INTERNAL_SERVER_ERROR, "retry later");
        }
    }
    (StatusCode::OK, "ok")
}
