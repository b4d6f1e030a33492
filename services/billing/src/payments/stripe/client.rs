//! The Stripe API client: customers and Checkout Sessions over Stripe's form-encoded API.

use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;
use uuid::Uuid;

use super::{PROVIDER, form};
use crate::config::StripeConfig;
use crate::payments::{Checkout, CheckoutRequest, PaymentError, PaymentProvider};

/// The API version requests are made with, so an upgrade of the account's default version
/// in the dashboard cannot change the answers' shape under us. It is the version of the
/// `stripe` npm package the tests sign webhooks with (`tests/stripe-sign/`); webhook events
/// follow the version set on the endpoint instead, and [`super::parse_event`] reads only
/// fields every recent version has.
pub const API_VERSION: &str = "2026-11-18.endive";

/// From sending to the body's last byte. Stripe answers these calls in well under a second;
/// a stuck call must not hold a tenant's checkout longer than this.
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A customer or a session is a few KiB; anything near this is not an answer we want.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Stripe as a [`PaymentProvider`]. Cheap to clone.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    /// Operator-configured (`TENANTRY_STRIPE_API_BASE`), so trusted: unlike calls made on a
    /// tenant's word, these do not go through the kit's egress policy.
    api_base: String,
    /// The secret key (`sk_…`), sent as a bearer token; kept out of `Debug`.
    secret_key: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client for `config`; [`PaymentError::NotConfigured`] without a secret key.
    pub fn new(config: &StripeConfig) -> Result<Self, PaymentError> {
        if config.secret_key.is_empty() {
            return Err(PaymentError::NotConfigured(PROVIDER));
        }
        // reqwest is built without a default TLS provider (see the kit).
        tenantry_kit::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // Stripe does not redirect its API; following one would resend the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("tenantry")
            .build()
            .map_err(|_| provider_error("the HTTP client could not be built"))?;
        Ok(Self {
            http,
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            secret_key: config.secret_key.clone(),
        })
    }

    /// POSTs `fields` to `path` and returns the answer's JSON object, or an error naming the
    /// status and Stripe's `error.type`/`error.code` (never its message: it may echo anything).
    async fn post(
        &self,
        path: &'static str,
        fields: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, PaymentError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .header("Stripe-Version", API_VERSION)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form::encode(fields));
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| exchange_failed(path, &e))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(sanitize);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| exchange_failed(path, &e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(provider_error(format!(
                    "POST {path}: the answer is too large"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let error = json.as_ref().and_then(|j| j.get("error"));
            let field = |name: &str| {
                error
                    .and_then(|e| e.get(name))
                    .and_then(Value::as_str)
                    .map_or_else(|| "-".to_owned(), sanitize)
            };
            let (kind, code) = (field("type"), field("code"));
            tracing::warn!(
                path,
                status = status.as_u16(),
                error_type = %kind,
                error_code = %code,
                request_id = request_id.as_deref().unwrap_or("-"),
                "stripe refused a request"
            );
            return Err(provider_error(format!(
                "POST {path}: {status} (type {kind}, code {code})"
            )));
        }
        json.filter(Value::is_object)
            .ok_or_else(|| provider_error(format!("POST {path}: the answer is not a JSON object")))
    }
}

#[tonic::async_trait]
impl PaymentProvider for StripeClient {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    /// The idempotency key is the tenant's, so a create retried after a lost answer (or by a
    /// second replica) returns the first customer instead of making another. Stripe keeps
    /// keys for 24 hours and refuses the same key with other parameters (another e-mail):
    /// billing stores the id on the first success and never creates twice after that.
    async fn create_customer(&self, tenant_id: Uuid, email: &str) -> Result<String, PaymentError> {
        const PATH: &str = "/v1/customers";
        let tenant = tenant_id.to_string();
        let key = format!("tenantry-customer-{tenant}");
        let customer = self
            .post(
                PATH,
                &[("email", email), ("metadata[tenant_id]", &tenant)],
                Some(&key),
            )
            .await?;
        string_field(&customer, "id", PATH)
    }

    /// A hosted Checkout Session for a subscription at the plan's price. Stripe makes the
    /// product and the recurring price from `price_data`, so plans need no mirror in Stripe;
    /// the tenant travels as `client_reference_id` (and metadata) back in
    /// `checkout.session.completed`.
    async fn checkout(&self, request: &CheckoutRequest) -> Result<Checkout, PaymentError> {
        const PATH: &str = "/v1/checkout/sessions";
        // Without a customer Stripe would make a new one, which billing would not know.
        if request.customer_id.is_empty() {
            return Err(provider_error("a checkout needs the tenant's customer"));
        }
        let tenant = request.tenant_id.to_string();
        let currency = request.currency.to_ascii_lowercase();
        let amount = request.amount_minor.to_string();
        let session = self
            .post(
                PATH,
                &[
                    ("mode", "subscription"),
                    ("customer", &request.customer_id),
                    ("client_reference_id", &tenant),
                    ("metadata[tenant_id]", &tenant),
                    ("metadata[plan]", &request.plan),
                    ("success_url", &request.callback_url),
                    ("line_items[0][quantity]", "1"),
                    ("line_items[0][price_data][currency]", &currency),
                    ("line_items[0][price_data][unit_amount]", &amount),
                    (
                        "line_items[0][price_data][recurring][interval]",
                        request.interval,
                    ),
                    (
                        "line_items[0][price_data][product_data][name]",
                        &request.plan_display_name,
                    ),
                ],
                None,
            )
            .await?;
        let expires_at = session
            .get("expires_at")
            .and_then(Value::as_i64)
            .and_then(|t| DateTime::from_timestamp(t, 0));
        Ok(Checkout {
            reference: string_field(&session, "id", PATH)?,
            url: string_field(&session, "url", PATH)?,
            expires_at,
            ..Checkout::default()
        })
    }
}

fn string_field(object: &Value, name: &str, path: &str) -> Result<String, PaymentError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| provider_error(format!("POST {path}: the answer has no {name}")))
}

