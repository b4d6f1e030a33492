//! The one HTTP client for calls made on a tenant's word (domain proofs, OIDC discovery,
//! token and JWKS fetches): every address it connects to passes the [`Egress`] policy, it
//! follows no redirect to another host, reads at most a capped body within a deadline, and
//! its errors never carry what the far end answered.
//!
//! How each address is judged:
//! - before sending, the URL's host is resolved and every address (with the port) checked,
//!   the platform's own sockets included;
//! - at connect time reqwest resolves names through [`PolicyResolver`], which drops refused
//!   addresses, so a name that changes its answer in between (DNS rebinding) still reaches
//!   only an allowed network (IP literals are not resolved: the check before sending is theirs);
//! - after the answer, the peer reqwest actually reached is checked once more, and the answer
//!   dropped unread if it is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::dial::{Egress, EgressError};

/// Bounds of one outbound call.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// From sending the request to the body's last byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Larger answers are refused (read no further).
    pub max_body_bytes: usize,
    /// Redirects followed, all to the URL's own host.
    pub max_redirects: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_body_bytes: 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// Why an outbound call failed; never holds the far end's answer.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0:?} is not an http or https URL with a host")]
    BadUrl(String),
    #[error("{0}")]
    Refused(#[from] EgressError),
    #[error("{url}: a redirect to another host or port is not followed")]
    Redirect { url: String },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: {reason}")]
    Failed { url: String, reason: &'static str },
}

impl OutboundError {
    /// The policy refused the target (as opposed to the network failing).
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(e) if e.is_denied())
    }
}

/// An answer, read whole (up to the cap).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// The outbound HTTP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboundHttp {
    client: reqwest::Client,
    egress: Arc<Egress>,
    limits: HttpLimits,
}

impl OutboundHttp {
    pub fn new(egress: Arc<Egress>, limits: HttpLimits) -> Result<Self, OutboundError> {
        crate::install_crypto();
        let max_redirects = limits.max_redirects;
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.connect_timeout)
            // A proxy from the environment would be the one connecting, past the policy.
            .no_proxy()
            .dns_resolver(PolicyResolver {
                egress: egress.clone(),
            })
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let Some(first) = attempt.previous().first() else {
                    return attempt.stop();
                };
                if attempt.previous().len() > max_redirects {
                    attempt.error("too many redirects")
                } else if same_host(first, attempt.url()) {
                    attempt.follow()
                } else {
                    attempt.error("redirect to another host")
                }
            }))
            .user_agent("tenantry")
            .build()
            .map_err(|_| OutboundError::Failed {
                url: String::new(),
                reason: "the HTTP client could not be built",
            })?;
        Ok(Self {
            client,
            egress,
            limits,
        })
    }

    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// A request to build with reqwest's builder, then [`OutboundHttp::send`].
    pub fn request(&self, method: http::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    pub async fn get(&self, url: &str) -> Result<Fetched, OutboundError> {
        self.send(self.request(http::Method::GET, url)).await
    }

    /// Sends `request` under the policy and reads its answer (any status).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Fetched, OutboundError> {
        let request = request.build().map_err(|_| OutboundError::Failed {
            url: String::new(),
            reason: "not a valid request",
        })?;
        let url = request.url().clone();
        let shown = url.as_str().to_owned();
        let (host, port) = match (url.scheme(), url.host_str(), url.port_or_known_default()) {
            ("http" | "https", Some(host), Some(port)) => (host.to_owned(), port),
            _ => return Err(OutboundError::BadUrl(shown)),
        };
        self.egress.check_all(&host, port).await?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.failure(&shown, &e))?;
        if let Some(peer) = response.remote_addr() {
            self.egress
                .policy()
                .check(peer)
                .map_err(|reason| EgressError::Denied {
                    target: format!("{host}:{port}"),
                    addr: peer,
                    reason,
                })?;
        }
        let status = response.status();
        let headers = response.headers().clone();
        let limit = self.limits.max_body_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(OutboundError::TooLarge { url: shown, limit });
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.failure(&shown, &e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(OutboundError::TooLarge { url: shown, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            headers,
            body,
        })
    }

    fn failure(&self, url: &str, e: &reqwest::Error) -> OutboundError {
        let url = url.to_owned();
        if e.is_redirect() {
            OutboundError::Redirect { url }
        } else if e.is_timeout() {
            OutboundError::Timeout {
                url,
                timeout: self.limits.timeout,
            }
        } else if e.is_connect() {
            OutboundError::Failed {
                url,
                reason: "could not connect (or every address was refused by the egress policy)",
            }
        } else {
            OutboundError::Failed {
                url,
                reason: "the exchange failed",
            }
        }
    }
}

/// Same host, and the same port or an upgrade to https on its default port.
fn same_host(first: &reqwest::Url, next: &reqwest::Url) -> bool {
    let same_port = first.port_or_known_default() == next.port_or_known_default()
        || (next.scheme() == "https" && next.port().is_none());
    first.host_str().map(str::to_ascii_lowercase) == next.host_str().map(str::to_ascii_lowercase)
        && same_port
        && matches!(next.scheme(), "http" | "https")
}

/// reqwest's resolver: the egress resolver's answer without the refused addresses (the port is
/// not known here: addresses are judged by network, and the platform's own sockets were
/// judged before sending and are judged again on the peer reached).
struct PolicyResolver {
    egress: Arc<Egress>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.egress.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = egress.resolver().lookup(&host, 0).await?;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| {
                    if a.port() == 0 {
                        egress.policy().check_ip(a.ip()).is_ok()
                    } else {
                        egress.policy().check(*a).is_ok()
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(
                    format!("{host}: every address is refused by the egress policy").into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
