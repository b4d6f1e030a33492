//! The seed's HTTP shapes, on sync's port (and through the gateway's API edge):
//!
//! - `POST /api/v2/tenant-integrations`: a new integration from the seed's flat body
//!   (`tenant_id`, `integration_type`, the type's configuration and credentials side by side,
//!   `auto_sync`, `sync_frequency`, and `name`, `cron` if wanted)
//! - `POST /api/v2/tenant-integrations/validate/{type}`: the same fields, checked against the
//!   source (the caller's tenant unless the body names one)
//! - `GET /api/v2/tenant-integrations/{tenant_id}/sync-status`: the seed's status shape, with
//!   the tenant's API budget of the day
//! - `POST /api/v2/tenant-integrations/{tenant_id}/sync`: runs now (`integration_types`,
//!   `sync_type`, `priority`)
//! - `GET /api/v2/tenant-integrations/{tenant_id}/alerts`
//!
//! Each is a thin adapter over the gRPC API on this service's own port, called with the
//! caller's credential: authentication, roles, tenant checks and validation are the gRPC
//! path's. A refused field is named as the HTTP body names it (`account_name`, not
//! `config.vtex.account_name`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tenantry_kit::ApiError;
use tenantry_kit::http_shape::{grpc_request, own_channel};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::events::v1::integration_config::Source;
use tenantry_proto::sync::v1::{self as api, sync_service_client::SyncServiceClient};
use tonic::transport::Channel;

use crate::domain::SourceKind;

/// The gRPC API on this service's own port.
#[derive(Clone)]
struct Own(SyncServiceClient<Channel>);

pub const PREFIX: &str = "/api/v2/tenant-integrations";

pub fn router(addr: std::net::SocketAddr) -> Router {
    let Some(channel) = own_channel(addr) else {
        return Router::new();
    };
    Router::new()
        .route(PREFIX, post(create))
        .route(&format!("{PREFIX}/validate/{{type}}"), post(validate))
        .route(&format!("{PREFIX}/{{tenant_id}}/sync-status"), get(status))
        .route(&format!("{PREFIX}/{{tenant_id}}/sync"), post(trigger))
        .route(&format!("{PREFIX}/{{tenant_id}}/alerts"), get(alerts))
        .with_state(Own(SyncServiceClient::new(channel)))
}

/// A gRPC refusal as this shape's error, its field named as the body names it.
fn refusal(status: &tonic::Status) -> Response {
    match ApiError::from_status(status) {
        ApiError::InvalidArgument { field, reason } => {
            ApiError::invalid(body_field(&field), reason).into_response()
        }
        other => other.into_response(),
    }
}

/// The body's name of a gRPC request's field.
fn body_field(field: &str) -> String {
    match field {
        "type" => "integration_type".into(),
        "schedule.cron" => "cron".into(),
        "schedule.frequency" => "sync_frequency".into(),
        "mode" => "sync_type".into(),
        other => match other.strip_prefix("config.") {
            // `config.vtex.account_name` → `account_name`
            Some(rest) => rest.split_once('.').map_or(rest, |(_, f)| f).to_owned(),
            None => other.to_owned(),
        },
    }
}

/// The configuration fields of each type, as the flat body carries them.
fn config_fields(kind: SourceKind) -> &'static [&'static str] {
    match kind {
        SourceKind::Vtex => &["account_name", "environment"],
        SourceKind::MercadoLibre => &["seller_id"],
        SourceKind::GoogleAds => &["customer_id", "login_customer_id"],
        SourceKind::FacebookAds => &["ad_account_id"],
        SourceKind::HttpJson => &[
            "url",
            "auth_header",
            "records_path",
            "id_field",
            "cursor_field",
            "cursor_param",
            "page_param",
            "stream",
        ],
    }
}

/// `page_size` of a flat body: a whole number (or its digits) up to `u32::MAX`.
fn page_size_of(value: &Value) -> Result<u32, ApiError> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::invalid("page_size", "must be a whole number of records"))
}

