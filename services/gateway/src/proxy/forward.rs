//! Forwarding a request to a backend over a pooled connection.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use uuid::Uuid;

use super::Body;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub const REQUEST_ID: &str = "x-request-id";

/// The request's host, lower-case, without a port.
pub fn host_of<B>(request: &Request<B>) -> Option<String> {
    let raw = match request.uri().host() {
        Some(h) => h.to_owned(),
        None => request
            .headers()
            .get(header::HOST)?
            .to_str()
            .ok()?
            .to_owned(),
    };
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw.as_str(),
    };
    Some(host.to_ascii_lowercase())
}

/// A request body, cut off (with an error) past the body limit.
type Limited = http_body_util::Limited<Incoming>;

pub struct Upstream {
    client: Client<HttpConnector, Limited>,
}

/// Whether the upstream call failed because the client's body passed the limit.
pub fn body_too_large(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Self { client }
    }

    /// Sends `request` to `backend` (host:port) with forwarding headers added.
    pub async fn send(
        &self,
        request: Request<Incoming>,
        backend: &str,
        host: &str,
        peer: SocketAddr,
        max_body: u64,
    ) -> Result<Response<Body>, hyper_util::client::legacy::Error> {
        let mut request = request.map(|b| {
            http_body_util::Limited::new(b, usize::try_from(max_body).unwrap_or(usize::MAX))
        });
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // Parsed from parts we checked; a failure means a malformed backend address, which
        // validation refuses.
        if let Ok(uri) = Uri::builder()
            .scheme("http")
            .authority(backend)
            .path_and_query(path)
            .build()
        {
            *request.uri_mut() = uri;
        }
        // Upstreams always get HTTP/1.1 here (h2c to backends is not configured).
        *request.version_mut() = http::Version::HTTP_11;
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        let ip = peer.ip().to_string();
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip.clone(),
        };
        set(headers, "x-forwarded-for", &forwarded_for);
        set(headers, "x-forwarded-host", host);
        set(headers, "x-forwarded-proto", "http");
        let node = if peer.is_ipv6() {
            format!("\"[{ip}]\"")
        } else {
            ip
        };
        set(
            headers,
            "forwarded",
            &format!("for={node};host={host};proto=http"),
        );
        let has_id = headers
            .get(REQUEST_ID)
            .is_some_and(|v| !v.is_empty() && v.len() <= 128);
        if !has_id {
            set(headers, REQUEST_ID, &Uuid::now_v7().to_string());
        }
        if let Ok(value) = HeaderValue::from_str(backend) {
            headers.insert(header::HOST, value);
        }
        let response = self.client.request(request).await?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn set(headers: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}
