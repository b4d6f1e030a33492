//! Forwarding a request to a backend over a pooled connection.
//!
//! This is the hot path: header names are constants, the backend's authority is parsed once
//! when the snapshot is built, and the only allocations per request are the forwarding
//! headers' values.
//!
//! Forwarding headers say what the gateway saw: the client's address, the host the request
//! was routed by (for an absolute-form request the URI's, not the `Host` header's) and the
//! scheme. What a client sent in `X-Forwarded-*`, `Forwarded`, `X-Real-IP` or
//! `True-Client-IP` is dropped unless it is a trusted proxy ([`super::trust`]), whose
//! headers are kept and appended to.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, Entry, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use uuid::Uuid;

use super::Body;
use super::pool::{ConnectError, Limited, Pool, Returning};
use crate::snapshot::BackendState;
use tenantry_kit::connections::{Activity, Admitted};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REAL_IP: &str = "x-real-ip";
const TRUE_CLIENT_IP: &str = "true-client-ip";
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The request's host, lower-case, without a port (borrowed when it already is).
pub fn host_of<B>(request: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = match request.uri().host() {
        Some(h) => h,
        None => request.headers().get(header::HOST)?.to_str().ok()?,
    };
    let host = match raw.rfind(':') {
        Some(i) if raw.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit) => &raw[..i],
        _ => raw,
    };
    // Without an early exit, so that it runs over several bytes at once.
    let upper = host
        .bytes()
        .fold(false, |upper, b| upper | b.is_ascii_uppercase());
    if upper {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

/// One worker's way to the backends.
pub struct Upstream {
    pool: Arc<Pool>,
    /// The worker's deadlines (its client connections' header-read timeouts use it too).
    pub timer: super::timer::Coarse,
    /// Longest wait for a backend's response head (504 beyond).
    pub response_timeout: Duration,
}

/// `Connection: upgrade` with an `Upgrade` header.
pub(crate) fn is_upgrade(headers: &http::HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether the upstream call failed because the client's body passed the limit.
pub fn body_too_large(e: &hyper::Error) -> bool {
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
        Self::new(Duration::from_secs(60))
    }
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("backend address {0} is not an authority")]
    Address(String),
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the backend's answer: {0}")]
    Upstream(#[from] hyper::Error),
}

impl SendError {
    pub fn body_too_large(&self) -> bool {
        matches!(self, Self::Upstream(e) if body_too_large(e))
    }

    /// Whether the client's body missed its deadline ([`super::body::BodyTimeout`]).
    pub fn body_timed_out(&self) -> bool {
        matches!(self, Self::Upstream(e) if super::body::timed_out(e))
    }
}

/// A client connection's far end, with its address rendered once for every request on it.
#[derive(Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The IP address as a header value (`X-Forwarded-For`).
    ip: HeaderValue,
    /// A trusted proxy: its forwarding headers are kept.
    pub trusted: bool,
    /// Requests started and finished on the connection (its idle deadline reads them).
    pub activity: Activity,
    /// The connection's place under the connection caps, held as long as anything holds the
    /// peer: its requests and, after an upgrade, the tunnel.
    _admitted: Option<Admitted>,
}

impl Peer {
    pub fn new(addr: SocketAddr, trusted: bool, admitted: Option<Admitted>) -> Self {
        let ip = HeaderValue::from_str(&addr.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            addr,
            ip,
            trusted,
            activity: Activity::default(),
            _admitted: admitted,
        }
    }
}

/// The client's and the backend's sides of an upgraded connection, to splice: what a `101`
/// response carries in its extensions from [`Upstream::send`] to the proxy.
#[derive(Clone)]
pub struct Splice {
    pub client: hyper::upgrade::OnUpgrade,
    pub backend: hyper::upgrade::OnUpgrade,
}

/// How a request body is read: cut off past `max` bytes, and failed when it has not arrived
/// whole by `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max: u64,
    pub deadline: std::time::Instant,
}

/// Who sent a request, as the forwarding headers tell the backend.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The host the client asked for.
    pub host: &'a str,
    pub peer: &'a Peer,
    /// Over TLS.
    pub secure: bool,
}

impl Upstream {
    pub fn new(response_timeout: Duration) -> Self {
        Self {
            pool: Arc::default(),
            timer: super::timer::Coarse::default(),
            response_timeout,
        }
    }

