//! The fake's HTTP endpoints, in Efí's wire format (dev.efipay.com.br): the Pix API's token,
//! immediate charges and QR codes, and the charges API's token and one-step boleto.
//! Answers and error bodies follow Efí's shapes (`{"nome","mensagem"}` on the Pix API,
//! `{"code","error","error_description"}` on the charges API); QR codes and barcodes are
//! well-formed placeholders, not payable ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Which API issued a token (a Pix token is no good on the charges API and back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Pix,
    Charges,
}

/// A Pix immediate charge as the fake holds it.
#[derive(Debug, Clone)]
pub struct PixCharge {
    pub txid: String,
    /// The body of the `PUT /v2/cob/{txid}` that created it.
    pub request: Value,
    /// `ATIVA` until paid, then `CONCLUIDA`.
    pub status: String,
    pub loc_id: u64,
    pub created: chrono::DateTime<chrono::Utc>,
}

/// A boleto as the fake issued it.
#[derive(Debug, Clone)]
pub struct Boleto {
    pub charge_id: u64,
    /// The body of the `POST /v1/charge/one-step` that created it.
    pub request: Value,
    /// The charge's notification token: the same for its whole life, as Efí's.
    pub token: String,
    /// Its status changes, oldest first (`new`, `waiting`, then `paid`).
    pub history: Vec<&'static str>,
}

pub(super) struct State {
    pub client_id: String,
    pub client_secret: String,
    pub pix_key: String,
    pub token_ttl: Duration,
    pub tokens: Mutex<HashMap<String, (Api, Instant)>>,
    pub pix_token_requests: AtomicUsize,
    pub charges_token_requests: AtomicUsize,
    pub cobs: Mutex<BTreeMap<String, PixCharge>>,
    pub boletos: Mutex<Vec<Boleto>>,
    pub next_id: AtomicU64,
}

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/oauth/token", post(pix_token))
        .route("/v1/authorize", post(charges_token))
        .route("/v2/cob/{txid}", put(create_cob).get(read_cob))
        .route("/v2/loc/{id}/qrcode", get(qrcode))
        .route("/v1/charge/one-step", post(one_step))
        .route("/v1/notification/{token}", get(notification))
        .with_state(state)
}

fn pix_error(status: StatusCode, nome: &str, mensagem: &str) -> Response {
    (
        status,
        axum::Json(json!({ "nome": nome, "mensagem": mensagem })),
    )
        .into_response()
}

