//! Google Ads: `POST {ads}/customers/<id>/googleAds:searchStream` with a GAQL query for
//! campaign metrics per day, headers `developer-token`, `Authorization: Bearer` and (through a
//! manager account) `login-customer-id`. The answer is a JSON array of batches, each with
//! `results`; there is no paging (the stream is the whole answer).
//!
//! The access token comes from Google's OAuth token endpoint (`grant_type=refresh_token`;
//! Google's refresh tokens are not rotated, so nothing is written back): one at the start of
//! each run, and once more if the API answers 401 meanwhile. Rows by
//! `<campaign id>:<segments.date>` in the stream `campaign_metrics`; the cursor is the latest
//! date, and the days are chosen as for Facebook Ads (from the cursor's day, or 90 days back).

use chrono::NaiveDate;
use serde_json::Value;
use tenantry_kit::egress::OutboundHttp;

use super::{ConnectorError, Pacing, fetch_json, form, secret_header};
use crate::records::Record;

pub const STREAM: &str = "campaign_metrics";

pub struct GoogleAds<'a> {
    pub http: &'a OutboundHttp,
    pub pacing: Pacing,
    /// `https://googleads.googleapis.com/v17` (or the operator's override).
    pub api: &'a str,
    /// `https://oauth2.googleapis.com/token` (or the operator's override).
    pub token_url: &'a str,
    pub customer_id: &'a str,
    pub login_customer_id: &'a str,
    pub developer_token: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub refresh_token: &'a str,
}

#[derive(Debug, Default)]
pub struct Rows {
    pub records: Vec<Record>,
    pub cursor: Option<String>,
}

impl GoogleAds<'_> {
    /// A fresh access token.
    pub async fn access_token(&self) -> Result<String, ConnectorError> {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id),
            ("client_secret", self.client_secret),
            ("refresh_token", self.refresh_token),
        ]);
        let answer = fetch_json(self.http, self.pacing, || {
            Ok(self
                .http
                .request(http::Method::POST, self.token_url)
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
        answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::Answer("the token answer has no access_token".into()))
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &str,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let mut request = request
            .header(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {access_token}"))?,
            )
            .header("developer-token", secret_header(self.developer_token)?);
        if !self.login_customer_id.is_empty() {
            request = request.header("login-customer-id", self.login_customer_id);
        }
        Ok(request)
    }

    /// Campaign metrics per day from `range.0` to `range.1`.
    pub async fn campaign_days(
        &self,
        access_token: &str,
        range: (NaiveDate, NaiveDate),
    ) -> Result<Rows, ConnectorError> {
        // Dates are formatted by us, never taken from a tenant: nothing to escape in the query.
        let query = format!(
            "SELECT campaign.id, campaign.name, campaign.status, segments.date, metrics.clicks, \
             metrics.impressions, metrics.cost_micros, metrics.conversions FROM campaign \
             WHERE segments.date BETWEEN '{}' AND '{}' ORDER BY segments.date",
            range.0, range.1
        );
        let url = format!(
            "{}/customers/{}/googleAds:searchStream",
            self.api, self.customer_id
        );
        let body = fetch_json(self.http, self.pacing, || {
            self.authorized(self.http.request(http::Method::POST, &url), access_token)
                .map(|r| r.json(&serde_json::json!({ "query": query })))
        })
        .await?;
        let batches = body
            .as_array()
            .ok_or_else(|| ConnectorError::Answer("not a stream of batches".into()))?;
        let mut out = Rows::default();
        for batch in batches {
            let results = batch.get("results").and_then(Value::as_array);
            for row in results.into_iter().flatten() {
                let campaign = row.pointer("/campaign/id").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                let day = row.pointer("/segments/date").and_then(Value::as_str);
                let (Some(campaign), Some(day)) = (campaign, day) else {
                    return Err(ConnectorError::Answer(
                        "a row has no campaign id or date".into(),
                    ));
                };
                if out.cursor.as_deref().is_none_or(|c| day > c) {
                    out.cursor = Some(day.to_owned());
                }
                out.records.push(Record {
                    external_id: format!("{campaign}:{day}"),
                    json: row.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// One cheap call: the customers the credentials reach.
    pub async fn accessible_customers(&self, access_token: &str) -> Result<(), ConnectorError> {
        let url = format!("{}/customers:listAccessibleCustomers", self.api);
        fetch_json(self.http, self.pacing, || {
            self.authorized(self.http.request(http::Method::GET, &url), access_token)
        })
        .await
        .map(|_| ())
    }
}
