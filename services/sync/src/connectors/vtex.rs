//! VTEX OMS orders: `GET {base}/api/oms/pvt/orders` with `X-VTEX-API-AppKey` and
//! `X-VTEX-API-AppToken`, ordered by creation date ascending, within a creation-date window
//! (`f_creationDate=creationDate:[from TO to]`), a page at a time (`page`, `per_page`);
//! the answer is `{"list": [...], "paging": {"total", "pages", "currentPage", "perPage"}}`.
//!
//! Records are orders by `orderId` in the stream `orders`; the cursor is the latest
//! `creationDate` seen, and an incremental run asks from it (inclusive: the boundary order is
//! fetched again and upserted without change).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tenantry_kit::egress::OutboundHttp;

use super::{ConnectorError, Pacing, fetch_json, secret_header};
use crate::records::Record;

pub const STREAM: &str = "orders";
/// VTEX's largest page.
pub const PER_PAGE: u32 = 100;
/// Where a full run's window starts.
const EPOCH: &str = "2000-01-01T00:00:00.000Z";

/// One page of orders, the latest creation date among them, and how many pages there are.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub cursor: Option<String>,
    pub pages: u32,
}

pub struct Vtex<'a> {
    pub http: &'a OutboundHttp,
    pub pacing: Pacing,
    /// `https://{account}.{environment}.com.br` (or the operator's override).
    pub base: String,
    pub app_key: &'a str,
    pub app_token: &'a str,
}

/// The account's base URL from the template (`{account}` and `{environment}` replaced).
pub fn base_url(template: &str, account: &str, environment: &str) -> String {
    template
        .replace("{account}", account)
        .replace("{environment}", environment)
        .trim_end_matches('/')
        .to_owned()
}

impl Vtex<'_> {
    /// Page `page` (from 1) of the orders created from `since` (a full run: from the start)
    /// until `until`, `per_page` at a time.
    pub async fn page(
        &self,
        page: u32,
        per_page: u32,
        since: Option<&str>,
        until: DateTime<Utc>,
    ) -> Result<Page, ConnectorError> {
        let window = format!(
            "creationDate:[{} TO {}]",
            since.unwrap_or(EPOCH),
            until.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        let mut url = reqwest::Url::parse(&format!("{}/api/oms/pvt/orders", self.base))
            .map_err(|_| ConnectorError::Answer("the account's URL does not parse".into()))?;
        url.query_pairs_mut()
            .append_pair("orderBy", "creationDate,asc")
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.to_string())
            .append_pair("f_creationDate", &window);
        let url = url.to_string();
        let body = fetch_json(self.http, self.pacing, || {
            Ok(self
                .http
                .request(http::Method::GET, &url)
                .header(http::header::ACCEPT, "application/json")
                .header("X-VTEX-API-AppKey", secret_header(self.app_key)?)
                .header("X-VTEX-API-AppToken", secret_header(self.app_token)?))
        })
        .await?;
        let list = body
            .get("list")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::Answer("no order list".into()))?;
        let mut out = Page {
            pages: body
                .pointer("/paging/pages")
                .and_then(Value::as_u64)
                .map_or(1, |p| u32::try_from(p).unwrap_or(u32::MAX)),
            ..Page::default()
        };
        for order in list {
            let id = order
                .get("orderId")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty() && id.len() <= 512)
                .ok_or_else(|| ConnectorError::Answer("an order has no orderId".into()))?;
            if let Some(created) = order.get("creationDate").and_then(Value::as_str)
                && out.cursor.as_deref().is_none_or(|c| created > c)
            {
                out.cursor = Some(created.to_owned());
            }
            out.records.push(Record {
                external_id: id.to_owned(),
                json: order.to_string(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_base_url_is_the_accounts() {
        assert_eq!(
            super::base_url(
                "https://{account}.{environment}.com.br",
                "chelseaio",
                "vtexcommercestable"
            ),
            "https://chelseaio.vtexcommercestable.com.br"
        );
        assert_eq!(
            super::base_url("http://127.0.0.1:9/", "a", "b"),
            "http://127.0.0.1:9"
        );
    }
}
