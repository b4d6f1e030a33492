//! Pix immediate charges (`cob`, the Central Bank's Pix API as Efí serves it): the charge is
//! created under a `txid` we choose (`PUT /v2/cob/{txid}`), then its location's QR code is
//! read (`GET /v2/loc/{id}/qrcode`).
//!
//! The `txid` is derived from the checkout, so a retried checkout (a timeout, a client that
//! asks twice) lands on the same charge instead of opening a second one: Efí answers the
//! second `PUT` with `409 txid_duplicado`, and the charge already there is read back and
//! used if it is for the same amount, to the same key, and still open. The derivation takes
//! the time window of one charge's validity (`pix_expiry_secs`): a charge created in a window
//! is valid at least until that window ends, so within it a retry always finds a payable
//! charge, and a checkout after it gets a new one.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::client::{Api, Http, failed, parse, refused};
use super::payer::{Document, document};
use crate::domain::money::Currency;
use crate::payments::{Checkout, CheckoutRequest, PaymentError};

/// `solicitacaoPagador`: at most 140 characters (Pix API).
const MAX_PAYER_MESSAGE: usize = 140;

/// A txid for `request` in the validity window `window`: 32 lower-case hex characters (the
/// Pix API takes 26–35 alphanumerics), from SHA-256 over everything that defines the charge.
pub fn txid(request: &CheckoutRequest, window: i64) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        "tenantry-efi-cob-v1",
        &request.tenant_id.to_string(),
        &request.plan,
        &request.amount_minor.to_string(),
        &request.currency,
        request.interval,
        &request.customer_id,
        &window.to_string(),
    ] {
        // Length-prefixed, so no two different requests hash the same bytes.
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    context.finish().as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The validity window `now` falls in.
pub fn window(now: DateTime<Utc>, expiry_secs: u32) -> i64 {
    now.timestamp().div_euclid(i64::from(expiry_secs.max(1)))
}

/// A Pix API decimal amount ("49.90", "0.01", "1000.00") in minor units; `None` when it is
/// not one (the Pix API always writes two decimals; one is accepted too).
pub fn parse_amount(value: &str) -> Option<i64> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (units, cents) = match value.split_once('.') {
        Some((units, cents)) if digits(cents) => (units, cents),
        Some(_) => return None,
        None => (value, "0"),
    };
    if !digits(units) || units.len() > 15 {
        return None;
    }
    let cents = match cents.len() {
        1 => cents.parse::<i64>().ok()? * 10,
        2 => cents.parse::<i64>().ok()?,
        _ => return None,
    };
    units
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CobRequest<'a> {
    calendario: Calendario,
    #[serde(skip_serializing_if = "Option::is_none")]
    devedor: Option<Devedor<'a>>,
    valor: Valor,
    chave: &'a str,
    solicitacao_pagador: String,
}

