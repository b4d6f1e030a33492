//! Proving control of a custom domain: it must serve the verification token at
//! `http://<domain>/.well-known/tenantry-domain-verification` (the ACME http-01 idea).

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use tenantry_kit::ApiError;

pub const WELL_KNOWN_PATH: &str = "/.well-known/tenantry-domain-verification";

/// Checks that a domain serves its token. A trait so tests can point it at a local server.
pub trait DomainProver: Send + Sync + 'static {
    fn proves<'a>(
        &'a self,
        domain: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, ApiError>>;
}

pub struct HttpProver {
    client: reqwest::Client,
    /// Where to connect instead of resolving the domain (tests, or a local ingress).
    connect_to: Option<SocketAddr>,
}

impl HttpProver {
    pub fn new(connect_to: Option<SocketAddr>) -> Result<Self, ApiError> {
        tenantry_kit::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| ApiError::Internal(format!("http client: {e}")))?;
        Ok(Self { client, connect_to })
    }
}

impl DomainProver for HttpProver {
    fn proves<'a>(
        &'a self,
        domain: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, ApiError>> {
        Box::pin(async move {
            let authority = self
                .connect_to
                .map_or_else(|| domain.to_owned(), |a| a.to_string());
            let response = self
                .client
                .get(format!("http://{authority}{WELL_KNOWN_PATH}"))
                .header(reqwest::header::HOST, domain)
                .send()
                .await;
            // An unreachable domain has simply not proved anything yet.
            let Ok(response) = response else {
                return Ok(false);
            };
            if !response.status().is_success() {
                return Ok(false);
            }
            let body = response.text().await.unwrap_or_default();
            Ok(body.trim() == token)
        })
    }
}