/// The type's configuration and credentials from a flat body (`envelope` names the other
/// fields the endpoint reads itself). A field the type does not take is refused by name.
fn split(
    kind: SourceKind,
    body: &Map<String, Value>,
    envelope: &[&str],
) -> Result<(pb::IntegrationConfig, HashMap<String, String>), ApiError> {
    let (required, optional) = kind.credentials();
    let mut config: HashMap<&str, String> = HashMap::new();
    let mut credentials = HashMap::new();
    let mut page_size = 0;
    for (name, value) in body {
        if envelope.contains(&name.as_str()) {
            continue;
        }
        // The one numeric field: taken as a number or as its digits.
        if kind == SourceKind::HttpJson && name == "page_size" {
            page_size = page_size_of(value)?;
            continue;
        }
        let Value::String(value) = value else {
            return Err(ApiError::invalid(name.clone(), "must be a string"));
        };
        if let Some(field) = config_fields(kind).iter().find(|f| **f == name) {
            config.insert(field, value.clone());
        } else if required.contains(&name.as_str()) || optional.contains(&name.as_str()) {
            credentials.insert(name.clone(), value.clone());
        } else {
            return Err(ApiError::invalid(
                name.clone(),
                format!("is not a field of a {} integration", kind.as_str()),
            ));
        }
    }
    let mut take = |f: &str| config.remove(f).unwrap_or_default();
    let source = match kind {
        SourceKind::Vtex => Source::Vtex(pb::VtexConfig {
            account_name: take("account_name"),
            environment: take("environment"),
        }),
        SourceKind::MercadoLibre => Source::Mercadolibre(pb::MercadoLibreConfig {
            seller_id: take("seller_id"),
        }),
        SourceKind::GoogleAds => Source::GoogleAds(pb::GoogleAdsConfig {
            customer_id: take("customer_id"),
            login_customer_id: take("login_customer_id"),
        }),
        SourceKind::FacebookAds => Source::FacebookAds(pb::FacebookAdsConfig {
            ad_account_id: take("ad_account_id"),
        }),
        SourceKind::HttpJson => Source::HttpJson(pb::HttpJsonConfig {
            url: take("url"),
            auth_header: take("auth_header"),
            records_path: take("records_path"),
            id_field: take("id_field"),
            cursor_field: take("cursor_field"),
            cursor_param: take("cursor_param"),
            page_param: take("page_param"),
            stream: take("stream"),
            page_size,
        }),
    };
    Ok((
        pb::IntegrationConfig {
            source: Some(source),
        },
        credentials,
    ))
}

/// A string field of the body (empty when absent).
fn text(body: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(name, "must be a string")),
    }
}

/// The schedule from `auto_sync` (default true), `sync_frequency` (default hourly) and `cron`.
fn schedule(body: &Map<String, Value>) -> Result<pb::Schedule, ApiError> {
    let auto = match body.get("auto_sync") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("auto_sync", "must be true or false")),
    };
    let frequency = text(body, "sync_frequency")?;
    let cron = text(body, "cron")?;
    use pb::ScheduleFrequency as F;
    let frequency = match (auto, frequency.as_str()) {
        (false, _) | (true, "manual") => F::Manual,
        (true, "" | "hourly") => F::Hourly,
        (true, "daily") => F::Daily,
        (true, "weekly") => F::Weekly,
        (true, "cron") => F::Cron,
        (true, _) => {
            return Err(ApiError::invalid(
                "sync_frequency",
                "must be hourly, daily, weekly, manual or cron",
            ));
        }
    };
    Ok(pb::Schedule {
        frequency: frequency as i32,
        cron,
    })
}

/// The body as a JSON object, or the error naming it.
fn object(body: Result<Json<Value>, JsonRejection>) -> Result<Map<String, Value>, ApiError> {
    match body {
        Ok(Json(Value::Object(map))) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid("body", e.body_text())),
    }
}

