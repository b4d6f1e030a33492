// A test stand-in: its lock is never held across an await.
#![allow(clippy::disallowed_types)]

//! MercadoLibre's API standing in for a seller: `POST /oauth/token` (`grant_type=
//! refresh_token`; refresh tokens single-use, each answer a new pair), `GET /orders/search`
//! (`seller`, `sort=date_asc`, `offset`, `limit`, `order.date_last_updated.from`; `results`
//! and `paging`), `GET /users/me`; a wrong or expired access token gets 401 `invalid_token`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub const CLIENT_ID: &str = "1234567890";
pub const CLIENT_SECRET: &str = "client-secret-test";
pub const SELLER: &str = "202593498";

#[derive(Default)]
pub struct Inner {
    /// (id, last_updated)
    pub orders: Vec<(u64, String)>,
    pub access_token: Option<String>,
    pub refresh_token: String,
    pub issued: u32,
    pub searches: Vec<HashMap<String, String>>,
    pub refreshes: u32,
}

#[derive(Clone)]
pub struct MercadoLibre(pub Arc<Mutex<Inner>>);

impl MercadoLibre {
    /// A seller whose integration was authorized with `refresh_token`.
    pub fn new(refresh_token: &str) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            refresh_token: refresh_token.into(),
            ..Inner::default()
        })))
    }

    pub fn add(&self, id: u64, minute: u32) {
        let updated = format!(
            "2026-01-{:02}T{:02}:{:02}:00.000-04:00",
            1 + minute / 1440,
            minute / 60 % 24,
            minute % 60
        );
        self.0.lock().unwrap().orders.push((id, updated));
    }

    /// The access token expires (the next call with it gets 401).
    pub fn expire(&self) {
        self.0.lock().unwrap().access_token = None;
    }

    pub fn refresh_token(&self) -> String {
        self.0.lock().unwrap().refresh_token.clone()
    }

    pub fn refreshes(&self) -> u32 {
        self.0.lock().unwrap().refreshes
    }

    pub fn searches(&self) -> Vec<HashMap<String, String>> {
        self.0.lock().unwrap().searches.clone()
    }

    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/oauth/token", post(token))
            .route("/orders/search", get(search))
            .route("/users/me", get(me))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

fn invalid_token() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(
            json!({"message": "invalid_token", "error": "not_found", "status": 401, "cause": []}),
        ),
    )
        .into_response()
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok());
    matches!((presented, &inner.access_token), (Some(p), Some(t)) if p == format!("Bearer {t}"))
}

async fn token(State(ml): State<MercadoLibre>, body: String) -> Response {
    let form: HashMap<String, String> = reqwest::Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut inner = ml.0.lock().unwrap();
    let valid = form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("refresh_token") == Some(&inner.refresh_token);
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "invalid_grant", "error_description": "Error validating grant."}),
            ),
        )
            .into_response();
    }
    inner.issued += 1;
    inner.refreshes += 1;
    let access = format!("APP_USR-{}-{}", inner.issued, SELLER);
    let refresh = format!("TG-{}-{}", inner.issued, SELLER);
    inner.access_token = Some(access.clone());
    inner.refresh_token = refresh.clone();
    axum::Json(json!({
        "access_token": access, "token_type": "Bearer", "expires_in": 21600,
        "scope": "offline_access read write", "user_id": SELLER.parse::<u64>().unwrap(),
        "refresh_token": refresh
    }))
    .into_response()
}

async fn search(
    State(ml): State<MercadoLibre>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = ml.0.lock().unwrap();
    inner.searches.push(query.clone());
    if !authorized(&inner, &headers) {
        return invalid_token();
    }
    assert_eq!(query.get("seller").map(String::as_str), Some(SELLER));
    assert_eq!(query.get("sort").map(String::as_str), Some("date_asc"));
    let from = query
        .get("order.date_last_updated.from")
        .cloned()
        .unwrap_or_default();
    let offset: usize = query
        .get("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut matching: Vec<&(u64, String)> = inner.orders.iter().filter(|o| o.1 >= from).collect();
    matching.sort_by(|a, b| a.1.cmp(&b.1));
    let results: Vec<_> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, updated)| {
            json!({"id": id, "status": "paid", "date_created": updated, "last_updated": updated,
                   "total_amount": 120.5, "currency_id": "ARS", "seller": {"id": SELLER.parse::<u64>().unwrap()}})
        })
        .collect();
    axum::Json(json!({
        "query": "", "display": "default",
        "results": results,
        "sort": {"id": "date_asc", "name": "Date ascending"},
        "available_sorts": [], "filters": [],
        "paging": {"total": matching.len(), "offset": offset, "limit": limit}
    }))
    .into_response()
}

async fn me(State(ml): State<MercadoLibre>, headers: HeaderMap) -> Response {
    let inner = ml.0.lock().unwrap();
    if !authorized(&inner, &headers) {
        return invalid_token();
    }
    axum::Json(json!({"id": SELLER.parse::<u64>().unwrap(), "nickname": "TEST_SELLER"}))
        .into_response()
}
