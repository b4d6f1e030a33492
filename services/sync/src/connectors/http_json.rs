//! The generic JSON source: GET a URL (with the tenant's auth header), take the records at a
//! JSONPath, each identified by a field; page by a page-number parameter; resume from the
//! largest value of a cursor field.
//!
//! Request `n` of a run is `url?<cursor_param>=<cursor>&<page_param>=<n>` (each parameter
//! only when configured; the cursor only on an incremental run that has one). Paging ends at
//! the first page without records.

use std::cmp::Ordering;

use serde_json::Value;
use serde_json_path::JsonPath;
use tenantry_kit::egress::OutboundHttp;
use tenantry_proto::events::v1::HttpJsonConfig;

use super::{ConnectorError, Pacing, fetch_json, secret_header};
use crate::records::Record;

/// One page of records, and the largest cursor value among them.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub cursor: Option<String>,
}

pub struct HttpJson<'a> {
    pub http: &'a OutboundHttp,
    pub pacing: Pacing,
    pub config: &'a HttpJsonConfig,
    /// The `auth_value` credential, sent in `auth_header`.
    pub auth_value: Option<&'a str>,
}

impl HttpJson<'_> {
    /// Page `page` (from 1), the cursor sent when there is one.
    pub async fn page(&self, page: u32, cursor: Option<&str>) -> Result<Page, ConnectorError> {
        let path = JsonPath::parse(&self.config.records_path)
            .map_err(|_| ConnectorError::Answer("the records path is not a JSONPath".into()))?;
        let mut url = reqwest::Url::parse(&self.config.url)
            .map_err(|_| ConnectorError::Answer("the URL does not parse".into()))?;
        {
            let mut query = url.query_pairs_mut();
            if let (Some(cursor), false) = (cursor, self.config.cursor_param.is_empty()) {
                query.append_pair(&self.config.cursor_param, cursor);
            }
            if !self.config.page_param.is_empty() {
                query.append_pair(&self.config.page_param, &page.to_string());
            }
        }
        let url = url.to_string();
        let body = fetch_json(self.http, self.pacing, || {
            let mut request = self
                .http
                .request(http::Method::GET, &url)
                .header(http::header::ACCEPT, "application/json");
            if let (Some(value), false) = (self.auth_value, self.config.auth_header.is_empty()) {
                request = request.header(self.config.auth_header.as_str(), secret_header(value)?);
            }
            Ok(request)
        })
        .await?;
        let mut out = Page::default();
        for node in path.query(&body).all() {
            // `$.items` names the array itself; `$.items[*]` its elements.
            let items: Vec<&Value> = match node {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for item in items {
                out.records.push(self.record(item)?);
                if let Some(c) = self.cursor_of(item)
                    && out.cursor.as_deref().is_none_or(|best| later(&c, best))
                {
                    out.cursor = Some(c);
                }
            }
        }
        Ok(out)
    }

    fn record(&self, item: &Value) -> Result<Record, ConnectorError> {
        let external_id = match item.get(&self.config.id_field) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(ConnectorError::Answer(format!(
                    "a record has no usable {:?}",
                    self.config.id_field
                )));
            }
        };
        Ok(Record {
            external_id,
            json: item.to_string(),
        })
    }

    fn cursor_of(&self, item: &Value) -> Option<String> {
        if self.config.cursor_field.is_empty() {
            return None;
        }
        match item.get(&self.config.cursor_field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Whether cursor `a` is past `b`: numerically when both are numbers, else as text (ISO 8601
/// timestamps order as text).
pub fn later(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y) == Some(Ordering::Greater),
        _ => a > b,
    }
}

#[cfg(test)]
mod tests {
    use super::later;

    #[test]
    fn cursors_order_as_numbers_or_as_text() {
        assert!(later("10", "9"));
        assert!(!later("9", "10"));
        assert!(later("2026-01-02T00:00:00Z", "2026-01-01T23:59:59Z"));
    }
}