#[derive(Serialize, Deserialize)]
struct Calendario {
    expiracao: u32,
    #[serde(default, skip_serializing)]
    criacao: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct Devedor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cpf: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnpj: Option<&'a str>,
    nome: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Valor {
    original: String,
}

#[derive(Deserialize)]
struct Cob {
    calendario: Calendario,
    txid: String,
    loc: Loc,
    status: String,
    valor: Valor,
    chave: String,
}

#[derive(Deserialize)]
struct Loc {
    id: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QrCode {
    qrcode: String,
    imagem_qrcode: String,
}

/// Opens (or, on a retry, finds) the Pix charge for `request` and returns its QR code.
pub async fn checkout(
    http: &Http,
    pix_key: &str,
    expiry_secs: u32,
    request: &CheckoutRequest,
    now: DateTime<Utc>,
) -> Result<Checkout, PaymentError> {
    if request.currency != Currency::BRL.code() {
        return Err(failed("pix charges are in BRL only"));
    }
    if request.amount_minor <= 0 {
        return Err(failed("a pix charge needs a positive amount"));
    }
    let txid = txid(request, window(now, expiry_secs));
    let devedor = match &request.payer {
        Some(payer) => Some(match document(payer)? {
            Document::Cpf(cpf) => Devedor {
                cpf: Some(cpf),
                cnpj: None,
                nome: &payer.name,
            },
            Document::Cnpj(cnpj) => Devedor {
                cpf: None,
                cnpj: Some(cnpj),
                nome: &payer.name,
            },
        }),
        None => None,
    };
    let body = CobRequest {
        calendario: Calendario {
            expiracao: expiry_secs,
            criacao: None,
        },
        devedor,
        valor: Valor {
            original: Currency::BRL.format(request.amount_minor),
        },
        chave: pix_key,
        solicitacao_pagador: format!("{} ({})", request.plan_display_name, request.interval)
            .chars()
            .take(MAX_PAYER_MESSAGE)
            .collect(),
    };
    let path = format!("/v2/cob/{txid}");
    let (status, bytes) = http
        .send(Api::Pix, Method::PUT, &path, Some(&body), "pix charge")
        .await?;
    let cob: Cob = match status {
        StatusCode::OK | StatusCode::CREATED => parse("pix charge", &bytes)?,
        StatusCode::CONFLICT => {
            let cob: Cob = http
                .call(Api::Pix, Method::GET, &path, None::<&()>, "pix charge")
                .await?;
            if cob.valor.original != body.valor.original || cob.chave != pix_key {
                return Err(failed(format!(
                    "pix charge {txid} exists with another amount or key"
                )));
            }
            if cob.status != "ATIVA" {
                return Err(failed(format!("pix charge {txid} is no longer open")));
            }
            cob
        }
        _ => return Err(refused("pix charge", status, &bytes)),
    };
    if cob.txid != txid {
        return Err(failed("pix charge: Efí answered for another txid"));
    }
    let qr: QrCode = http
        .call(
            Api::Pix,
            Method::GET,
            &format!("/v2/loc/{}/qrcode", cob.loc.id),
            None::<&()>,
            "pix qr code",
        )
        .await?;
    let created = cob.calendario.criacao.unwrap_or(now);
    Ok(Checkout {
        reference: txid,
        pix_qr_code: qr.imagem_qrcode,
        pix_copy_paste: qr.qrcode,
        expires_at: Some(created + Duration::seconds(i64::from(cob.calendario.expiracao))),
        ..Checkout::default()
    })
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::payments::PaymentMethod;

    fn request() -> CheckoutRequest {
        CheckoutRequest {
            tenant_id: Uuid::from_u128(7),
            plan: "pro".into(),
            plan_display_name: "Pro".into(),
            amount_minor: 4990,
            currency: "BRL".into(),
            interval: "month",
            method: PaymentMethod::Pix,
            billing_email: String::new(),
            callback_url: String::new(),
            customer_id: "efi_7".into(),
            payer: None,
        }
    }

    #[test]
    fn amounts_parse_from_the_pix_apis_decimals() {
        for (text, minor) in [
            ("49.90", 4990),
            ("0.01", 1),
            ("1000.00", 100_000),
            ("5.5", 550),
            ("12", 1200),
        ] {
            assert_eq!(parse_amount(text), Some(minor), "{text}");
        }
        for text in [
            "",
            "49,90",
            "-1.00",
            "1.234",
            ".50",
            "1.",
            "1e3",
            " 1.00",
            "99999999999999999.00",
        ] {
            assert_eq!(parse_amount(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_txid_is_32_hex_characters_fixed_by_the_checkout_and_its_window() {
        let request = request();
        let txid = txid(&request, 100);
        assert_eq!(txid.len(), 32);
        assert!(txid.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(super::txid(&request, 100), txid);
        assert_ne!(super::txid(&request, 101), txid);
        let mut other = request.clone();
        other.tenant_id = Uuid::from_u128(8);
        assert_ne!(super::txid(&other, 100), txid);
        let mut other = request.clone();
        other.amount_minor = 4991;
        assert_ne!(super::txid(&other, 100), txid);
    }

    #[test]
    fn a_window_is_one_expiry_long() {
        let at = |secs| DateTime::from_timestamp(secs, 0).unwrap();
        assert_eq!(window(at(7199), 3600), window(at(3600), 3600));
        assert_ne!(window(at(7200), 3600), window(at(7199), 3600));
        assert_eq!(window(at(5), 0), 5, "a zero expiry is a one-second window");
    }
}