async fn create(
    State(Own(mut client)): State<Own>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let outcome = async {
        let body = object(body)?;
        let kind_name = text(&body, "integration_type")?;
        let kind = SourceKind::parse("integration_type", &kind_name)?;
        let envelope = [
            "tenant_id",
            "integration_type",
            "name",
            "auto_sync",
            "sync_frequency",
            "cron",
        ];
        let (config, credentials) = split(kind, &body, &envelope)?;
        let name = match text(&body, "name")? {
            n if n.is_empty() => kind.as_str().to_owned(),
            n => n,
        };
        let message = api::CreateIntegrationRequest {
            tenant_id: text(&body, "tenant_id")?,
            name: name.clone(),
            r#type: kind.as_str().into(),
            config: Some(config),
            schedule: Some(schedule(&body)?),
            credentials,
        };
        let tenant_id = message.tenant_id.clone();
        let sync_frequency = message
            .schedule
            .as_ref()
            .map(|s| s.frequency().as_str_name())
            .unwrap_or_default()
            .trim_start_matches("SCHEDULE_FREQUENCY_")
            .to_lowercase();
        Ok::<_, ApiError>((
            grpc_request(&headers, message)?,
            tenant_id,
            kind,
            name,
            sync_frequency,
        ))
    }
    .await;
    let (request, tenant_id, kind, name, sync_frequency) = match outcome {
        Ok(parts) => parts,
        Err(e) => return e.into_response(),
    };
    match client.create_integration(request).await {
        Ok(r) => {
            let c = r.into_inner();
            let body = json!({
                "id": c.integration_id,
                "tenant_id": tenant_id,
                "integration_type": kind.as_str(),
                "name": name,
                "status": "active",
                "sync_frequency": sync_frequency,
                // Shown this once: webhook deliveries carry it in `X-Tenantry-Webhook-Secret`.
                "webhook_url": format!("/webhooks/sync/{}", c.integration_id),
                "webhook_secret": c.webhook_secret,
                "position": c.position,
            });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(status) => refusal(&status),
    }
}

async fn validate(
    State(Own(mut client)): State<Own>,
    Path(kind_name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let request = (|| -> Result<tonic::Request<api::ValidateCredentialsRequest>, ApiError> {
        let body = object(body)?;
        let kind = SourceKind::parse("type", &kind_name)?;
        let (config, credentials) = split(kind, &body, &["tenant_id"])?;
        grpc_request(
            &headers,
            api::ValidateCredentialsRequest {
                tenant_id: text(&body, "tenant_id")?,
                r#type: kind.as_str().into(),
                config: Some(config),
                credentials,
            },
        )
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match client.validate_credentials(request).await {
        Ok(r) => {
            let v = r.into_inner();
            Json(json!({
                "integration_type": kind_name,
                "valid": v.valid,
                "problems": v.problems,
            }))
            .into_response()
        }
        Err(status) => refusal(&status),
    }
}

fn time(t: Option<&prost_types::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(tenantry_eventstore::time::from_proto(Some(t)).to_rfc3339())
    })
}

async fn status(
    State(Own(mut client)): State<Own>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let message = api::GetSyncStatusRequest {
        tenant_id: tenant_id.clone(),
        min_position: 0,
    };
    let result = match grpc_request(&headers, message) {
        Ok(request) => client.get_sync_status(request).await,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(r) => {
            let s = r.into_inner();
            let integrations: Vec<Value> = s
                .integrations
                .iter()
                .map(|i| {
                    json!({
                        "id": i.integration_id,
                        "type": i.r#type,
                        "name": i.name,
                        "status": i.status,
                        "last_sync": time(i.last_sync.as_ref()),
                        "next_sync": time(i.next_sync.as_ref()),
                        "records_synced": i.records_synced,
                        "errors": i.errors,
                        "sync_duration_minutes": i.sync_duration_minutes,
                        "health": i.health,
                    })
                })
                .collect();
            let budget = s.api_budget.unwrap_or_default();
            Json(json!({
                "tenant_id": tenant_id,
                "integrations": integrations,
                "overall_status": s.overall_status,
                "api_budget": {
                    "day": budget.day,
                    "used": budget.used,
                    "limit": budget.limit,
                },
            }))
            .into_response()
        }
        Err(status) => refusal(&status),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    #[serde(default)]
    integration_types: Vec<String>,
    #[serde(default)]
    sync_type: String,
    #[serde(default)]
    priority: Option<Value>,
}

/// The seed's priorities (`low`, `normal`, `high`) or the API's 1 to 9.
fn priority(value: Option<&Value>) -> Result<u32, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => match s.as_str() {
            "low" => Ok(2),
            "normal" => Ok(5),
            "high" => Ok(8),
            _ => Err(ApiError::invalid(
                "priority",
                "must be low, normal, high or 1 to 9",
            )),
        },
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|p| (1..=9).contains(p))
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| ApiError::invalid("priority", "must be low, normal, high or 1 to 9")),
        Some(_) => Err(ApiError::invalid(
            "priority",
            "must be low, normal, high or 1 to 9",
        )),
    }
}

