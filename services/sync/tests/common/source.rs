// A test stand-in: its lock is never held across an await.
#![allow(clippy::disallowed_types)]

//! A JSON API standing in for a tenant's source: items under `data.items`, two per page
//! (`?page=`), filtered by `?updated_since=` (items updated strictly after it), behind a
//! bearer token; it can answer 429 with `Retry-After` first.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub const TOKEN: &str = "Bearer source-token";
pub const PAGE_SIZE: usize = 2;

#[derive(Default)]
pub struct Inner {
    /// (id, updated, name)
    pub items: Vec<(u32, String, String)>,
    /// Query strings received, in order.
    pub requests: Vec<String>,
    /// 429s to answer before serving again.
    pub rate_limit: u32,
    pub retry_after: String,
    /// The `Authorization` value it accepts (default [`TOKEN`]).
    pub token: Option<String>,
    /// A page that does not answer (a source stuck mid-run) while set.
    pub hang_on_page: Option<usize>,
    /// Every answer takes this long.
    pub delay_ms: u64,
    pub in_flight: usize,
    /// The most requests it was answering at once.
    pub max_in_flight: usize,
}

#[derive(Clone, Default)]
pub struct Source(pub Arc<Mutex<Inner>>);

impl Source {
    pub fn add(&self, id: u32, updated: &str, name: &str) {
        let mut inner = self.0.lock().unwrap();
        inner.items.retain(|i| i.0 != id);
        inner.items.push((id, updated.into(), name.into()));
        inner.items.sort_by(|a, b| a.1.cmp(&b.1));
    }

    pub fn expect_token(&self, token: &str) {
        self.0.lock().unwrap().token = Some(token.into());
    }

    pub fn delay(&self, ms: u64) {
        self.0.lock().unwrap().delay_ms = ms;
    }

    pub fn max_in_flight(&self) -> usize {
        self.0.lock().unwrap().max_in_flight
    }

    pub fn hang_on_page(&self, page: Option<usize>) {
        self.0.lock().unwrap().hang_on_page = page;
    }

    pub fn requests(&self) -> Vec<String> {
        self.0.lock().unwrap().requests.clone()
    }

    pub fn rate_limit(&self, times: u32, retry_after: &str) {
        let mut inner = self.0.lock().unwrap();
        inner.rate_limit = times;
        inner.retry_after = retry_after.into();
    }

    /// Serves on a loopback port; answers the URL of its items.
    pub async fn serve(&self) -> (SocketAddr, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/v1/items", get(items))
            .route(
                "/redirect",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        [("location", "http://169.254.169.254/latest/meta-data/")],
                    )
                }),
            )
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, format!("http://{addr}/v1/items"))
    }
}

async fn items(
    State(source): State<Source>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let (hang, delay) = {
        let mut inner = source.0.lock().unwrap();
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        (inner.hang_on_page == Some(page), inner.delay_ms)
    };
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    source.0.lock().unwrap().in_flight -= 1;
    let mut inner = source.0.lock().unwrap();
    let mut shown: Vec<_> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    shown.sort();
    inner.requests.push(shown.join("&"));
    if inner.rate_limit > 0 {
        inner.rate_limit -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", inner.retry_after.clone())],
            "slow down",
        )
            .into_response();
    }
    let expected = inner.token.clone().unwrap_or_else(|| TOKEN.into());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, "who are you").into_response();
    }
    let since = query.get("updated_since").cloned().unwrap_or_default();
    let matching: Vec<Value> = inner
        .items
        .iter()
        .filter(|i| i.1 > since)
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|(id, updated, name)| json!({"id": id, "updated_at": updated, "name": name}))
        .collect();
    axum::Json(json!({"data": {"items": matching}, "page": page})).into_response()
}
