//! Connectors: how each source is read. Every call goes through the kit's outbound client
//! (the egress policy on the resolved address, no redirect to another host, capped bodies,
//! errors that never carry the far end's answer).
//!
//! - [`http_json`]: any JSON API (URL, auth header, JSONPath to the records, cursor, paging).
//! - [`retry_after`]: 429 and `Retry-After`, honoured.

pub mod http_json;
pub mod retry_after;

use std::time::Duration;

use tenantry_kit::egress::OutboundError;

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
    #[error("the source kept answering 429 (too many requests)")]
    RateLimited,
    #[error("the source's answer is not usable: {0}")]
    Answer(String),
    #[error("the credentials do not open")]
    Credentials,
    #[error("the {0} connector is not built yet")]
    NotBuilt(&'static str),
    #[error("storing records failed")]
    Store(#[from] sqlx::Error),
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