    /// One exchange with `backend`: the response head, and the HTTP/1.1 connection to hand
    /// back when its body ends.
    async fn exchange(
        &self,
        request: Request<Limited>,
        backend: &Arc<BackendState>,
        h2c: bool,
    ) -> Result<(Response<Incoming>, Option<http1::SendRequest<Limited>>), SendError> {
        if h2c {
            // Boxed, like a new connection: the HTTP/1.1 exchange is the common one and its
            // future stays small.
            return Box::pin(async {
                let mut sender = self.pool.http2(backend).await?;
                Ok((sender.send_request(request).await?, None))
            })
            .await;
        }
        // A request an idle connection refused before sending it (the backend had closed it)
        // goes once more, on another connection.
        let mut sender = self.pool.http1(backend).await?;
        let request = match sender.try_send_request(request).await {
            Ok(response) => return Ok((response, Some(sender))),
            Err(mut e) => match e.take_message() {
                Some(unsent) => unsent,
                None => return Err(e.into_error().into()),
            },
        };
        let mut sender = self.pool.http1(backend).await?;
        Ok((sender.send_request(request).await?, Some(sender)))
    }

    /// Sends `request` to `backend` (over h2c when `h2c`) with forwarding headers added.
    /// A `101` carries the two sides to splice as a [`Splice`] in its extensions.
    ///
    /// The work before and after the exchange is in plain functions: every request's future
    /// is moved a few times before it first runs, and what an `async fn` computes between
    /// its awaits tends to stay in its state, making each move larger.
    pub async fn send(
        &self,
        request: Request<Incoming>,
        backend: &Arc<BackendState>,
        origin: Origin<'_>,
        h2c: bool,
        body: BodyLimits,
    ) -> Result<Response<Body>, SendError> {
        let (request, upgrade) = prepare(request, backend, origin, h2c, body, &self.timer)?;
        let h2c = request.version() == http::Version::HTTP_2;
        let deadline = self.timer.sleep(self.response_timeout);
        let (response, sender) = tokio::select! {
            biased;
            exchanged = self.exchange(request, backend, h2c) => exchanged?,
            () = deadline => return Err(SendError::Timeout(self.response_timeout)),
        };
        Ok(self.finish(response, sender, upgrade, backend))
    }

