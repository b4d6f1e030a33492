//! Custom domains: which names a tenant may claim, and proving control of one — it must serve
//! the verification token at `http://<domain>/.well-known/tenantry-domain-verification` (the
//! ACME http-01 idea).
//!
//! The proof is fetched on the tenant's word, from wherever the domain resolves: through the
//! kit's outbound client, so a domain that resolves to the platform's network (loopback, the
//! metadata address, a private range) proves nothing and is never contacted, a redirect to
//! another host is not followed, and an answer larger than [`MAX_PROOF_BYTES`] is not read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tenantry_kit::ApiError;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::egress::{Egress, EgressPolicy, HttpLimits, OutboundError, OutboundHttp};

pub const WELL_KNOWN_PATH: &str = "/.well-known/tenantry-domain-verification";

/// A verification token is 32 characters; a proof page is small. Anything larger is not a
/// proof and is not read.
pub const MAX_PROOF_BYTES: usize = 4096;

/// Checks that a domain serves its token. A trait so tests can point it at a local server.
pub trait DomainProver: Send + Sync + 'static {
    fn proves<'a>(
        &'a self,
        domain: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, ApiError>>;
}

/// The limits of one proof fetch.
pub fn proof_limits() -> HttpLimits {
    HttpLimits {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(3),
        max_body_bytes: MAX_PROOF_BYTES,
        max_redirects: 3,
    }
}

/// Fetches proofs over HTTP with the outbound client (its policy and resolver decide where
/// a domain may be reached).
pub struct HttpProver {
    http: OutboundHttp,
}

impl HttpProver {
    pub fn new(http: OutboundHttp) -> Self {
        Self { http }
    }

    /// Under the operator's outbound policy, with this service's own address (`own`)
    /// refused besides the platform's stores.
    pub fn for_service(
        common: &CommonConfig,
        own: Option<SocketAddr>,
    ) -> Result<Self, OutboundError> {
        let policy = EgressPolicy::from_config(common).with_own(own);
        let http = OutboundHttp::new(Arc::new(Egress::system(policy)), proof_limits())?;
        Ok(Self::new(http))
    }
}

impl DomainProver for HttpProver {
    fn proves<'a>(
        &'a self,
        domain: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, ApiError>> {
        Box::pin(async move {
            let fetched = self
                .http
                .get(&format!("http://{domain}{WELL_KNOWN_PATH}"))
                .await;
            // An unreachable (or refused) domain has simply not proved anything yet.
            let fetched = match fetched {
                Ok(f) => f,
                Err(e) => {
                    tracing::info!(%domain, error = %e, "domain proof not fetched");
                    return Ok(false);
                }
            };
            if !fetched.status.is_success() {
                return Ok(false);
            }
            Ok(std::str::from_utf8(&fetched.body).is_ok_and(|body| body.trim() == token))
        })
    }
}

/// Refuses the platform's base domain and every name under it: tenants answer on
/// `<slug>.<base domain>`, so such a "custom" domain would be another tenant's host.
pub fn check_not_platform(base_domain: &str, domain: &str) -> Result<(), ApiError> {
    let base = base_domain.trim_matches('.').to_ascii_lowercase();
    if base.is_empty() {
        return Ok(());
    }
    let domain = domain.to_ascii_lowercase();
    if domain == base || domain.ends_with(&format!(".{base}")) {
        return Err(ApiError::invalid(
            "domain",
            format!("names under the platform's base domain {base} are not custom domains"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_the_base_domain_are_refused() {
        for refused in ["tenantry.app", "acme.tenantry.app", "a.b.TENANTRY.app"] {
            assert!(
                check_not_platform("tenantry.app", refused).is_err(),
                "{refused}"
            );
        }
        for allowed in [
            "eviltenantry.app",
            "tenantry.app.example.com",
            "shop.acme.com",
        ] {
            assert!(
                check_not_platform("tenantry.app", allowed).is_ok(),
                "{allowed}"
            );
        }
    }
}
