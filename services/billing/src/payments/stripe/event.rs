//! A verified Stripe event (`{"id", "type", "data": {"object"}}`) turned into what billing
//! acts on. Only the fields used are read, so additions in newer API versions pass through.

use serde_json::Value;
use uuid::Uuid;

use super::PROVIDER;
use crate::payments::{Delivery, PaymentEvent};

/// Why a verified delivery could not be read. Stripe signed it, so this is a shape we do
/// not understand (answered 400: Stripe retries and shows it on the endpoint's page).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the Stripe event is not JSON")]
    NotJson,
    /// Absent, null or of another type; the dotted path of the field.
    #[error("the Stripe event has no valid {0}")]
    Field(&'static str),
}

/// Reads one event. Types billing does not act on give a [`Delivery`] with no events, so
/// they are acknowledged and Stripe stops sending them again.
pub fn parse_event(payload: &[u8]) -> Result<Delivery, ParseError> {
    let event: Value = serde_json::from_slice(payload).map_err(|_| ParseError::NotJson)?;
    let id = text(&event, "id", "id")?;
    let kind = text(&event, "type", "type")?;
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or(ParseError::Field("data.object"))?;

    let events = match kind.as_str() {
        "checkout.session.completed" => vec![checkout_completed(object)?],
        "invoice.paid" => vec![PaymentEvent::Paid {
            customer_id: text(object, "customer", "data.object.customer")?,
            reference: text(object, "id", "data.object.id")?,
            amount_minor: object
                .get("amount_paid")
                .and_then(Value::as_i64)
                .ok_or(ParseError::Field("data.object.amount_paid"))?,
            // Stripe writes ISO 4217 codes in lower case; billing keeps them upper case.
            currency: text(object, "currency", "data.object.currency")?.to_ascii_uppercase(),
        }],
        "invoice.payment_failed" => vec![PaymentEvent::PaymentFailed {
            customer_id: text(object, "customer", "data.object.customer")?,
            reference: text(object, "id", "data.object.id")?,
        }],
        "customer.subscription.deleted" => vec![PaymentEvent::SubscriptionDeleted {
            customer_id: text(object, "customer", "data.object.customer")?,
        }],
        _ => Vec::new(),
    };
    Ok(Delivery {
        provider: PROVIDER,
        id,
        events,
    })
}

