// A test stand-in: its lock is never held across an await.
#![allow(clippy::disallowed_types)]

//! Google's OAuth token endpoint and the Google Ads API standing in for an advertiser:
//! `POST /token` (`grant_type=refresh_token`), `POST /v17/customers/<id>/googleAds:searchStream`
//! (a GAQL query; the answer a JSON array of `results` batches) and
//! `GET /v17/customers:listAccessibleCustomers`, with `developer-token` and a Bearer token
//! (401 `UNAUTHENTICATED` otherwise, or once when told the token expired).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub const CUSTOMER: &str = "1234567890";
pub const DEVELOPER_TOKEN: &str = "dev-token-test";
pub const CLIENT_ID: &str = "123-abc.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-test";
pub const REFRESH_TOKEN: &str = "1//refresh-test";

#[derive(Default)]
pub struct Inner {
    /// (campaign id, day) → clicks
    pub rows: HashMap<(u64, String), u64>,
    pub tokens: Vec<String>,
    pub expire_next: bool,
    pub queries: Vec<String>,
    pub refreshes: u32,
}

#[derive(Clone, Default)]
pub struct Google(pub Arc<Mutex<Inner>>);

impl Google {
    pub fn set(&self, campaign: u64, day: &str, clicks: u64) {
        self.0
            .lock()
            .unwrap()
            .rows
            .insert((campaign, day.into()), clicks);
    }

    /// The next API call's token is found expired.
    pub fn expire_next(&self) {
        self.0.lock().unwrap().expire_next = true;
    }

    pub fn refreshes(&self) -> u32 {
        self.0.lock().unwrap().refreshes
    }

    pub fn queries(&self) -> Vec<String> {
        self.0.lock().unwrap().queries.clone()
    }

    /// Serves both; answers (the API with its version, the token URL).
    pub async fn serve(&self) -> (String, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/token", post(token))
            .route(
                "/v17/customers/{customer}/googleAds:searchStream",
                post(search_stream),
            )
            .route("/v17/customers:listAccessibleCustomers", get(accessible))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/v17"), format!("http://{addr}/token"))
    }
}

async fn token(State(g): State<Google>, body: String) -> Response {
    let form: HashMap<String, String> = reqwest::Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut inner = g.0.lock().unwrap();
    let valid = form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("refresh_token").map(String::as_str) == Some(REFRESH_TOKEN);
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "Bad Request"})),
        )
            .into_response();
    }
    inner.refreshes += 1;
    let token = format!("ya29.test-{}", inner.refreshes);
    inner.tokens.push(token.clone());
    axum::Json(json!({"access_token": token, "expires_in": 3599,
        "scope": "https://www.googleapis.com/auth/adwords", "token_type": "Bearer"}))
    .into_response()
}

fn unauthenticated() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials."}})),
    )
        .into_response()
}

fn authorized(inner: &mut Inner, headers: &HeaderMap) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    if std::mem::take(&mut inner.expire_next) {
        return false;
    }
    header("developer-token") == DEVELOPER_TOKEN
        && inner
            .tokens
            .iter()
            .any(|t| header("authorization") == format!("Bearer {t}"))
}

async fn search_stream(
    State(g): State<Google>,
    Path(customer): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let mut inner = g.0.lock().unwrap();
    let query = body["query"].as_str().unwrap().to_owned();
    inner.queries.push(query.clone());
    if !authorized(&mut inner, &headers) {
        return unauthenticated();
    }
    assert_eq!(customer, CUSTOMER);
    let between = query.split("BETWEEN '").nth(1).unwrap();
    let since = &between[..10];
    let until = between.split("AND '").nth(1).map(|s| &s[..10]).unwrap();
    let mut rows: Vec<_> = inner
        .rows
        .iter()
        .filter(|((_, day), _)| day.as_str() >= since && day.as_str() <= until)
        .collect();
    rows.sort_by(|a, b| (&a.0.1, a.0.0).cmp(&(&b.0.1, b.0.0)));
    let results: Vec<_> = rows
        .iter()
        .map(|((campaign, day), clicks)| {
            json!({"campaign": {"resourceName": format!("customers/{CUSTOMER}/campaigns/{campaign}"),
                                "id": campaign.to_string(), "name": format!("Campaign {campaign}"), "status": "ENABLED"},
                   "metrics": {"clicks": clicks.to_string(), "impressions": "1000", "costMicros": "1230000", "conversions": 1.0},
                   "segments": {"date": day}})
        })
        .collect();
    // The stream in batches, as the API sends it.
    let batches: Vec<_> = results
        .chunks(10)
        .map(|chunk| json!({"results": chunk, "fieldMask": "campaign.id,campaign.name,segments.date,metrics.clicks", "requestId": "req-1"}))
        .collect();
    axum::Json(json!(batches)).into_response()
}

async fn accessible(State(g): State<Google>, headers: HeaderMap) -> Response {
    let mut inner = g.0.lock().unwrap();
    if !authorized(&mut inner, &headers) {
        return unauthenticated();
    }
    axum::Json(json!({"resourceNames": [format!("customers/{CUSTOMER}")]})).into_response()
}
