//! A fake of Stripe's API for the calls billing makes: `POST /v1/customers` and
//! `POST /v1/checkout/sessions`, in Stripe's wire format (form-encoded requests with
//! bracketed keys, JSON answers, `cus_…`/`cs_test_…` ids, `{"error": {type, code, param,
//! message}}` errors, bearer keys, `Idempotency-Key` replays). It refuses what Stripe refuses
//! for these calls (an unknown parameter, a missing customer, a subscription without a
//! recurring price), so a client that passes here sends what Stripe accepts.
//!
//! ```ignore
//! let stripe = FakeStripe::start().await;
//! // point the client at stripe.url() with stripe.secret_key() ...
//! assert_eq!(stripe.customers().await.len(), 1);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

/// A customer made through the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A Checkout Session made through the fake, with the form fields it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub url: String,
    pub expires_at: i64,
    pub form: Vec<(String, String)>,
}

impl Session {
    /// The value of form field `key` (e.g. `line_items[0][price_data][currency]`).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A running fake, on a loopback port of its own; it stops when dropped.
pub struct FakeStripe {
    url: String,
    secret_key: String,
    state: Arc<Mutex<Ledger>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeStripe {
    /// A fake with a fresh test-mode secret key.
    pub async fn start() -> Self {
        Self::with_key(format!("sk_test_{}", Uuid::new_v4().simple())).await
    }

    /// A fake that accepts only `secret_key`.
    pub async fn with_key(secret_key: impl Into<String>) -> Self {
        let secret_key = secret_key.into();
        let state = Arc::new(Mutex::new(Ledger::default()));
        let app = App {
            secret_key: secret_key.clone(),
            ledger: state.clone(),
        };
        let router = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/checkout/sessions", post(create_session))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: format!("http://{addr}"),
            secret_key,
            state,
            server,
        }
    }

    /// The API base (`http://127.0.0.1:PORT`), as `https://api.stripe.com` would be.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub async fn customers(&self) -> Vec<Customer> {
        self.state.lock().await.customers.clone()
    }

    pub async fn sessions(&self) -> Vec<Session> {
        self.state.lock().await.sessions.clone()
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct App {
    secret_key: String,
    ledger: Arc<Mutex<Ledger>>,
}

#[derive(Default)]
struct Ledger {
    customers: Vec<Customer>,
    sessions: Vec<Session>,
    /// Idempotency-Key → the request it was first used with and the answer then given.
    replays: HashMap<String, Replay>,
}

struct Replay {
    path: &'static str,
    form: Vec<(String, String)>,
    body: Value,
}

/// A refusal: the status and Stripe's error object.
type Refusal = (StatusCode, Value);

/// An endpoint's own work on a validated key: the object made, or why not.
type Create = fn(&mut Ledger, &[(String, String)]) -> Result<Value, Refusal>;

async fn create_customer(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    handle(&app, "/v1/customers", &headers, form, customer).await
}

async fn create_session(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    handle(&app, "/v1/checkout/sessions", &headers, form, session).await
}

/// What every endpoint does around its own work: the key, then idempotency. As Stripe does,
/// only a request that passed validation is saved under its key; a key reused with other
/// parameters is an `idempotency_error`.
async fn handle(
    app: &App,
    path: &'static str,
    headers: &HeaderMap,
    form: Vec<(String, String)>,
    create: Create,
) -> Response {
    if let Err(refusal) = authorize(app, headers) {
        return reply(refusal, false);
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut ledger = app.ledger.lock().await;
    if let Some(replay) = key.as_ref().and_then(|k| ledger.replays.get(k)) {
        if replay.path == path && replay.form == form {
            return reply((StatusCode::OK, replay.body.clone()), true);
        }
        let message = format!(
            "Keys for idempotent requests can only be used with the same parameters they were \
             first used with. Try using a key other than '{}' if you meant to execute a \
             different request.",
            key.as_deref().unwrap_or_default()
        );
        return reply(
            error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                None,
                message,
            ),
            false,
        );
    }
    match create(&mut ledger, &form) {
        Ok(body) => {
            if let Some(key) = key {
                let body = body.clone();
                ledger.replays.insert(key, Replay { path, form, body });
            }
            reply((StatusCode::OK, body), false)
        }
        Err(refusal) => reply(refusal, false),
    }
}

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), Refusal> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(key) if key == app.secret_key => Ok(()),
        Some(key) => {
            // Stripe masks all but the last four characters of the key it was given.
            let hidden = key.len().saturating_sub(4);
            let masked = format!("{}{}", "*".repeat(hidden), key.get(hidden..).unwrap_or(""));
            Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                None,
                None,
                format!("Invalid API Key provided: {masked}"),
            ))
        }
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            None,
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY')."
                .into(),
        )),
    }
}