/// The tenant is the session's `client_reference_id` (set by our checkout), or its
/// `metadata.tenant_id` for sessions made elsewhere (a payment link, the dashboard).
fn checkout_completed(session: &Value) -> Result<PaymentEvent, ParseError> {
    let metadata = session.get("metadata");
    let tenant = session
        .get("client_reference_id")
        .and_then(Value::as_str)
        .or_else(|| {
            metadata
                .and_then(|m| m.get("tenant_id"))
                .and_then(Value::as_str)
        })
        .ok_or(ParseError::Field("data.object.client_reference_id"))?;
    let tenant_id = Uuid::parse_str(tenant)
        .map_err(|_| ParseError::Field("data.object.client_reference_id"))?;
    let plan = metadata
        .and_then(|m| m.get("plan"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or(ParseError::Field("data.object.metadata.plan"))?;
    Ok(PaymentEvent::CheckoutCompleted {
        tenant_id,
        plan: plan.to_owned(),
        customer_id: text(session, "customer", "data.object.customer")?,
        reference: text(session, "id", "data.object.id")?,
    })
}

/// A non-empty string field. `customer` is an id in events (Stripe expands it only when
/// asked to, which webhooks never are).
fn text(object: &Value, key: &str, path: &'static str) -> Result<String, ParseError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or(ParseError::Field(path))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An event as Stripe sends it: the envelope around `object`.
    fn event(kind: &str, object: Value) -> Vec<u8> {
        json!({
            "id": "evt_1QxYzA2eZvKYlo2C0kq9dF3h",
            "object": "event",
            "api_version": "2026-11-18.endive",
            "created": 1_765_000_000,
            "data": { "object": object, "previous_attributes": null },
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": kind
        })
        .to_string()
        .into_bytes()
    }

    fn session(client_reference_id: Value, metadata: Value) -> Value {
        json!({
            "id": "cs_test_a1B2c3",
            "object": "checkout.session",
            "amount_total": 4900,
            "client_reference_id": client_reference_id,
            "currency": "usd",
            "customer": "cus_PqR5tUv",
            "metadata": metadata,
            "mode": "subscription",
            "payment_status": "paid",
            "status": "complete",
            "subscription": "sub_1AbC",
            "url": null
        })
    }

    const TENANT: &str = "0193b7a4-5c3e-7d1f-9a2b-3c4d5e6f7a8b";

    #[test]
    fn checkout_completed_names_the_tenant_and_plan() {
        let tenant: Uuid = TENANT.parse().unwrap();
        let payload = event(
            "checkout.session.completed",
            session(json!(TENANT), json!({"tenant_id": TENANT, "plan": "pro"})),
        );
        let delivery = parse_event(&payload).unwrap();
        assert_eq!(delivery.provider, "stripe");
        assert_eq!(delivery.id, "evt_1QxYzA2eZvKYlo2C0kq9dF3h");
        assert_eq!(
            delivery.events,
            vec![PaymentEvent::CheckoutCompleted {
                tenant_id: tenant,
                plan: "pro".into(),
                customer_id: "cus_PqR5tUv".into(),
                reference: "cs_test_a1B2c3".into(),
            }]
        );
    }

    #[test]
    fn checkout_completed_falls_back_to_the_metadata_tenant() {
        let payload = event(
            "checkout.session.completed",
            session(Value::Null, json!({"tenant_id": TENANT, "plan": "team"})),
        );
        let delivery = parse_event(&payload).unwrap();
        assert!(matches!(
            &delivery.events[..],
            [PaymentEvent::CheckoutCompleted { tenant_id, plan, .. }]
                if tenant_id.to_string() == TENANT && plan == "team"
        ));
    }

    #[test]
    fn checkout_completed_without_tenant_or_plan_is_refused() {
        let no_tenant = event(
            "checkout.session.completed",
            session(Value::Null, json!({"plan": "pro"})),
        );
        assert_eq!(
            parse_event(&no_tenant),
            Err(ParseError::Field("data.object.client_reference_id"))
        );
        let bad_tenant = event(
            "checkout.session.completed",
            session(json!("acme"), json!({"plan": "pro"})),
        );
        assert_eq!(
            parse_event(&bad_tenant),
            Err(ParseError::Field("data.object.client_reference_id"))
        );
        let no_plan = event(
            "checkout.session.completed",
            session(json!(TENANT), json!({})),
        );
        assert_eq!(
            parse_event(&no_plan),
            Err(ParseError::Field("data.object.metadata.plan"))
        );
    }

    fn invoice() -> Value {
        json!({
            "id": "in_1MtHbELkdIwHu7ix",
            "object": "invoice",
            "amount_due": 4900,
            "amount_paid": 4900,
            "amount_remaining": 0,
            "currency": "brl",
            "customer": "cus_PqR5tUv",
            "status": "paid",
            "lines": { "object": "list", "data": [], "has_more": false }
        })
    }

    #[test]
    fn invoice_paid_carries_the_amount_in_minor_units_and_upper_case_currency() {
        let delivery = parse_event(&event("invoice.paid", invoice())).unwrap();
        assert_eq!(
            delivery.events,
            vec![PaymentEvent::Paid {
                customer_id: "cus_PqR5tUv".into(),
                reference: "in_1MtHbELkdIwHu7ix".into(),
                amount_minor: 4900,
                currency: "BRL".into(),
            }]
        );
    }

    #[test]
    fn invoice_payment_failed_names_the_invoice() {
        let delivery = parse_event(&event("invoice.payment_failed", invoice())).unwrap();
        assert_eq!(
            delivery.events,
            vec![PaymentEvent::PaymentFailed {
                customer_id: "cus_PqR5tUv".into(),
                reference: "in_1MtHbELkdIwHu7ix".into(),
            }]
        );
    }

    #[test]
    fn subscription_deleted_names_the_customer() {
        let subscription = json!({
            "id": "sub_1AbC",
            "object": "subscription",
            "customer": "cus_PqR5tUv",
            "status": "canceled"
        });
        let delivery = parse_event(&event("customer.subscription.deleted", subscription)).unwrap();
        assert_eq!(
            delivery.events,
            vec![PaymentEvent::SubscriptionDeleted {
                customer_id: "cus_PqR5tUv".into()
            }]
        );
    }

    #[test]
    fn other_types_are_acknowledged_with_nothing_to_do() {
        let payload = event("customer.updated", json!({"id": "cus_PqR5tUv"}));
        let delivery = parse_event(&payload).unwrap();
        assert_eq!(delivery.id, "evt_1QxYzA2eZvKYlo2C0kq9dF3h");
        assert!(delivery.events.is_empty());
    }

    #[test]
    fn a_shape_we_do_not_know_is_an_error() {
        assert_eq!(parse_event(b"not json"), Err(ParseError::NotJson));
        assert_eq!(
            parse_event(br#"{"type":"invoice.paid","data":{"object":{}}}"#),
            Err(ParseError::Field("id"))
        );
        assert_eq!(
            parse_event(br#"{"id":"evt_1","type":"invoice.paid","data":{}}"#),
            Err(ParseError::Field("data.object"))
        );
        let mut unpaid = invoice();
        unpaid["amount_paid"] = json!("4900");
        assert_eq!(
            parse_event(&event("invoice.paid", unpaid)),
            Err(ParseError::Field("data.object.amount_paid"))
        );
    }
}
