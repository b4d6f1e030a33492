//! MercadoLibre orders: `GET {api}/orders/search?seller=<id>&sort=date_asc` (by last update,
//! `order.date_last_updated.from`), `offset`/`limit` paging, with an OAuth access token
//! (`Authorization: Bearer`). An expired token (401) is refreshed at
//! `POST {api}/oauth/token` (`grant_type=refresh_token`); MercadoLibre's refresh tokens are
//! single-use, so the new pair is sealed and recorded on the integration before it is used
//! ([`Tokens`]), or a crash would leave only a spent refresh token.
//!
//! Records are orders by `id` in the stream `orders`; the cursor is the latest `last_updated`.

use serde_json::Value;
use tenantry_kit::egress::OutboundHttp;

use super::{ConnectorError, Pacing, fetch_json, form, secret_header};
use crate::records::Record;

pub const STREAM: &str = "orders";
/// MercadoLibre's largest page of orders.
pub const LIMIT: u32 = 50;

/// The OAuth client and its current tokens (the integration's credentials).
#[derive(Debug, Clone)]
pub struct Tokens {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// Empty until the first refresh.
    pub access_token: String,
}

#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub cursor: Option<String>,
    /// All orders matching the search (for the offset of the next page).
    pub total: u64,
}

pub struct MercadoLibre<'a> {
    pub http: &'a OutboundHttp,
    pub pacing: Pacing,
    /// `https://api.mercadolibre.com` (or the operator's override).
    pub api: &'a str,
    pub seller_id: &'a str,
}

impl MercadoLibre<'_> {
    /// Orders updated from `since`, `limit` from `offset`, with `access_token`.
    pub async fn page(
        &self,
        access_token: &str,
        offset: u64,
        limit: u32,
        since: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}/orders/search", self.api))
            .map_err(|_| ConnectorError::Answer("the API URL does not parse".into()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("seller", self.seller_id)
                .append_pair("sort", "date_asc")
                .append_pair("offset", &offset.to_string())
                .append_pair("limit", &limit.to_string());
            if let Some(since) = since {
                q.append_pair("order.date_last_updated.from", since);
            }
        }
        let url = url.to_string();
        let body = fetch_json(self.http, self.pacing, || {
            Ok(self
                .http
                .request(http::Method::GET, &url)
                .header(http::header::ACCEPT, "application/json")
                .header(
                    http::header::AUTHORIZATION,
                    secret_header(&format!("Bearer {access_token}"))?,
                ))
        })
        .await?;
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::Answer("no results".into()))?;
        let mut out = Page {
            total: body
                .pointer("/paging/total")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            ..Page::default()
        };
        for order in results {
            let id = match order.get("id") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => s.clone(),
                _ => return Err(ConnectorError::Answer("an order has no id".into())),
            };
            if let Some(updated) = order.get("last_updated").and_then(Value::as_str)
                && out.cursor.as_deref().is_none_or(|c| updated > c)
            {
                out.cursor = Some(updated.to_owned());
            }
            out.records.push(Record {
                external_id: id,
                json: order.to_string(),
            });
        }
        Ok(out)
    }

    /// A new access token and refresh token for `tokens` (the old refresh token is spent).
    pub async fn refresh(&self, tokens: &Tokens) -> Result<Tokens, ConnectorError> {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &tokens.client_id),
            ("client_secret", &tokens.client_secret),
            ("refresh_token", &tokens.refresh_token),
        ]);
        let url = format!("{}/oauth/token", self.api);
        let answer = fetch_json(self.http, self.pacing, || {
            Ok(self
                .http
                .request(http::Method::POST, &url)
                .header(http::header::ACCEPT, "application/json")
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone()))
        })
        .await
        .map_err(|e| match e {
            ConnectorError::Status(400 | 401 | 403) => ConnectorError::Refresh,
            other => other,
        })?;
        let field = |name: &str| {
            answer
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ConnectorError::Answer(format!("the token answer has no {name}")))
        };
        Ok(Tokens {
            client_id: tokens.client_id.clone(),
            client_secret: tokens.client_secret.clone(),
            access_token: field("access_token")?,
            refresh_token: field("refresh_token")?,
        })
    }

    /// One cheap call with `access_token`: who it belongs to.
    pub async fn me(&self, access_token: &str) -> Result<(), ConnectorError> {
        let url = format!("{}/users/me", self.api);
        fetch_json(self.http, self.pacing, || {
            Ok(self.http.request(http::Method::GET, &url).header(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {access_token}"))?,
            ))
        })
        .await
        .map(|_| ())
    }
}