    /// The backend's response as the client gets it: a 101 carries the two connections to
    /// splice (the proxy accounts for the tunnel), any other hands the HTTP/1.1 connection back
    /// to the pool when its body ends.
    fn finish(
        &self,
        mut response: Response<Incoming>,
        sender: Option<http1::SendRequest<Limited>>,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
        backend: &Arc<BackendState>,
    ) -> Response<Body> {
        if let Some(client_side) = upgrade
            && response.status() == http::StatusCode::SWITCHING_PROTOCOLS
        {
            let backend_side = hyper::upgrade::on(&mut response);
            // The 101 has no body: the connection itself is what follows.
            let (mut parts, _) = response.into_parts();
            parts.extensions.insert(Splice {
                client: client_side,
                backend: backend_side,
            });
            return Response::from_parts(parts, super::respond::full(bytes::Bytes::new()));
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = match sender {
            Some(sender) => Returning {
                inner: body,
                back: Some((self.pool.clone(), backend.clone(), sender)),
            }
            .boxed(),
            None => body.boxed(),
        };
        Response::from_parts(parts, body)
    }
}

/// The request as the backend gets it: its URI pointed at the backend, hop-by-hop headers
/// (and an untrusted client's forwarding headers) dropped, forwarding headers and a request id
/// added, the body limited in size and time; and the client's side of an upgrade, when it asks
/// for one.
fn prepare(
    request: Request<Incoming>,
    backend: &BackendState,
    origin: Origin<'_>,
    h2c: bool,
    body_limits: BodyLimits,
    timer: &super::timer::Coarse,
) -> Result<(Request<Limited>, Option<hyper::upgrade::OnUpgrade>), SendError> {
    let Some(authority) = &backend.authority else {
        return Err(SendError::Address(backend.address.clone()));
    };
    let (mut parts, body) = request.into_parts();
    // A WebSocket (or other) upgrade keeps its `Upgrade`/`Connection` headers, and the
    // client's side of the connection is spliced to the backend's after a 101.
    let upgrade = is_upgrade(&parts.headers).then(|| {
        (
            parts.headers.get(header::UPGRADE).cloned(),
            parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
        )
    });
    // The backend's protocol is the route's, whatever the client spoke; an upgrade needs
    // HTTP/1.1.
    let h2c = h2c && upgrade.is_none();
    let uri = std::mem::take(&mut parts.uri).into_parts();
    let path = uri
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    // What the request was routed by (see `host_of`): the URI's authority when it has one
    // (absolute form, HTTP/2), which then outranks `Host`.
    let routed = uri.authority;
    // HTTP/1.1 names the origin in `Host` and sends the path alone (origin form); HTTP/2
    // carries scheme and authority in the request's pseudo-headers.
    (parts.version, parts.uri) = if h2c {
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(authority.clone());
        uri.path_and_query = Some(path);
        let uri = Uri::from_parts(uri).map_err(|_| SendError::Address(backend.address.clone()))?;
        (http::Version::HTTP_2, uri)
    } else {
        (http::Version::HTTP_11, Uri::from(path))
    };
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    if !origin.peer.trusted {
        strip_client_forwarding(headers);
    }
    if let Some((Some(protocol), _)) = &upgrade {
        headers.insert(header::UPGRADE, protocol.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    // The backend gets its own `Host` (HTTP/2 carries the authority in the URI instead); the
    // host the request was routed by goes on as `X-Forwarded-Host`.
    let client_host = match &backend.host_header {
        Some(v) if !h2c => headers.insert(header::HOST, v.clone()),
        _ => headers.remove(header::HOST),
    };
    let routed_host = match routed {
        Some(authority) => {
            let host_port = authority.as_str();
            let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, hp)| hp);
            HeaderValue::from_str(host_port).ok()
        }
        None => client_host,
    };
    add_forwarding(headers, origin, routed_host);
    let body = super::body::Timed::new(body, body_limits.deadline, timer);
    let limited =
        http_body_util::Limited::new(body, usize::try_from(body_limits.max).unwrap_or(usize::MAX));
    Ok((
        Request::from_parts(parts, limited),
        upgrade.and_then(|(_, client_side)| client_side),
    ))
}

/// `X-Forwarded-For`/`-Host`/`-Proto`, `Forwarded`, and `X-Request-Id` unless the client
/// sent one. `routed_host` is the host (and port) the request was routed by, as sent. What is
/// left of the client's forwarding headers came from a trusted proxy: its `X-Forwarded-For`
/// and `Forwarded` are appended to, its `X-Forwarded-Host` and `-Proto` kept (it saw the
/// client). Values are built by hand, not with `format!`, and each header is looked up once:
/// this runs for every request.
fn add_forwarding(
    headers: &mut http::HeaderMap,
    origin: Origin<'_>,
    routed_host: Option<HeaderValue>,
) {
    let Origin { host, peer, secure } = origin;
    let proto = if secure { "https" } else { "http" };
    let ip = peer.ip.to_str().unwrap_or("unknown");
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Occupied(mut prior) => {
            let prior_value = prior.get().as_bytes();
            let mut v = Vec::with_capacity(prior_value.len() + 2 + ip.len());
            v.extend_from_slice(prior_value);
            v.extend_from_slice(b", ");
            v.extend_from_slice(ip.as_bytes());
            if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(v)) {
                prior.insert(v);
            }
        }
        Entry::Vacant(none) => {
            none.insert(peer.ip.clone());
        }
    }
    if let Entry::Vacant(none) = headers.entry(X_FORWARDED_HOST)
        && let Some(v) = routed_host.or_else(|| HeaderValue::from_str(host).ok())
    {
        none.insert(v);
    }
    if let Entry::Vacant(none) = headers.entry(X_FORWARDED_PROTO) {
        none.insert(HeaderValue::from_static(proto));
    }
    // An untrusted client's was dropped: only a trusted proxy's can be here.
    let prior = if peer.trusted {
        headers.get(FORWARDED).map(HeaderValue::as_bytes)
    } else {
        None
    };
    let mut node =
        String::with_capacity(prior.map_or(0, |p| p.len() + 2) + 24 + ip.len() + host.len());
    if let Some(prior) = prior.and_then(|p| std::str::from_utf8(p).ok()) {
        node.push_str(prior);
        node.push_str(", ");
    }
    if peer.addr.is_ipv6() {
        node.push_str("for=\"[");
        node.push_str(ip);
        node.push_str("]\"");
    } else {
        node.push_str("for=");
        node.push_str(ip);
    }
    node.push_str(";host=");
    node.push_str(host);
    node.push_str(";proto=");
    node.push_str(proto);
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(node)) {
        headers.insert(FORWARDED, v);
    }
    let id = headers.entry(REQUEST_ID);
    if matches!(&id, Entry::Occupied(sent) if !sent.get().is_empty() && sent.get().len() <= 128) {
        return;
    }
    let mut buf = Uuid::encode_buffer();
    let Ok(v) = HeaderValue::from_str(request_id(&mut buf)) else {
        return;
    };
    match id {
        Entry::Occupied(mut sent) => {
            sent.insert(v);
        }
        Entry::Vacant(none) => {
            none.insert(v);
        }
    }
}

