//! Facebook Ads insights: `GET {graph}/act_<id>/insights` at ad level, one row per ad and day
//! (`time_increment=1`) over a `time_range`, `limit` rows a page, cursor paging
//! (`paging.cursors.after`; the last page has no `paging.next`). The access token travels in
//! `Authorization: Bearer`, never in a URL (URLs appear in our errors).
//!
//! Records are rows by `<ad_id>:<date_start>` in the stream `ad_insights`; the cursor is the
//! latest `date_start`. An incremental run starts at that day again (a day's figures keep
//! changing until it is over) and ends today; a full run covers the last [`FULL_DAYS`] days.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use tenantry_kit::egress::OutboundHttp;

use super::{ConnectorError, Pacing, fetch_json, secret_header};
use crate::records::Record;

pub const STREAM: &str = "ad_insights";
pub const LIMIT: u32 = 100;
/// How far back a full run reads.
pub const FULL_DAYS: i64 = 90;
const FIELDS: &str =
    "ad_id,ad_name,adset_id,campaign_id,impressions,clicks,spend,date_start,date_stop";

#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub cursor: Option<String>,
    /// Where the next page starts; `None` on the last page.
    pub after: Option<String>,
}

pub struct FacebookAds<'a> {
    pub http: &'a OutboundHttp,
    pub pacing: Pacing,
    /// `https://graph.facebook.com/v19.0` (or the operator's override).
    pub graph: &'a str,
    pub ad_account_id: &'a str,
    pub access_token: &'a str,
}

/// The days a run reads: from the cursor's day (or [`FULL_DAYS`] ago) to today.
pub fn time_range(cursor: Option<&str>, now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let today = now.date_naive();
    let since = cursor
        .and_then(|c| NaiveDate::parse_from_str(c, "%Y-%m-%d").ok())
        .unwrap_or(today - chrono::Duration::days(FULL_DAYS));
    (since.min(today), today)
}

impl FacebookAds<'_> {
    pub async fn page(
        &self,
        range: (NaiveDate, NaiveDate),
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let mut url =
            reqwest::Url::parse(&format!("{}/{}/insights", self.graph, self.ad_account_id))
                .map_err(|_| ConnectorError::Answer("the Graph URL does not parse".into()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("level", "ad")
                .append_pair("fields", FIELDS)
                .append_pair("time_increment", "1")
                .append_pair(
                    "time_range",
                    &serde_json::json!({"since": range.0.to_string(), "until": range.1.to_string()})
                        .to_string(),
                )
                .append_pair("limit", &limit.to_string());
            if let Some(after) = after {
                q.append_pair("after", after);
            }
        }
        let url = url.to_string();
        let body = fetch_json(self.http, self.pacing, || {
            Ok(self.http.request(http::Method::GET, &url).header(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {}", self.access_token))?,
            ))
        })
        .await?;
        let data = body
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::Answer("no data".into()))?;
        let mut out = Page {
            after: body
                .pointer("/paging/next")
                .and(body.pointer("/paging/cursors/after"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Page::default()
        };
        for row in data {
            let text = |name: &str| {
                row.get(name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
            };
            let (Some(ad), Some(day)) = (text("ad_id"), text("date_start")) else {
                return Err(ConnectorError::Answer(
                    "a row has no ad_id or date_start".into(),
                ));
            };
            if out.cursor.as_deref().is_none_or(|c| day > c) {
                out.cursor = Some(day.to_owned());
            }
            out.records.push(Record {
                external_id: format!("{ad}:{day}"),
                json: row.to_string(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_range_starts_at_the_cursors_day_or_ninety_days_ago() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            time_range(Some("2026-03-08"), now),
            (day("2026-03-08"), day("2026-03-10"))
        );
        assert_eq!(
            time_range(None, now),
            (day("2025-12-10"), day("2026-03-10"))
        );
    }
}