fn customer(ledger: &mut Ledger, form: &[(String, String)]) -> Result<Value, Refusal> {
    let mut email = None;
    let mut metadata = BTreeMap::new();
    for (key, value) in form {
        match split_key(key).as_tuple() {
            ("email", []) => email = Some(value.clone()),
            ("name" | "description" | "phone", []) => {}
            ("metadata", [name]) => {
                metadata.insert((*name).to_owned(), value.clone());
            }
            _ => return Err(unknown_parameter(key)),
        }
    }
    let customer = Customer {
        id: format!("cus_{}", &Uuid::new_v4().simple().to_string()[..14]),
        email,
        metadata,
    };
    let body = json!({
        "id": customer.id,
        "object": "customer",
        "created": chrono::Utc::now().timestamp(),
        "email": customer.email,
        "livemode": false,
        "metadata": customer.metadata,
    });
    ledger.customers.push(customer);
    Ok(body)
}

fn session(ledger: &mut Ledger, form: &[(String, String)]) -> Result<Value, Refusal> {
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let mut items: BTreeMap<usize, BTreeMap<String, &str>> = BTreeMap::new();
    for (key, value) in form {
        match split_key(key).as_tuple() {
            (
                name @ ("mode"
                | "customer"
                | "client_reference_id"
                | "success_url"
                | "cancel_url"
                | "customer_email"),
                [],
            ) => {
                fields.insert(name, value.as_str());
            }
            ("metadata", [name]) => {
                metadata.insert((*name).to_owned(), value.clone());
            }
            ("line_items", [index, rest @ ..])
                if LINE_ITEM_FIELDS.contains(&rest.join(".").as_str()) =>
            {
                let index = index.parse().map_err(|_| unknown_parameter(key))?;
                items
                    .entry(index)
                    .or_default()
                    .insert(rest.join("."), value.as_str());
            }
            _ => return Err(unknown_parameter(key)),
        }
    }

    let mode = *fields.get("mode").ok_or_else(|| missing("mode"))?;
    if !matches!(mode, "payment" | "setup" | "subscription") {
        return Err(invalid(
            "mode",
            "Invalid mode: must be one of payment, setup, or subscription".into(),
        ));
    }
    let customer = fields.get("customer").copied();
    if let Some(id) = customer
        && !ledger.customers.iter().any(|c| c.id == id)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("resource_missing"),
            Some("customer"),
            format!("No such customer: '{id}'"),
        ));
    }
    let mut amount_total = 0i64;
    let mut currency = None;
    let mut recurring = false;
    for (index, item) in &items {
        let param = |field: &str| format!("line_items[{index}][{field}]");
        let quantity = integer(
            item.get("quantity").copied().unwrap_or("1"),
            &param("quantity"),
        )?;
        if item.contains_key("price") {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("resource_missing"),
                Some(&param("price")),
                "No such price".into(),
            ));
        }
        let price = |field: &str| {
            item.get(&format!("price_data.{field}"))
                .copied()
                .ok_or_else(|| {
                    missing(&format!(
                        "line_items[{index}][price_data][{}]",
                        field.replace('.', "][")
                    ))
                })
        };
        let item_currency = price("currency")?.to_ascii_lowercase();
        if item_currency.len() != 3 || !item_currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(invalid(
                &param("price_data][currency"),
                format!("Invalid currency: {item_currency}"),
            ));
        }
        let unit = integer(price("unit_amount")?, &param("price_data][unit_amount"))?;
        if !item.contains_key("price_data.product") {
            price("product_data.name")?;
        }
        if let Some(interval) = item.get("price_data.recurring.interval") {
            if !matches!(*interval, "day" | "week" | "month" | "year") {
                return Err(invalid(
                    &param("price_data][recurring][interval"),
                    "Invalid recurring[interval]: must be one of day, week, month, or year".into(),
                ));
            }
            recurring = true;
        }
        amount_total += unit * quantity;
        currency = Some(item_currency);
    }
    if mode == "subscription" && !recurring {
        return Err(invalid(
            "line_items",
            "You must provide at least one recurring price in `subscription` mode when using prices.".into(),
        ));
    }

    let id = format!(
        "cs_test_{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let url = format!("https://checkout.stripe.com/c/pay/{id}");
    let now = chrono::Utc::now().timestamp();
    // Stripe's default: a session can be paid for 24 hours.
    let expires_at = now + 24 * 3600;
    let body = json!({
        "id": id,
        "object": "checkout.session",
        "amount_total": amount_total,
        "client_reference_id": fields.get("client_reference_id"),
        "created": now,
        "currency": currency,
        "customer": customer,
        "expires_at": expires_at,
        "livemode": false,
        "metadata": metadata,
        "mode": mode,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": fields.get("success_url"),
        "url": url,
    });
    ledger.sessions.push(Session {
        id,
        url,
        expires_at,
        form: form.to_vec(),
    });
    Ok(body)
}