fn charges_error(status: StatusCode, error: &str, property: &str, message: &str) -> Response {
    let body = json!({
        "code": 3_500_034,
        "error": error,
        "error_description": { "property": property, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

impl State {
    fn basic_ok(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = header(headers, "authorization").and_then(|h| h.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded) else {
            return false;
        };
        decoded == format!("{}:{}", self.client_id, self.client_secret).as_bytes()
    }

    async fn bearer_ok(&self, headers: &HeaderMap, api: Api) -> bool {
        let Some(token) = header(headers, "authorization").and_then(|h| h.strip_prefix("Bearer "))
        else {
            return false;
        };
        let tokens = self.tokens.lock().await;
        matches!(tokens.get(token), Some((for_api, expires)) if *for_api == api && Instant::now() < *expires)
    }

    /// Checks the client credentials and the grant, and issues a token for `api`.
    async fn issue(&self, headers: &HeaderMap, body: &[u8], api: Api) -> Result<String, Response> {
        let grant: Option<Value> = serde_json::from_slice(body).ok();
        let grant = grant
            .as_ref()
            .and_then(|b| b.get("grant_type"))
            .and_then(Value::as_str);
        if !self.basic_ok(headers) || grant != Some("client_credentials") {
            let body = json!({ "error": "invalid_client", "error_description": "Invalid or inactive credentials" });
            return Err((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.tokens
            .lock()
            .await
            .insert(token.clone(), (api, Instant::now() + self.token_ttl));
        Ok(token)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn pix_token(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.pix_token_requests.fetch_add(1, Ordering::SeqCst);
    match state.issue(&headers, &body, Api::Pix).await {
        Ok(token) => axum::Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.token_ttl.as_secs(),
            "scope": "cob.read cob.write pix.read pix.write webhook.read webhook.write",
        }))
        .into_response(),
        Err(refused) => refused,
    }
}

async fn charges_token(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.charges_token_requests.fetch_add(1, Ordering::SeqCst);
    match state.issue(&headers, &body, Api::Charges).await {
        Ok(token) => {
            let expire_at = chrono::Utc::now() + state.token_ttl;
            axum::Json(json!({
                "access_token": token,
                "refresh_token": uuid::Uuid::new_v4().simple().to_string(),
                "expires_in": state.token_ttl.as_secs(),
                "expire_at": expire_at.timestamp_millis().to_string(),
                "token_type": "Bearer",
            }))
            .into_response()
        }
        Err(refused) => refused,
    }
}

fn valid_txid(txid: &str) -> bool {
    (26..=35).contains(&txid.len()) && txid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// "49.90": digits, a point, two digits (the Pix API's `valor.original`).
fn valid_amount(value: &str) -> bool {
    let Some((units, cents)) = value.split_once('.') else {
        return false;
    };
    !units.is_empty()
        && units.len() <= 10
        && cents.len() == 2
        && units
            .bytes()
            .chain(cents.bytes())
            .all(|b| b.is_ascii_digit())
}

fn digits(value: Option<&Value>, len: usize) -> bool {
    value
        .and_then(Value::as_str)
        .is_some_and(|v| v.len() == len && v.bytes().all(|b| b.is_ascii_digit()))
}

/// What is wrong with a `cob` body, if anything.
fn cob_problem(body: &Value, pix_key: &str) -> Option<&'static str> {
    let expiracao = body.pointer("/calendario/expiracao");
    if expiracao.is_some_and(|e| e.as_u64().is_none_or(|e| e == 0)) {
        return Some("calendario.expiracao must be a positive integer");
    }
    if !body
        .pointer("/valor/original")
        .and_then(Value::as_str)
        .is_some_and(valid_amount)
    {
        return Some("valor.original must be a decimal with two places");
    }
    if body.get("chave").and_then(Value::as_str) != Some(pix_key) {
        return Some("chave is not a key of this account");
    }
    if let Some(message) = body.get("solicitacaoPagador")
        && message.as_str().is_none_or(|m| m.chars().count() > 140)
    {
        return Some("solicitacaoPagador must be at most 140 characters");
    }
    if let Some(devedor) = body.get("devedor") {
        let document = digits(devedor.get("cpf"), 11) || digits(devedor.get("cnpj"), 14);
        if !document
            || devedor
                .get("nome")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Some("devedor needs nome and a cpf or cnpj");
        }
    }
    None
}

fn cob_json(cob: &PixCharge) -> Value {
    let location = format!("qrcodes-pix.fake-efi.test/v2/{}", cob.txid);
    let mut body = cob.request.clone();
    body["calendario"] = json!({
        "criacao": cob.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "expiracao": cob.request.pointer("/calendario/expiracao").cloned().unwrap_or(json!(86_400)),
    });
    body["txid"] = json!(cob.txid);
    body["revisao"] = json!(0);
    body["loc"] = json!({ "id": cob.loc_id, "location": location, "tipoCob": "cob" });
    body["location"] = json!(location);
    body["status"] = json!(cob.status);
    body["pixCopiaECola"] = json!(copy_paste(&cob.txid));
    body
}

/// A BR Code's shape (EMV fields with a dynamic location), not a payable one.
fn copy_paste(txid: &str) -> String {
    format!(
        "00020101021226830014BR.GOV.BCB.PIX2561qrcodes-pix.fake-efi.test/v2/{txid}5204000053039865802BR5913FAKE EFI TEST6009SAO PAULO62070503***6304FA4E"
    )
}

async fn create_cob(
    Extract(state): Extract<Arc<State>>,
    Path(txid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.bearer_ok(&headers, Api::Pix).await {
        return pix_error(
            StatusCode::UNAUTHORIZED,
            "nao_autorizado",
            "token inválido ou expirado",
        );
    }
    if !valid_txid(&txid) {
        return pix_error(
            StatusCode::BAD_REQUEST,
            "valor_invalido",
            "txid deve ter de 26 a 35 caracteres alfanuméricos",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return pix_error(
            StatusCode::BAD_REQUEST,
            "json_invalido",
            "corpo da requisição inválido",
        );
    };
    if let Some(problem) = cob_problem(&request, &state.pix_key) {
        return pix_error(StatusCode::BAD_REQUEST, "valor_invalido", problem);
    }
    let mut cobs = state.cobs.lock().await;
    if cobs.contains_key(&txid) {
        return pix_error(
            StatusCode::CONFLICT,
            "txid_duplicado",
            "Campo txid informado já foi utilizado em outra cobrança",
        );
    }
    let cob = PixCharge {
        txid: txid.clone(),
        request,
        status: "ATIVA".into(),
        loc_id: state.next_id.fetch_add(1, Ordering::SeqCst),
        // As written on the wire: milliseconds.
        created: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3),
    };
    let reply = cob_json(&cob);
    cobs.insert(txid, cob);
    (StatusCode::CREATED, axum::Json(reply)).into_response()
}

async fn read_cob(
    Extract(state): Extract<Arc<State>>,
    Path(txid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.bearer_ok(&headers, Api::Pix).await {
        return pix_error(
            StatusCode::UNAUTHORIZED,
            "nao_autorizado",
            "token inválido ou expirado",
        );
    }
    match state.cobs.lock().await.get(&txid) {
        Some(cob) => axum::Json(cob_json(cob)).into_response(),
        None => pix_error(
            StatusCode::NOT_FOUND,
            "cobranca_nao_encontrada",
            "Nenhuma cobrança encontrada para o txid informado",
        ),
    }
}

async fn qrcode(
    Extract(state): Extract<Arc<State>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if !state.bearer_ok(&headers, Api::Pix).await {
        return pix_error(
            StatusCode::UNAUTHORIZED,
            "nao_autorizado",
            "token inválido ou expirado",
        );
    }
    let cobs = state.cobs.lock().await;
    let Some(cob) = cobs.values().find(|c| c.loc_id == id) else {
        return pix_error(
            StatusCode::NOT_FOUND,
            "location_nao_encontrada",
            "Nenhuma location encontrada para o identificador informado",
        );
    };
    // A PNG's signature and the txid: an image only by its type.
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), cob.txid.as_bytes()].concat();
    axum::Json(json!({
        "qrcode": copy_paste(&cob.txid),
        "imagemQrcode": format!("data:image/png;base64,{}", STANDARD.encode(png)),
        "linkVisualizacao": format!("https://pix.fake-efi.test/cob/pagar/{}", cob.txid),
    }))
    .into_response()
}

/// What is wrong with a one-step boleto body, as (property, message), if anything.
fn boleto_problem(body: &Value) -> Option<(&'static str, &'static str)> {
    let items = body.get("items").and_then(Value::as_array);
    if items.is_none_or(|items| items.is_empty()) {
        return Some(("/items", "at least one item is required"));
    }
    for item in items.into_iter().flatten() {
        if item
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Some(("/items/name", "name is required"));
        }
        // Integers in cents: "49.90" or 49.9 are refused.
        let positive = |v: &Value| v.as_u64().is_some_and(|v| v > 0);
        if !item.get("value").is_some_and(positive) {
            return Some(("/items/value", "value must be a positive integer, in cents"));
        }
        if item.get("amount").is_some_and(|a| !positive(a)) {
            return Some(("/items/amount", "amount must be a positive integer"));
        }
    }
    let Some(billet) = body.pointer("/payment/banking_billet") else {
        return Some(("/payment", "banking_billet is required"));
    };
    let expire_at = billet.get("expire_at").and_then(Value::as_str);
    if expire_at.is_none_or(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err()) {
        return Some((
            "/payment/banking_billet/expire_at",
            "expire_at must be YYYY-MM-DD",
        ));
    }
    let Some(customer) = billet.get("customer") else {
        return Some(("/payment/banking_billet/customer", "customer is required"));
    };
    let person = digits(customer.get("cpf"), 11)
        && customer
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
    let company = customer.get("juridical_person").is_some_and(|j| {
        digits(j.get("cnpj"), 14)
            && j.get("corporate_name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
    });
    if !person && !company {
        return Some((
            "/payment/banking_billet/customer/cpf",
            "name and cpf, or juridical_person, are required",
        ));
    }
    None
}

async fn one_step(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.bearer_ok(&headers, Api::Charges).await {
        return charges_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "/",
            "invalid or expired token",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return charges_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "/",
            "invalid JSON",
        );
    };
    if let Some((property, message)) = boleto_problem(&request) {
        return charges_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            property,
            message,
        );
    }
    let total: u64 = request["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["value"].as_u64().unwrap_or(0) * i["amount"].as_u64().unwrap_or(1))
        .sum();
    let charge_id = state.next_id.fetch_add(1, Ordering::SeqCst);
    let expire_at = request
        .pointer("/payment/banking_billet/expire_at")
        .cloned();
    let link = format!("https://boletos.fake-efi.test/emissao/{charge_id}");
    let reply = json!({
        "code": 200,
        "data": {
            "barcode": format!("36490.00019 00000.000000 00000.000000 1 0000{total:010}"),
            "pix": {
                "qrcode": copy_paste(&format!("boleto{charge_id:026}")),
                "qrcode_image": "data:image/svg+xml;base64,PHN2Zy8+",
            },
            "link": link,
            "billet_link": format!("{link}/billet"),
            "pdf": { "charge": format!("{link}/pdf") },
            "expire_at": expire_at,
            "charge_id": charge_id,
            "status": "waiting",
            "total": total,
            "payment": "banking_billet",
        }
    });
    state.boletos.lock().await.push(Boleto {
        charge_id,
        request,
        token: uuid::Uuid::new_v4().to_string(),
        history: vec!["new", "waiting"],
    });
    axum::Json(reply).into_response()
}

/// `GET /v1/notification/{token}`: the charge's status changes, as Efí lists them (the paid
/// one with its value in cents).
async fn notification(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !state.bearer_ok(&headers, Api::Charges).await {
        return charges_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "/",
            "invalid or expired token",
        );
    }
    let boletos = state.boletos.lock().await;
    let Some(boleto) = boletos.iter().find(|b| b.token == token) else {
        return charges_error(
            StatusCode::NOT_FOUND,
            "notification_not_found",
            "/token",
            "notification not found",
        );
    };
    let total: u64 = boleto.request["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["value"].as_u64().unwrap_or(0) * i["amount"].as_u64().unwrap_or(1))
        .sum();
    let custom_id = boleto.request.pointer("/metadata/custom_id").cloned();
    let data: Vec<Value> = boleto
        .history
        .iter()
        .enumerate()
        .map(|(i, current)| {
            let mut change = json!({
                "id": i + 1,
                "type": "charge",
                "custom_id": custom_id,
                "status": {
                    "current": current,
                    "previous": i.checked_sub(1).map(|p| boleto.history[p]),
                },
                "identifiers": { "charge_id": boleto.charge_id },
                "created_at": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            });
            if *current == "paid" {
                change["value"] = json!(total);
            }
            change
        })
        .collect();
    axum::Json(json!({ "code": 200, "data": data })).into_response()
}
