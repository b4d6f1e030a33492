// A test stand-in: its lock is never held across an await.
#![allow(clippy::disallowed_types)]

//! The Graph API's ad-account insights standing in for an advertiser:
//! `GET /act_<id>/insights?level=ad&time_increment=1&time_range={"since","until"}&limit&after`
//! with `Authorization: Bearer`; `data` rows and `paging.cursors` (`paging.next` while more
//! remain); a bad token gets 400 with an `OAuthException` (code 190), as Graph answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub const ACCOUNT: &str = "act_1234567890";
pub const TOKEN: &str = "EAAB-test-token";

#[derive(Default)]
pub struct Inner {
    /// (ad id, day) → clicks
    pub rows: HashMap<(String, String), u64>,
    pub requests: Vec<HashMap<String, String>>,
}

#[derive(Clone, Default)]
pub struct Graph(pub Arc<Mutex<Inner>>);

impl Graph {
    pub fn set(&self, ad: &str, day: &str, clicks: u64) {
        self.0
            .lock()
            .unwrap()
            .rows
            .insert((ad.into(), day.into()), clicks);
    }

    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.0.lock().unwrap().requests.clone()
    }

    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/v19.0/{account}/insights", get(insights))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/v19.0")
    }
}

async fn insights(
    State(graph): State<Graph>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = graph.0.lock().unwrap();
    inner.requests.push(query.clone());
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException", "code": 190, "fbtrace_id": "AbCdEf"}})),
        )
            .into_response();
    }
    assert_eq!(account, ACCOUNT);
    assert_eq!(query["level"], "ad");
    assert_eq!(query["time_increment"], "1");
    let range: serde_json::Value = serde_json::from_str(&query["time_range"]).unwrap();
    let (since, until) = (
        range["since"].as_str().unwrap(),
        range["until"].as_str().unwrap(),
    );
    let limit: usize = query["limit"].parse().unwrap();
    let offset: usize = query
        .get("after")
        .and_then(|a| a.strip_prefix("cursor-"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let mut rows: Vec<_> = inner
        .rows
        .iter()
        .filter(|((_, day), _)| day.as_str() >= since && day.as_str() <= until)
        .collect();
    rows.sort_by(|a, b| (&a.0.1, &a.0.0).cmp(&(&b.0.1, &b.0.0)));
    let data: Vec<_> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|((ad, day), clicks)| {
            json!({"ad_id": ad, "ad_name": format!("Ad {ad}"), "campaign_id": "2385", "impressions": "1000",
                   "clicks": clicks.to_string(), "spend": "12.34", "date_start": day, "date_stop": day})
        })
        .collect();
    let end = offset + data.len();
    let mut paging = json!({"cursors": {"before": format!("cursor-{offset}"), "after": format!("cursor-{end}")}});
    if end < rows.len() {
        paging["next"] = json!(format!(
            "https://graph.facebook.com/v19.0/{account}/insights?after=cursor-{end}"
        ));
    }
    axum::Json(json!({"data": data, "paging": paging})).into_response()
}
