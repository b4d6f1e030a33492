//! The Pix webhook's HTTP side: what Efí posts when a charge is paid, and what it is told.
//!
//! Efí posts `{"pix":[{"endToEndId","txid","valor","horario",…}]}` to the registered URL with
//! `/pix` appended (both paths are served). Each entry becomes one [`Delivery`] whose id is the
//! payment's `endToEndId`, unique across the Pix system. They are handed to the service's
//! [`Deliver`] one by one, and Efí is answered 200 only once every one was taken; otherwise
//! 500, and Efí posts the whole notification again later. So a payment may arrive more than
//! once: the service deduplicates by the delivery id (billing's webhook table), as it does
//! for Stripe's events.
//!
//! Who may post is settled before this runs: the listener ([`super::listener`]) requires
//! Efí's client certificate during the TLS handshake, so no signature is checked here.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::pix::parse_amount;
use crate::domain::money::Currency;
use crate::payments::{Delivery, PaymentEvent};

/// Takes one delivery for billing (records it, deduplicated by id, and acts on it).
/// An error means it was not taken: Efí is answered 500 and posts again. The error is logged,
/// never sent to Efí.
pub type Deliver = Arc<dyn Fn(Delivery) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A notification is a few entries; Efí batches at most a few hundred.
const MAX_BODY: usize = 256 * 1024;
/// An `endToEndId` is 32 characters; anything much longer is not one.
const MAX_END_TO_END_ID: usize = 64;

#[derive(Deserialize)]
struct Notification {
    /// Absent in Efí's registration check (`{"evento":"teste_webhook"}`), which only needs
    /// a 200.
    #[serde(default)]
    pix: Vec<Received>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Received {
    end_to_end_id: String,
    /// Absent when the payment was made to the key without a charge.
    #[serde(default)]
    txid: Option<String>,
    valor: String,
    /// Present when the notification reports refunds of this payment.
    #[serde(default)]
    devolucoes: Vec<IgnoredAny>,
}

/// Why a body was refused with 400 (logged).
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("not a pix notification: {0}")]
    Json(#[from] serde_json::Error),
    #[error("entry {0}: endToEndId is empty or too long")]
    EndToEndId(usize),
    #[error("entry {0}: valor is not a decimal amount")]
    Amount(usize),
}

/// The deliveries a notification body holds.
///
/// A payment to one of our charges becomes `Paid` (its `txid` is the checkout's reference;
/// Efí knows no customer of ours, so `customer_id` is empty). An entry that only reports a
/// refund, or a payment made to the key without a charge, is a delivery with no events:
/// acknowledged, nothing for billing to do.
pub fn deliveries(body: &[u8]) -> Result<Vec<Delivery>, Malformed> {
    let notification: Notification = serde_json::from_slice(body)?;
    notification
        .pix
        .into_iter()
        .enumerate()
        .map(|(i, received)| {
            if received.end_to_end_id.is_empty() || received.end_to_end_id.len() > MAX_END_TO_END_ID
            {
                return Err(Malformed::EndToEndId(i));
            }
            let amount_minor = parse_amount(&received.valor).ok_or(Malformed::Amount(i))?;
            let events = match received.txid.filter(|t| !t.is_empty()) {
                Some(txid) if received.devolucoes.is_empty() => vec![PaymentEvent::Paid {
                    customer_id: String::new(),
                    reference: txid,
                    amount_minor,
                    currency: Currency::BRL.code().to_owned(),
                }],
                _ => Vec::new(),
            };
            Ok(Delivery {
                provider: "efi",
                id: received.end_to_end_id,
                events,
            })
        })
        .collect()
}

/// `POST /webhook` and `POST /webhook/pix`.
pub fn router(deliver: Deliver) -> Router {
    Router::new()
        .route("/webhook", post(receive))
        .route("/webhook/pix", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(deliver)
}

async fn receive(State(deliver): State<Deliver>, body: Bytes) -> StatusCode {
    let deliveries = match deliveries(&body) {
        Ok(deliveries) => deliveries,
        Err(e) => {
            tracing::warn!(error = %e, "efi webhook refused");
            return StatusCode::BAD_REQUEST;
        }
    };
    for delivery in deliveries {
        let id = delivery.id.clone();
        if let Err(e) = deliver(delivery).await {
            tracing::error!(delivery = %id, error = %e, "efi webhook not taken: efi will retry");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        tracing::info!(delivery = %id, "efi webhook taken");
    }
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refunds_and_payments_without_a_charge_are_deliveries_with_nothing_to_do() {
        let body = br#"{"pix":[
            {"endToEndId":"E1","txid":"t1","valor":"10.00","horario":"2026-01-01T00:00:00Z"},
            {"endToEndId":"E2","valor":"5.00","horario":"2026-01-01T00:00:00Z"},
            {"endToEndId":"E3","txid":"t3","valor":"7.00","devolucoes":[{"id":"D1","valor":"7.00"}]}
        ]}"#;
        let deliveries = deliveries(body).unwrap();
        let ids: Vec<_> = deliveries.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["E1", "E2", "E3"]);
        assert!(matches!(
            deliveries[0].events[..],
            [PaymentEvent::Paid {
                amount_minor: 1000,
                ..
            }]
        ));
        assert!(deliveries[1].events.is_empty());
        assert!(deliveries[2].events.is_empty());
    }

    #[test]
    fn an_entry_that_is_not_a_payment_refuses_the_whole_body() {
        let err = deliveries(br#"{"pix":[{"endToEndId":"E1","txid":"t","valor":"1.00"},{"endToEndId":"E2","txid":"t","valor":"x"}]}"#)
            .unwrap_err();
        assert!(matches!(err, Malformed::Amount(1)), "{err}");
    }
}
