//! A JSON API standing in for tenants' sources, speaking what sync's `http_json` connector
//! reads: records under `data.items`, `?page=` from 1 (a page without items ends the run),
//! `?updated_since=` (items updated strictly after it), behind a bearer token.
//!
//! - `/big/items`: one catalogue of `--records` items in pages rendered before the clock
//!   starts (the source costs the run as little as it can on this shared machine);
//! - `/feed/{n}/items`: feed `n` holds items 1..=count, each `updated_at` its id; the bench
//!   adds items to a feed, and hears every request (feed, page, when) on a channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio::sync::mpsc;

pub const TOKEN: &str = "Bearer bench-source-token";
/// A feed's page size.
pub const FEED_PAGE: u32 = 100;

/// A request a feed answered: the feed, the page, and when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub feed: usize,
    pub page: u32,
    pub at: SystemTime,
}

#[derive(Clone)]
pub struct Source {
    big: Arc<Vec<Bytes>>,
    feeds: Arc<Vec<AtomicU32>>,
    seen: mpsc::UnboundedSender<Seen>,
}

impl Source {
    /// `records` catalogue items in pages of `page_size`; `feeds` feeds (empty at first).
    /// Answers the source and the channel of requests its feeds answered.
    pub fn new(
        records: usize,
        page_size: usize,
        feeds: usize,
    ) -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (seen, heard) = mpsc::unbounded_channel();
        let ids: Vec<usize> = (1..=records).collect();
        let big = ids
            .chunks(page_size.max(1))
            .map(|chunk| {
                let items: Vec<String> = chunk.iter().map(|&i| item(i)).collect();
                Bytes::from(format!(r#"{{"data":{{"items":[{}]}}}}"#, items.join(",")))
            })
            .collect();
        let source = Self {
            big: Arc::new(big),
            feeds: Arc::new((0..feeds).map(|_| AtomicU32::new(0)).collect()),
            seen,
        };
        (source, heard)
    }

    /// Adds one item to feed `n`; answers its id.
    pub fn add(&self, n: usize) -> u32 {
        self.feeds[n].fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The bytes of the catalogue's pages (what a full run downloads).
    pub fn big_bytes(&self) -> usize {
        self.big.iter().map(Bytes::len).sum()
    }

    /// Serves on a loopback port; answers its address.
    pub async fn serve(&self) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/big/items", get(big))
            .route("/feed/{n}/items", get(feed))
            .with_state(self.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("the stand-in source stopped: {e}");
            }
        });
        Ok(addr)
    }
}

/// A catalogue item (about 200 bytes of JSON, like an order line or a product).
pub fn item(i: usize) -> String {
    format!(
        r#"{{"id":{i},"updated_at":{i},"sku":"SKU-{i:08}","name":"Bench product {i}","price_cents":{},"quantity":{},"status":"ready-for-handling","warehouse":"wh-{}","tags":["bench","sync"]}}"#,
        (i * 37) % 100_000,
        i % 17,
        i % 5
    )
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(TOKEN)
}

fn page_of(query: &std::collections::HashMap<String, String>) -> u32 {
    query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1)
}

const EMPTY: &str = r#"{"data":{"items":[]}}"#;

async fn big(
    State(source): State<Source>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "who are you").into_response();
    }
    let page = page_of(&query) as usize;
    let body = source
        .big
        .get(page - 1)
        .cloned()
        .unwrap_or(Bytes::from_static(EMPTY.as_bytes()));
    ([("content-type", "application/json")], body).into_response()
}

async fn feed(
    State(source): State<Source>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let at = SystemTime::now();
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "who are you").into_response();
    }
    let Some(count) = source.feeds.get(n).map(|c| c.load(Ordering::SeqCst)) else {
        return (StatusCode::NOT_FOUND, "no such feed").into_response();
    };
    let page = page_of(&query);
    let _ = source.seen.send(Seen { feed: n, page, at });
    let since: u32 = query
        .get("updated_since")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let first = since + 1 + (page - 1) * FEED_PAGE;
    let last = count.min(first.saturating_add(FEED_PAGE - 1));
    let items: Vec<String> = (first..=last).map(|i| item(i as usize)).collect();
    (
        [("content-type", "application/json")],
        format!(r#"{{"data":{{"items":[{}]}}}}"#, items.join(",")),
    )
        .into_response()
}
