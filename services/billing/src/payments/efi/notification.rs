//! Boleto payments: Efí's charges API notifications.
//!
//! A charge created with `metadata.notification_url` makes Efí post to that URL whenever its
//! status changes: a form body with one field, `notification=<token>`, and nothing else. The
//! token is not the news; billing asks Efí what it means (`GET /v1/notification/{token}`,
//! with its own credentials over mutual TLS) and gets the charge's status history. So a
//! forged post can at most make billing ask Efí about a token Efí does not know: nothing
//! comes of it, and no signature is needed.
//!
//! A change to `paid` (or `settled`, a payment confirmed by hand in Efí's dashboard) becomes
//! one [`Delivery`] whose id names the charge, deduplicated like every delivery: Efí posts the
//! same token on every change of the charge, and each answer repeats the whole history.

use reqwest::Method;
use serde::Deserialize;

use super::client::{Api, Http, parse, refused};
use crate::domain::money::Currency;
use crate::payments::{Delivery, PaymentError, PaymentEvent};

/// Efí's tokens are UUIDs; anything much longer, or with characters outside a token's,
/// is not one (and never reaches a URL path).
const MAX_TOKEN: usize = 64;

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    data: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(rename = "type")]
    kind: String,
    status: Status,
    identifiers: Identifiers,
    /// In cents, on a change to `paid`.
    #[serde(default)]
    value: Option<i64>,
}

#[derive(Deserialize)]
struct Status {
    current: String,
}

#[derive(Deserialize)]
struct Identifiers {
    #[serde(default)]
    charge_id: Option<i64>,
}

/// Whether `token` looks like one of Efí's (and so may go into a URL path).
pub fn well_formed(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// What `token` stands for, as deliveries (one per charge paid in its history); `None`
/// when Efí knows no such token (a forgery, or a token of another Efí account).
pub async fn deliveries(http: &Http, token: &str) -> Result<Option<Vec<Delivery>>, PaymentError> {
    const WHAT: &str = "boleto notification";
    let (status, body) = http
        .send::<()>(
            Api::Charges,
            Method::GET,
            &format!("/v1/notification/{token}"),
            None,
            WHAT,
        )
        .await?;
    if matches!(status.as_u16(), 400 | 404 | 422) {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(refused(WHAT, status, &body));
    }
    Ok(Some(paid(parse(WHAT, &body)?)))
}

fn paid(reply: Reply) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    for change in reply.data {
        let Some(charge) = change.identifiers.charge_id else {
            continue;
        };
        if change.kind != "charge" || !matches!(change.status.current.as_str(), "paid" | "settled")
        {
            continue;
        }
        let id = format!("charge-{charge}-paid");
        // A charge settled by hand after it was paid is the same payment.
        if out.iter().any(|d| d.id == id) {
            continue;
        }
        out.push(Delivery {
            provider: "efi",
            id,
            events: vec![PaymentEvent::Paid {
                customer_id: String::new(),
                reference: charge.to_string(),
                amount_minor: change.value.unwrap_or(0),
                currency: Currency::BRL.code().to_owned(),
            }],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_looks_like_a_token_reaches_a_path() {
        assert!(well_formed("09027955-5e06-4ff0-a9c7-46b47b8f1b27"));
        assert!(!well_formed("../../v1/charge/1"));
        assert!(!well_formed("abc?x=1"));
        assert!(!well_formed(""));
        assert!(!well_formed(&"a".repeat(65)));
    }

    #[test]
    fn each_paid_charge_is_one_delivery_whatever_the_history_repeats() {
        let reply: Reply = serde_json::from_str(
            r#"{"code":200,"data":[
                {"id":1,"type":"charge","custom_id":null,"status":{"current":"new","previous":null},"identifiers":{"charge_id":1002}},
                {"id":2,"type":"charge","custom_id":null,"status":{"current":"waiting","previous":"new"},"identifiers":{"charge_id":1002}},
                {"id":3,"type":"charge","custom_id":null,"status":{"current":"paid","previous":"waiting"},"identifiers":{"charge_id":1002},"value":49900},
                {"id":4,"type":"charge","custom_id":null,"status":{"current":"settled","previous":"paid"},"identifiers":{"charge_id":1002}},
                {"id":5,"type":"subscription","custom_id":null,"status":{"current":"paid","previous":"active"},"identifiers":{"subscription_id":7}}
            ]}"#,
        )
        .unwrap();
        let deliveries = paid(reply);
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].id, "charge-1002-paid");
        assert_eq!(
            deliveries[0].events,
            vec![PaymentEvent::Paid {
                customer_id: String::new(),
                reference: "1002".into(),
                amount_minor: 49900,
                currency: "BRL".into(),
            }]
        );
    }
}
