// A test stand-in: its lock is never held across an await.
#![allow(clippy::disallowed_types)]

//! VTEX's OMS list-orders API standing in for a store: `GET /api/oms/pvt/orders` with
//! `X-VTEX-API-AppKey`/`X-VTEX-API-AppToken`, `orderBy=creationDate,asc`, `page`, `per_page`
//! and `f_creationDate=creationDate:[from TO to]`; answers `{"list", "paging", "stats"}` as
//! VTEX documents it (401 for other credentials), and 429 with `Retry-After` when told to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, FixedOffset};
use serde_json::json;

pub const APP_KEY: &str = "vtexappkey-chelseaio-TEST";
pub const APP_TOKEN: &str = "app-token-test";

#[derive(Default)]
pub struct Inner {
    /// (orderId, creationDate as VTEX writes it)
    pub orders: Vec<(String, String)>,
    pub requests: Vec<HashMap<String, String>>,
    pub rate_limit: u32,
}

#[derive(Clone, Default)]
pub struct Vtex(pub Arc<Mutex<Inner>>);

impl Vtex {
    /// An order created `minute` minutes after 2026-01-01T00:00Z.
    pub fn add(&self, n: u32, minute: i64) {
        let at = chrono::DateTime::UNIX_EPOCH
            + chrono::Duration::seconds(1_767_225_600)
            + chrono::Duration::minutes(minute);
        // Seven fractional digits, as VTEX writes them.
        let created = at.format("%Y-%m-%dT%H:%M:%S%.6f0+00:00").to_string();
        self.0
            .lock()
            .unwrap()
            .orders
            .push((format!("v{n:07}llux-01"), created));
    }

    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.0.lock().unwrap().requests.clone()
    }

    pub fn rate_limit(&self, times: u32) {
        self.0.lock().unwrap().rate_limit = times;
    }

    pub async fn serve(&self) -> (SocketAddr, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/api/oms/pvt/orders", get(orders))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, format!("http://{addr}"))
    }
}

fn date(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s.trim()).ok()
}

async fn orders(
    State(vtex): State<Vtex>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = vtex.0.lock().unwrap();
    inner.requests.push(query.clone());
    if inner.rate_limit > 0 {
        inner.rate_limit -= 1;
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-vtex-api-appkey") != Some(APP_KEY)
        || header("x-vtex-api-apptoken") != Some(APP_TOKEN)
    {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    assert_eq!(
        query.get("orderBy").map(String::as_str),
        Some("creationDate,asc")
    );
    let (from, to) = query
        .get("f_creationDate")
        .and_then(|f| {
            f.strip_prefix("creationDate:[")?
                .strip_suffix(']')?
                .split_once(" TO ")
        })
        .and_then(|(a, b)| Some((date(a)?, date(b)?)))
        .expect("a creation-date window");
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(15);
    let mut matching: Vec<&(String, String)> = inner
        .orders
        .iter()
        .filter(|(_, created)| date(created).is_some_and(|c| c >= from && c <= to))
        .collect();
    matching.sort_by_key(|(_, created)| date(created));
    let total = matching.len();
    let list: Vec<_> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(id, created)| {
            json!({"orderId": id, "creationDate": created, "clientName": "J C", "totalValue": 7453,
                   "status": "invoiced", "sequence": "502559", "currencyCode": "BRL"})
        })
        .collect();
    axum::Json(json!({
        "list": list,
        "facets": [],
        "paging": {"total": total, "pages": total.div_ceil(per_page), "currentPage": page, "perPage": per_page},
        "stats": {"stats": {}}
    }))
    .into_response()
}
