//! The seed's HTTP shapes, on billing's port (and through the gateway's API edge):
//!
//! - `POST /api/tenants/{id}/billing/checkout` (JSON: `plan`, `payment_method`,
//!   `billing_email`, `callback_url`, and for a boleto `payer_name`, `payer_tax_id`)
//! - `GET /api/tenants/{id}/billing/invoices`
//! - `GET /api/tenants/{id}/billing/usage/report?format=csv|json&period=…`
//!
//! Each is a thin adapter over the gRPC API, which it calls on this service's own port with
//! the caller's `Authorization` header: authentication, the access policy, the tenant's
//! standing and validation are the gRPC path's, one way of doing each.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tenantry_kit::ApiError;
use tenantry_kit::http_shape::grpc_request;
use tenantry_proto::billing::v1::{self as api, billing_service_client::BillingServiceClient};
use tonic::transport::Channel;

/// The gRPC API on this service's own port.
#[derive(Clone)]
struct Own(BillingServiceClient<Channel>);

pub fn router(addr: std::net::SocketAddr) -> Router {
    let Some(channel) = tenantry_kit::http_shape::own_channel(addr) else {
        return Router::new();
    };
    Router::new()
        .route("/api/tenants/{id}/billing/checkout", post(checkout))
        .route("/api/tenants/{id}/billing/invoices", get(invoices))
        .route("/api/tenants/{id}/billing/usage/report", get(report))
        .with_state(Own(BillingServiceClient::new(channel)))
}

#[derive(Deserialize)]
struct CheckoutBody {
    plan: String,
    payment_method: String,
    billing_email: String,
    callback_url: String,
    #[serde(default)]
    payer_name: String,
    #[serde(default)]
    payer_tax_id: String,
}

async fn checkout(
    State(Own(mut client)): State<Own>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CheckoutBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return ApiError::invalid("body", e.body_text()).into_response(),
    };
    let message = api::CheckoutRequest {
        tenant_id: id,
        plan: body.plan,
        payment_method: body.payment_method,
        billing_email: body.billing_email,
        callback_url: body.callback_url,
        payer_name: body.payer_name,
        payer_tax_id: body.payer_tax_id,
    };
    let result = match grpc_request(&headers, message) {
        Ok(request) => client.checkout(request).await,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(r) => {
            let c = r.into_inner();
            Json(serde_json::json!({
                "provider": c.provider,
                "reference": c.reference,
                "url": c.url,
                "pix_qr_code": c.pix_qr_code,
                "pix_copy_paste": c.pix_copy_paste,
                "boleto_barcode": c.boleto_barcode,
                "expires_at": c.expires_at.map(|t| tenantry_eventstore::time::from_proto(Some(&t)).to_rfc3339()),
            }))
            .into_response()
        }
        Err(status) => ApiError::from_status(&status).into_response(),
    }
}

async fn invoices(
    State(Own(mut client)): State<Own>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let message = api::ListInvoicesRequest {
        tenant_id: id,
        min_position: 0,
    };
    let result = match grpc_request(&headers, message) {
        Ok(request) => client.list_invoices(request).await,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(r) => {
            let invoices: Vec<serde_json::Value> =
                r.into_inner().invoices.iter().map(invoice_json).collect();
            Json(serde_json::json!({ "invoices": invoices })).into_response()
        }
        Err(status) => ApiError::from_status(&status).into_response(),
    }
}

fn invoice_json(i: &tenantry_proto::events::v1::Invoice) -> serde_json::Value {
    let time = |t: &Option<prost_types::Timestamp>| {
        tenantry_eventstore::time::from_proto(t.as_ref()).to_rfc3339()
    };
    let status = tenantry_proto::events::v1::InvoiceStatus::try_from(i.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("INVOICE_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_default();
    serde_json::json!({
        "number": i.number,
        "status": status,
        "plan": i.plan,
        "currency": i.currency,
        "total_minor": i.total_minor,
        "period_start": time(&i.period_start),
        "period_end": time(&i.period_end),
        "issued_at": time(&i.issued_at),
        "lines": i.lines.iter().map(|l| serde_json::json!({
            "kind": l.kind,
            "description": l.description,
            "meter": l.meter,
            "quantity": l.quantity,
            "amount_minor": l.amount_minor,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
struct ReportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    period: Option<String>,
}

async fn report(
    State(Own(mut client)): State<Own>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Response {
    let (format, content_type) = match q.format.as_deref().unwrap_or("json") {
        "json" => (api::ReportFormat::Json, "application/json"),
        "csv" => (api::ReportFormat::Csv, "text/csv; charset=utf-8"),
        _ => return ApiError::invalid("format", "must be csv or json").into_response(),
    };
    let message = api::UsageReportRequest {
        tenant_id: id,
        period: q.period.unwrap_or_default(),
        format: format as i32,
    };
    let result = match grpc_request(&headers, message) {
        Ok(request) => client.usage_report(request).await,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(r) => {
            let mut response = r.into_inner().text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Err(status) => ApiError::from_status(&status).into_response(),
    }
}
