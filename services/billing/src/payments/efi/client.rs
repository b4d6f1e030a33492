//! Calls to Efí's two APIs over one mutual-TLS HTTP client, each with its own OAuth2 token
//! (client credentials, HTTP Basic `client_id:client_secret`): the Pix API issues it at
//! `POST /oauth/token`, the charges API at `POST /v1/authorize`.
//!
//! A token is cached until shortly before its `expires_in` and fetched under a lock, so
//! concurrent checkouts share one token request. A call answered 401 drops the cached token
//! and is made once more with a fresh one (Efí may revoke a token early, e.g. on a credential
//! rotation).
//!
//! Efí's answers are never passed on: an error names the operation and the HTTP status; the
//! error code Efí gave (`nome` on the Pix API, `error` on the charges API) is logged.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::EfiConfig;
use crate::payments::PaymentError;

/// Whole calls, token fetch included, give up after this: a checkout waits on them.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is renewed this long before Efí says it expires, so none is sent as it lapses.
const RENEW_EARLY: Duration = Duration::from_secs(60);

/// Which of Efí's APIs a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Pix,
    Charges,
}

impl Api {
    fn token_path(self) -> &'static str {
        match self {
            Api::Pix => "/oauth/token",
            Api::Charges => "/v1/authorize",
        }
    }
}

struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(serde::Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: u64,
}

/// The HTTP side of the Efí client.
pub struct Http {
    client: reqwest::Client,
    client_id: String,
    client_secret: String,
    pix_base: String,
    charges_base: String,
    pix_token: Mutex<Option<Token>>,
    charges_token: Mutex<Option<Token>>,
}

pub(super) fn failed(what: impl Into<String>) -> PaymentError {
    PaymentError::Provider {
        provider: "efi",
        what: what.into(),
    }
}

impl Http {
    pub fn new(config: &EfiConfig, tls: rustls::ClientConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // Credentials and tokens go to Efí's hosts only: never in clear text, never to
            // wherever a redirect points.
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .build()?;
        Ok(Self {
            client,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            pix_base: config.api_base.trim_end_matches('/').to_owned(),
            charges_base: config.charges_api_base.trim_end_matches('/').to_owned(),
            pix_token: Mutex::default(),
            charges_token: Mutex::default(),
        })
    }

    fn base(&self, api: Api) -> &str {
        match api {
            Api::Pix => &self.pix_base,
            Api::Charges => &self.charges_base,
        }
    }

    fn cache(&self, api: Api) -> &Mutex<Option<Token>> {
        match api {
            Api::Pix => &self.pix_token,
            Api::Charges => &self.charges_token,
        }
    }

    /// The API's bearer token, fetched when none is cached or it is about to expire.
    async fn token(&self, api: Api) -> Result<String, PaymentError> {
        let mut cached = self.cache(api).lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token(api).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    async fn fetch_token(&self, api: Api) -> Result<Token, PaymentError> {
        let url = format!("{}{}", self.base(api), api.token_path());
        let response = self
            .client
            .post(url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .json(&serde_json::json!({ "grant_type": "client_credentials" }))
            .send()
            .await
            .map_err(|e| unreachable("oauth token", &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable("oauth token", &e))?;
        if !status.is_success() {
            return Err(refused("oauth token", status, &body));
        }
        let reply: TokenReply = parse("oauth token", &body)?;
        let lifetime = Duration::from_secs(reply.expires_in);
        Ok(Token {
            value: reply.access_token,
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_EARLY.min(lifetime / 2)),
        })
    }

    /// Sends a call with the API's token and returns Efí's status and body, whatever the
    /// status: callers decide which answers they expect (a Pix `409` is not always a failure).
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        api: Api,
        method: Method,
        path: &str,
        body: Option<&B>,
        what: &'static str,
    ) -> Result<(StatusCode, Bytes), PaymentError> {
        let url = format!("{}{path}", self.base(api));
        let mut retried = false;
        loop {
            let token = self.token(api).await?;
            let mut request = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| unreachable(what, &e))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| unreachable(what, &e))?;
            if status == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                let mut cached = self.cache(api).lock().await;
                // Another call may have replaced it already: only the refused token goes.
                if cached.as_ref().is_some_and(|t| t.value == token) {
                    *cached = None;
                }
                continue;
            }
            return Ok((status, bytes));
        }
    }

    /// A call whose only good answer is a 2xx JSON body of type `T`.
    pub async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        api: Api,
        method: Method,
        path: &str,
        body: Option<&B>,
        what: &'static str,
    ) -> Result<T, PaymentError> {
        let (status, bytes) = self.send(api, method, path, body, what).await?;
        if !status.is_success() {
            return Err(refused(what, status, &bytes));
        }
        parse(what, &bytes)
    }
}

fn unreachable(what: &'static str, error: &reqwest::Error) -> PaymentError {
    tracing::warn!(operation = what, error = %error, "efi unreachable");
    failed(format!("{what}: Efí could not be reached"))
}

/// Efí answered `status`: the error names the operation and status only; Efí's own error
/// code is logged when it looks like one (a short identifier, nothing a payer typed).
pub(super) fn refused(what: &'static str, status: StatusCode, body: &[u8]) -> PaymentError {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["nome", "error"]
                .iter()
                .find_map(|k| v.get(k).and_then(|c| c.as_str()).map(str::to_owned))
        })
        .filter(|c| {
            c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or_default();
    tracing::warn!(operation = what, status = status.as_u16(), efi_error = %code, "efi refused the call");
    failed(format!("{what}: Efí answered {}", status.as_u16()))
}

pub(super) fn parse<T: DeserializeOwned>(
    what: &'static str,
    body: &[u8],
) -> Result<T, PaymentError> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(operation = what, error = %e, "efi answer not understood");
        failed(format!("{what}: Efí's answer was not understood"))
    })
}