fn provider_error(what: impl Into<String>) -> PaymentError {
    PaymentError::Provider {
        provider: PROVIDER,
        what: what.into(),
    }
}

/// reqwest's own message names the URL and the cause; the kind is enough to act on.
fn exchange_failed(path: &str, e: &reqwest::Error) -> PaymentError {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the exchange failed"
    };
    provider_error(format!("POST {path}: {what}"))
}

/// Stripe's error types and codes are short snake_case words; anything else in those fields
/// is cut to that alphabet so an error can never carry arbitrary upstream text.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use tenantry_testkit::fakes::stripe::FakeStripe;

    use super::*;
    use crate::payments::PaymentMethod;

    fn client(fake: &FakeStripe, key: &str) -> StripeClient {
        StripeClient::new(&StripeConfig {
            api_base: format!("{}/", fake.url()),
            secret_key: key.into(),
            webhook_secret: String::new(),
        })
        .unwrap()
    }

    fn request(tenant_id: Uuid, customer_id: String) -> CheckoutRequest {
        CheckoutRequest {
            tenant_id,
            plan: "pro".into(),
            plan_display_name: "Pro & Team (anual)".into(),
            amount_minor: 4900,
            currency: "BRL".into(),
            interval: "month",
            method: PaymentMethod::CreditCard,
            billing_email: "billing+acme@example.com".into(),
            callback_url: "https://app.example.com/billing/done?tenant=acme&ok=1".into(),
            customer_id,
            payer: None,
        }
    }

    #[test]
    fn without_a_secret_key_stripe_is_not_configured() {
        let config = StripeConfig {
            api_base: "https://api.stripe.com".into(),
            secret_key: String::new(),
            webhook_secret: String::new(),
        };
        assert!(matches!(
            StripeClient::new(&config),
            Err(PaymentError::NotConfigured("stripe"))
        ));
    }

    #[tokio::test]
    async fn creating_a_tenants_customer_twice_makes_one_customer() {
        let fake = FakeStripe::start().await;
        let stripe = client(&fake, fake.secret_key());
        let tenant = Uuid::new_v4();
        let first = stripe
            .create_customer(tenant, "billing+acme@example.com")
            .await
            .unwrap();
        let again = stripe
            .create_customer(tenant, "billing+acme@example.com")
            .await
            .unwrap();
        assert!(first.starts_with("cus_"), "{first}");
        assert_eq!(first, again);
        let customers = fake.customers().await;
        assert_eq!(customers.len(), 1);
        assert_eq!(
            customers[0].email.as_deref(),
            Some("billing+acme@example.com")
        );
        assert_eq!(
            customers[0].metadata.get("tenant_id"),
            Some(&tenant.to_string())
        );

        // Stripe refuses the key with other parameters rather than answer for another e-mail.
        let err = stripe
            .create_customer(tenant, "new-address@example.com")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("idempotency_error"), "{err}");
        assert_eq!(fake.customers().await.len(), 1);

        // Another tenant is another customer.
        let other = stripe
            .create_customer(Uuid::new_v4(), "ops@example.org")
            .await
            .unwrap();
        assert_ne!(other, first);
        assert_eq!(fake.customers().await.len(), 2);
    }

    #[tokio::test]
    async fn a_checkout_opens_a_subscription_session_at_the_plans_price() {
        let fake = FakeStripe::start().await;
        let stripe = client(&fake, fake.secret_key());
        let tenant = Uuid::new_v4();
        let customer = stripe
            .create_customer(tenant, "billing+acme@example.com")
            .await
            .unwrap();
        let checkout = stripe
            .checkout(&request(tenant, customer.clone()))
            .await
            .unwrap();

        let sessions = fake.sessions().await;
        let [session] = &sessions[..] else {
            panic!("one session: {sessions:?}")
        };
        assert_eq!(checkout.reference, session.id);
        assert!(checkout.reference.starts_with("cs_"), "{checkout:?}");
        assert_eq!(checkout.url, session.url);
        assert_eq!(
            checkout.expires_at.map(|t| t.timestamp()),
            Some(session.expires_at)
        );
        let tenant = tenant.to_string();
        for (field, expected) in [
            ("mode", "subscription"),
            ("customer", customer.as_str()),
            ("client_reference_id", &tenant),
            ("metadata[tenant_id]", &tenant),
            ("metadata[plan]", "pro"),
            (
                "success_url",
                "https://app.example.com/billing/done?tenant=acme&ok=1",
            ),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "brl"),
            ("line_items[0][price_data][unit_amount]", "4900"),
            ("line_items[0][price_data][recurring][interval]", "month"),
            (
                "line_items[0][price_data][product_data][name]",
                "Pro & Team (anual)",
            ),
        ] {
            assert_eq!(session.field(field), Some(expected), "{field}");
        }
        assert_eq!(checkout.pix_qr_code, "");
    }

    #[tokio::test]
    async fn a_checkout_for_a_customer_stripe_does_not_know_is_refused() {
        let fake = FakeStripe::start().await;
        let stripe = client(&fake, fake.secret_key());
        let err = stripe
            .checkout(&request(Uuid::new_v4(), "cus_gone".into()))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("400"), "{text}");
        assert!(text.contains("resource_missing"), "{text}");
        assert!(!text.contains("No such customer"), "{text}");
        assert!(fake.sessions().await.is_empty());
    }

    #[tokio::test]
    async fn a_wrong_key_fails_without_reflecting_stripes_answer() {
        let fake = FakeStripe::start().await;
        let wrong = "sk_test_wrong_key_9f8e7d6c";
        let stripe = client(&fake, wrong);
        let err = stripe
            .create_customer(Uuid::new_v4(), "a@example.com")
            .await
            .unwrap_err();
        let PaymentError::Provider { provider, what } = &err else {
            panic!("a provider error: {err:?}")
        };
        assert_eq!(*provider, "stripe");
        assert!(what.contains("401"), "{what}");
        assert!(what.contains("invalid_request_error"), "{what}");
        // The answer's message names the key (masked); none of it comes back.
        assert!(!what.contains("Invalid API Key"), "{what}");
        assert!(!format!("{err:?}").contains(wrong));
        assert!(!format!("{stripe:?}").contains(wrong));
        assert!(fake.customers().await.is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_stripe_is_a_provider_error() {
        let fake = FakeStripe::start().await;
        let stripe = client(&fake, fake.secret_key());
        drop(fake);
        // The port may take a moment to close after the server task is aborted.
        let mut result = Ok(String::new());
        for _ in 0..50 {
            result = stripe
                .create_customer(Uuid::new_v4(), "a@example.com")
                .await;
            if result.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let err = result.unwrap_err();
        assert!(matches!(err, PaymentError::Provider { .. }), "{err:?}");
    }
}
