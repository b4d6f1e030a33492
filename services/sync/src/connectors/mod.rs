//! Connectors: how each source is read. Every call goes through the kit's outbound client
//! (the egress policy on the resolved address, no redirect to another host, capped bodies,
//! errors that never carry the far end's answer).
//!
//! - [`google_ads`]: Google Ads `searchStream` (campaign metrics per day, OAuth).
//! - [`http_json`]: any JSON API (URL, auth header, JSONPath to the records, cursor, paging).
//! - [`facebook_ads`]: Facebook Ads insights (ad and day rows, cursor paging).
//! - [`mercadolibre`]: MercadoLibre orders (OAuth, refresh tokens rotated and kept sealed).
//! - [`vtex`]: VTEX OMS orders (AppKey/AppToken, creation-date window, paging).
//! - [`retry_after`]: 429 and `Retry-After`, honoured ([`fetch_json`] for every connector).

pub mod facebook_ads;
pub mod google_ads;
pub mod http_json;
pub mod mercadolibre;
pub mod retry_after;
pub mod vtex;

use std::time::Duration;

use tenantry_kit::egress::{OutboundError, OutboundHttp};

/// Why a run could not read its source, in our words: never the source's body, never a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("the source's address is refused by the outbound policy")]
    Refused,
    #[error("the source could not be reached: {0}")]
    Unreachable(String),
    #[error("the source answered HTTP {0}")]
    Status(u16),
    #[error("the source refused the credentials (HTTP {0})")]
    TokenRefused(u16),
    #[error("the source kept answering 429 (too many requests)")]
    RateLimited,
    #[error("the source's answer is not usable: {0}")]
    Answer(String),
    #[error("the credentials do not open")]
    Credentials,
    #[error("the source refused to refresh the access token (authorize the integration again)")]
    Refresh,
    /// The tenant's daily API budget (its plan's calls per day) is spent.
    #[error(
        "the tenant's daily API budget ({0} calls) is spent; runs resume on the next day (UTC)"
    )]
    BudgetExhausted(u64),
    #[error("the {0} connector is not built yet")]
    NotBuilt(&'static str),
    #[error("storing records failed")]
    Store(#[from] sqlx::Error),
    /// Ours: new credentials could not be recorded (the run is retried).
    #[error("recording new credentials failed")]
    Unrecorded(String),
}

impl From<OutboundError> for ConnectorError {
    fn from(e: OutboundError) -> Self {
        if e.is_refused() {
            Self::Refused
        } else {
            Self::Unreachable(e.to_string())
        }
    }
}

/// Bounds of a connector's calls.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Longest `Retry-After` honoured (a longer one is waited this long).
    pub max_retry_after: Duration,
    /// 429 answers in a row before the run fails.
    pub max_rate_limited: u32,
    /// Pages read in one run at most.
    pub max_pages: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            max_retry_after: Duration::from_secs(120),
            max_rate_limited: 5,
            max_pages: 10_000,
        }
    }
}

/// Sends the request `build` makes (each call spent from the run's API budget, see
/// [`crate::budget`]), again after each 429 (waiting out `Retry-After`, capped;
/// an exponential wait without one), and answers the JSON body of the first other answer.
/// A non-2xx answer is [`ConnectorError::Status`]; its body is never read into the error.
pub async fn fetch_json(
    http: &OutboundHttp,
    pacing: Pacing,
    build: impl Fn() -> Result<reqwest::RequestBuilder, ConnectorError>,
) -> Result<serde_json::Value, ConnectorError> {
    let mut limited = 0;
    let fetched = loop {
        let request = build()?;
        crate::budget::spend().await?;
        let fetched = http.send(request).await?;
        if fetched.status != http::StatusCode::TOO_MANY_REQUESTS {
            break fetched;
        }
        limited += 1;
        if limited >= pacing.max_rate_limited {
            return Err(ConnectorError::RateLimited);
        }
        let wait = retry_after::parse(&fetched.headers, chrono::Utc::now())
            .unwrap_or(Duration::from_secs(1 << limited.min(6)))
            .min(pacing.max_retry_after);
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "source answered 429; waiting"
        );
        tokio::time::sleep(wait).await;
    };
    if !fetched.status.is_success() {
        // The Graph API answers a bad or expired token with 400 and an OAuthException: a
        // refusal of the credentials whatever the status (only its type is read).
        let oauth = serde_json::from_slice::<serde_json::Value>(&fetched.body)
            .ok()
            .and_then(|b| {
                b.pointer("/error/type")?
                    .as_str()
                    .map(|t| t == "OAuthException")
            })
            .unwrap_or(false);
        return Err(if oauth {
            ConnectorError::TokenRefused(fetched.status.as_u16())
        } else {
            ConnectorError::Status(fetched.status.as_u16())
        });
    }
    serde_json::from_slice(&fetched.body)
        .map_err(|_| ConnectorError::Answer("it is not JSON".into()))
}

/// A header value holding a credential: marked sensitive (never logged by the client).
pub fn secret_header(value: &str) -> Result<http::HeaderValue, ConnectorError> {
    let mut value = http::HeaderValue::from_str(value).map_err(|_| ConnectorError::Credentials)?;
    value.set_sensitive(true);
    Ok(value)
}

/// `application/x-www-form-urlencoded` of `pairs` (a URL's query encoder: reqwest's `form`
/// feature is not built).
pub fn form(pairs: &[(&str, &str)]) -> String {
    // A constant, valid URL: the expect cannot fail.
    #[allow(clippy::expect_used)]
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("a constant URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(
            super::form(&[
                ("grant_type", "refresh_token"),
                ("client_secret", "a&b=c d")
            ]),
            "grant_type=refresh_token&client_secret=a%26b%3Dc+d"
        );
    }
}
