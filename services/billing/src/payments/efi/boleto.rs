//! Boleto through Efí's charges API: one `POST /v1/charge/one-step` creates the charge and
//! issues its boleto (`payment.banking_billet`) for the payer, with its due date.
//!
//! The charges API has no idempotency key: a retried checkout issues a second boleto. Only
//! the one paid settles anything, and an unpaid boleto lapses after its due date; the charge
//! carries the tenant in `metadata.custom_id` so both are traceable in Efí's dashboard.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{Api, Http, failed};
use super::payer::{Document, document};
use crate::domain::money::Currency;
use crate::payments::{Checkout, CheckoutRequest, PaymentError};

/// Brasília's offset from UTC (no daylight saving time since 2019): boleto due dates are
/// Brazilian calendar days.
const BRASILIA_BEHIND_UTC: Duration = Duration::hours(3);
/// An item's name: at most 255 characters (charges API).
const MAX_ITEM_NAME: usize = 255;

#[derive(Serialize)]
struct OneStep<'a> {
    items: [Item; 1],
    metadata: Metadata,
    payment: Payment<'a>,
}

#[derive(Serialize)]
struct Item {
    name: String,
    /// In cents, an integer.
    value: i64,
    amount: u32,
}

#[derive(Serialize)]
struct Metadata {
    custom_id: String,
    /// Where Efí posts the charge's status changes (see `notification`).
    #[serde(skip_serializing_if = "Option::is_none")]
    notification_url: Option<String>,
}

#[derive(Serialize)]
struct Payment<'a> {
    banking_billet: BankingBillet<'a>,
}

#[derive(Serialize)]
struct BankingBillet<'a> {
    customer: Customer<'a>,
    /// `YYYY-MM-DD`.
    expire_at: String,
}

/// A person by `name` and `cpf`, or a company by `juridical_person` alone.
#[derive(Serialize)]
struct Customer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpf: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    juridical_person: Option<JuridicalPerson<'a>>,
    /// Efí e-mails the boleto there.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Serialize)]
struct JuridicalPerson<'a> {
    corporate_name: &'a str,
    cnpj: &'a str,
}

#[derive(Deserialize)]
struct Reply {
    data: Charge,
}

#[derive(Deserialize)]
struct Charge {
    charge_id: i64,
    barcode: String,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    billet_link: Option<String>,
    #[serde(default)]
    pdf: Option<Pdf>,
    #[serde(default)]
    expire_at: Option<String>,
}

#[derive(Deserialize)]
struct Pdf {
    charge: String,
}

/// The due date: `due_days` Brazilian calendar days after `now`.
pub fn due_date(now: DateTime<Utc>, due_days: u32) -> NaiveDate {
    (now - BRASILIA_BEHIND_UTC).date_naive() + Duration::days(i64::from(due_days))
}

/// The end of `date` in Brasília, in UTC.
fn end_of(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc() + Duration::days(1) + BRASILIA_BEHIND_UTC
}

/// Issues a boleto for `request`.
pub async fn checkout(
    http: &Http,
    due_days: u32,
    notification_url: &str,
    request: &CheckoutRequest,
    now: DateTime<Utc>,
) -> Result<Checkout, PaymentError> {
    if request.currency != Currency::BRL.code() {
        return Err(failed("boletos are in BRL only"));
    }
    if request.amount_minor <= 0 {
        return Err(failed("a boleto needs a positive amount"));
    }
    let payer = request
        .payer
        .as_ref()
        .ok_or_else(|| failed("a boleto needs the payer's name and CPF or CNPJ"))?;
    let email = Some(request.billing_email.as_str()).filter(|e| !e.is_empty());
    let customer = match document(payer)? {
        Document::Cpf(cpf) => Customer {
            name: Some(&payer.name),
            cpf: Some(cpf),
            juridical_person: None,
            email,
        },
        Document::Cnpj(cnpj) => Customer {
            name: None,
            cpf: None,
            juridical_person: Some(JuridicalPerson {
                corporate_name: &payer.name,
                cnpj,
            }),
            email,
        },
    };
    let due = due_date(now, due_days);
    let body = OneStep {
        items: [Item {
            name: format!("{} ({})", request.plan_display_name, request.interval)
                .chars()
                .take(MAX_ITEM_NAME)
                .collect(),
            value: request.amount_minor,
            amount: 1,
        }],
        metadata: Metadata {
            custom_id: request.tenant_id.to_string(),
            notification_url: Some(notification_url)
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
        },
        payment: Payment {
            banking_billet: BankingBillet {
                customer,
                expire_at: due.format("%Y-%m-%d").to_string(),
            },
        },
    };
    let reply: Reply = http
        .call(
            Api::Charges,
            Method::POST,
            "/v1/charge/one-step",
            Some(&body),
            "boleto",
        )
        .await?;
    let charge = reply.data;
    let due = charge
        .expire_at
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .unwrap_or(due);
    Ok(Checkout {
        reference: charge.charge_id.to_string(),
        // The PDF is what a payer prints or opens in a bank's app; the links are pages.
        url: charge
            .pdf
            .map(|p| p.charge)
            .or(charge.billet_link)
            .or(charge.link)
            .unwrap_or_default(),
        boleto_barcode: charge.barcode,
        expires_at: Some(end_of(due)),
        ..Checkout::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_are_brazilian_calendar_days() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 01:00 UTC is still the previous evening in Brasília.
        assert_eq!(due_date(at("2026-03-10T01:00:00Z"), 3), date("2026-03-12"));
        assert_eq!(due_date(at("2026-03-10T03:00:00Z"), 3), date("2026-03-13"));
        assert_eq!(end_of(date("2026-03-13")), at("2026-03-14T03:00:00Z"));
    }
}
