//! The gateway's own answers: JSON errors and rate-limit headers.

use std::time::Duration;

use http::HeaderName;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use uuid::Uuid;

use super::Body;
use crate::limit::Gcra;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// `{"error": code, "tenant_id": …}` with `status`.
pub fn error(status: StatusCode, code: &str, tenant: Option<Uuid>) -> Response<Body> {
    let body = match tenant {
        Some(t) => format!(r#"{{"error":"{code}","tenant_id":"{t}"}}"#),
        None => format!(r#"{{"error":"{code}"}}"#),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 429 with `Retry-After` and the RateLimit headers (draft-ietf-httpapi-ratelimit-headers).
pub fn rate_limited(limiter: &Gcra, retry_after: Duration) -> Response<Body> {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", None);
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let headers = response.headers_mut();
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    policy(headers, limiter);
    if let Ok(v) = HeaderValue::from_str(&format!(r#""{}";r=0;t={seconds}"#, limiter.scope.kind)) {
        headers.insert(RATELIMIT, v);
    }
    response
}

/// `RateLimit-Policy` and `RateLimit` on a response that was let through.
pub fn rate_limit_headers(headers: &mut HeaderMap, limiter: &Gcra, remaining: u32) {
    if limiter.is_unlimited() {
        return;
    }
    policy(headers, limiter);
    // `"<kind>";r=<remaining>;t=1`, built by hand: it is on every response.
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = remaining;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let kind = limiter.scope.kind.as_bytes();
    let mut value = Vec::with_capacity(kind.len() + 18);
    value.push(b'"');
    value.extend_from_slice(kind);
    value.extend_from_slice(b"\";r=");
    value.extend_from_slice(&digits[at..]);
    value.extend_from_slice(b";t=1");
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
        headers.insert(RATELIMIT, v);
    }
}

fn policy(headers: &mut HeaderMap, limiter: &Gcra) {
    if let Some(v) = &limiter.policy {
        headers.insert(RATELIMIT_POLICY, v.clone());
    }
}