/// What a line item may carry (its bracketed path after the index, dot-joined).
const LINE_ITEM_FIELDS: &[&str] = &[
    "quantity",
    "price",
    "price_data.currency",
    "price_data.unit_amount",
    "price_data.product",
    "price_data.recurring.interval",
    "price_data.recurring.interval_count",
    "price_data.product_data.name",
    "price_data.product_data.description",
];

/// A form key in Stripe's bracket notation: `line_items[0][price_data][currency]` is
/// `line_items` with the path [`0`, `price_data`, `currency`].
struct Key<'a> {
    head: &'a str,
    path: Vec<&'a str>,
}

impl<'a> Key<'a> {
    fn as_tuple(&self) -> (&'a str, &[&'a str]) {
        (self.head, &self.path)
    }
}

fn split_key(key: &str) -> Key<'_> {
    let split = key
        .split_once('[')
        .and_then(|(head, rest)| Some((head, rest.strip_suffix(']')?)));
    match split {
        Some((head, inner)) => Key {
            head,
            path: inner.split("][").collect(),
        },
        None => Key {
            head: key,
            path: Vec::new(),
        },
    }
}

fn integer(value: &str, param: &str) -> Result<i64, Refusal> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_invalid_integer"),
                Some(param),
                format!("Invalid integer: {value}"),
            )
        })
}

fn unknown_parameter(key: &str) -> Refusal {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("parameter_unknown"),
        Some(key),
        format!("Received unknown parameter: {key}"),
    )
}

fn missing(param: &str) -> Refusal {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("parameter_missing"),
        Some(param),
        format!("Missing required param: {param}."),
    )
}

fn invalid(param: &str, message: String) -> Refusal {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        Some(param),
        message,
    )
}

fn error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: String,
) -> Refusal {
    let mut body = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        body["code"] = json!(code);
        body["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        body["param"] = json!(param);
    }
    (status, json!({ "error": body }))
}

/// Every answer carries a `Request-Id`; a replay says so, as Stripe's does.
fn reply((status, body): Refusal, replayed: bool) -> Response {
    let mut response = (status, Json(body)).into_response();
    let request_id = format!("req_{}", &Uuid::new_v4().simple().to_string()[..14]);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