/// A fresh request id (a random UUID) from a per-thread generator: `Uuid::now_v7` takes a
/// process-wide lock and asks the OS for randomness on every call, which showed on the hot path.
fn request_id(buf: &mut [u8; 45]) -> &str {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(u64::from_le_bytes(
            Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or([7; 8]),
        ));
    }
    // splitmix64: two outputs make the 122 random bits of a UUID v4.
    let next = || {
        STATE.with(|s| {
            let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let (hi, lo) = (next(), next());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_le_bytes());
    bytes[8..].copy_from_slice(&lo.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(buf)
}

/// A forwarding header a client may not set for itself: `X-Forwarded-*`, `Forwarded`,
/// `X-Real-IP`, `True-Client-IP`. Lengths first: most names are none of these.
fn is_forwarding(name: &HeaderName) -> bool {
    let name = name.as_str();
    match name.len() {
        9 => name == X_REAL_IP || name == FORWARDED.as_str(),
        14 => name == TRUE_CLIENT_IP,
        n if n > 12 => name.starts_with("x-forwarded-"),
        _ => false,
    }
}

/// `X-Forwarded-For` on a call the API edge passes on to a service (whose login throttle keys
/// on the caller's address): `peer` after a trusted proxy's list; an untrusted client's
/// forwarding headers dropped. `None`: no peer known, nothing believed.
pub(crate) fn forward_for(
    headers: &mut http::HeaderMap,
    peer: Option<std::net::IpAddr>,
    trusted: bool,
) {
    if !trusted {
        strip_client_forwarding(headers);
    }
    let Some(ip) = peer else { return };
    let ip = ip.to_string();
    let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {ip}")),
        None => HeaderValue::from_str(&ip),
    };
    if let Ok(value) = value {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// Drops the forwarding headers of a client that is not a trusted proxy: they would tell the
/// backend whatever the client likes about who it is and what it asked for.
fn strip_client_forwarding(headers: &mut http::HeaderMap) {
    // One pass over the names, no allocation, when there are none (the usual request).
    if !headers.keys().any(is_forwarding) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_forwarding(n))
        .cloned()
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// Which of [`HOP_BY_HOP`] `name` is. Lengths first: most names have none of theirs.
fn hop_by_hop(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    match name.len() {
        2 | 7 | 10 | 16 | 17 => HOP_BY_HOP.iter().position(|h| h.as_str() == name),
        _ => None,
    }
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // One pass over the names, no hashing, no allocation: most messages carry none of these
    // but `Connection`.
    let mut present = [false; 7];
    for name in headers.keys() {
        if let Some(i) = hop_by_hop(name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    // Other headers named by `Connection` are hop-by-hop too; the usual tokens name none.
    let mut named: Vec<HeaderName> = Vec::new();
    if present[0] {
        for value in headers.get_all(header::CONNECTION) {
            let value = value.as_bytes();
            if value.eq_ignore_ascii_case(b"keep-alive") || value.eq_ignore_ascii_case(b"close") {
                continue;
            }
            for token in value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                let usual = [&b"keep-alive"[..], b"close", b"upgrade", b""]
                    .iter()
                    .any(|u| token.eq_ignore_ascii_case(u));
                if !usual && let Ok(name) = HeaderName::from_bytes(token) {
                    named.push(name);
                }
            }
        }
    }
    for (name, present) in HOP_BY_HOP.iter().zip(present) {
        if present {
            headers.remove(name);
        }
    }
    for name in named {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(uri: &str, header: Option<&str>) -> Option<String> {
        let mut request = Request::builder().uri(uri);
        if let Some(h) = header {
            request = request.header(header::HOST, h);
        }
        host_of(&request.body(()).unwrap()).map(Cow::into_owned)
    }

    #[test]
    fn the_host_is_lower_case_without_its_port() {
        assert_eq!(
            host("/", Some("acme.example.com")).as_deref(),
            Some("acme.example.com")
        );
        assert_eq!(
            host("/", Some("Acme.Example.COM:8080")).as_deref(),
            Some("acme.example.com")
        );
        assert_eq!(host("/", Some("[::1]:8080")).as_deref(), Some("[::1]"));
        assert_eq!(
            host("/", Some("[::1]")).as_deref(),
            Some("[::1]"),
            "not a port"
        );
        assert_eq!(
            host("/", Some("acme:x1")).as_deref(),
            Some("acme:x1"),
            "not a port"
        );
        // The URI's authority (absolute form, HTTP/2) wins over `Host`.
        assert_eq!(
            host("http://b.example/x", Some("a.example")).as_deref(),
            Some("b.example")
        );
        assert_eq!(host("/", None), None);
    }

    #[test]
    fn an_untrusted_clients_forwarding_headers_are_dropped() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("true-client-ip", "6.6.6.6"),
            ("x-forwarded", "kept: not ours to judge"),
            ("content-length", "2"),
            ("accept-language", "pt-BR"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_client_forwarding(&mut headers);
        let mut left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept-language", "content-length", "x-forwarded"]);
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Trace"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "expires"),
            ("x-trace", "1"),
            ("content-type", "text/plain"),
            ("x-request-id", "abc"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-request-id"]);

        // The usual `Connection` values name nothing else.
        let mut headers = http::HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::CONTENT_LENGTH));
    }
}