async fn trigger(
    State(Own(mut client)): State<Own>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<TriggerBody>, JsonRejection>,
) -> Response {
    let request = (|| -> Result<tonic::Request<api::TriggerSyncRequest>, ApiError> {
        let Json(body) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let mode = if body.sync_type.is_empty() {
            "incremental".to_owned()
        } else {
            body.sync_type
        };
        grpc_request(
            &headers,
            api::TriggerSyncRequest {
                tenant_id: tenant_id.clone(),
                integration_id: String::new(),
                mode,
                priority: priority(body.priority.as_ref())?,
                integration_types: body.integration_types,
            },
        )
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mode = request.get_ref().mode.clone();
    match client.trigger_sync(request).await {
        Ok(r) => {
            let runs: Vec<Value> = r
                .into_inner()
                .runs
                .iter()
                .map(|run| {
                    json!({
                        "integration_id": run.integration_id,
                        "type": run.r#type,
                        "run_id": run.run_id,
                    })
                })
                .collect();
            let body = json!({ "tenant_id": tenant_id, "sync_type": mode, "runs": runs });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Err(status) => refusal(&status),
    }
}

async fn alerts(
    State(Own(mut client)): State<Own>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let message = api::ListAlertsRequest {
        tenant_id: tenant_id.clone(),
        min_position: 0,
    };
    let result = match grpc_request(&headers, message) {
        Ok(request) => client.list_alerts(request).await,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(r) => {
            let alerts: Vec<Value> = r
                .into_inner()
                .alerts
                .iter()
                .map(|a| {
                    json!({
                        "id": a.alert_id,
                        "integration_id": a.integration_id,
                        "kind": a.kind,
                        "message": a.message,
                        "raised_at": time(a.raised_at.as_ref()),
                    })
                })
                .collect();
            Json(json!({ "tenant_id": tenant_id, "alerts": alerts })).into_response()
        }
        Err(status) => refusal(&status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_fields_are_named_as_the_body_names_them() {
        assert_eq!(body_field("config.vtex.account_name"), "account_name");
        assert_eq!(body_field("config.http_json.records_path"), "records_path");
        assert_eq!(body_field("type"), "integration_type");
        assert_eq!(body_field("schedule.cron"), "cron");
        assert_eq!(body_field("tenant_id"), "tenant_id");
        assert_eq!(body_field("credentials"), "credentials");
    }

    #[test]
    fn a_flat_body_splits_into_configuration_and_credentials() {
        let body: Map<String, Value> = serde_json::from_value(json!({
            "tenant_id": "t",
            "integration_type": "vtex",
            "account_name": "chelseaio",
            "environment": "vtexcommercestable",
            "app_key": "k",
            "app_token": "s",
        }))
        .unwrap();
        let (config, credentials) =
            split(SourceKind::Vtex, &body, &["tenant_id", "integration_type"]).unwrap();
        assert_eq!(
            config.source,
            Some(Source::Vtex(pb::VtexConfig {
                account_name: "chelseaio".into(),
                environment: "vtexcommercestable".into(),
            }))
        );
        assert_eq!(credentials.len(), 2);
        let mut unknown = body.clone();
        unknown.insert("site_id".into(), json!("MLA"));
        let Err(ApiError::InvalidArgument { field, .. }) = split(
            SourceKind::Vtex,
            &unknown,
            &["tenant_id", "integration_type"],
        ) else {
            panic!("an unknown field is refused")
        };
        assert_eq!(field, "site_id");
    }
}
