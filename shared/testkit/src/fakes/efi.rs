//! A fake Efí: its Pix API and charges API on one mutual-TLS port, and its Pix webhook calls.
//!
//! Like Efí, it refuses during the handshake any client without a certificate signed by the
//! CA it is given, requires HTTP Basic client credentials for tokens and a live bearer token
//! of the right API on every other call, and records what it was asked to charge. A test
//! "pays" a charge with [`FakeEfi::pay`]: the fake posts the Pix webhook to the registered
//! URL (with `/pix` appended, as Efí does) presenting its own client certificate, the way Efí
//! presents its published one. A boleto is paid with [`FakeEfi::pay_boleto`], and its
//! notification (`notification=<token>`, a form) posted with [`FakeEfi::post_notification`];
//! what the token stands for is then read at `GET /v1/notification/{token}`.
//!
//! Endpoints: `POST /oauth/token`, `PUT|GET /v2/cob/{txid}`, `GET /v2/loc/{id}/qrcode`
//! (Pix API); `POST /v1/authorize`, `POST /v1/charge/one-step`,
//! `GET /v1/notification/{token}` (charges API).

mod api;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use api::{Api, Boleto, PixCharge};

use crate::pki::Pair;

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeEfiSettings {
    pub client_id: String,
    pub client_secret: String,
    /// The account's Pix key: a charge to any other is refused.
    pub pix_key: String,
    /// The fake's server certificate (for 127.0.0.1).
    pub server: Pair,
    /// The CA whose client certificates the API accepts.
    pub client_ca: PathBuf,
    /// The certificate the fake presents when it posts the webhook.
    pub webhook_client: Pair,
    /// The CA that signed the webhook listener's server certificate.
    pub webhook_server_ca: PathBuf,
    /// Tokens' `expires_in`.
    pub token_ttl: Duration,
}

/// A running fake Efí; it stops when dropped.
pub struct FakeEfi {
    addr: SocketAddr,
    state: Arc<api::State>,
    webhook_client: reqwest::Client,
    webhook_url: Mutex<Option<String>>,
    refused_handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for FakeEfi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &std::path::Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key(path: &std::path::Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn roots(path: &std::path::Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(path) {
        roots.add(cert).expect("a CA certificate");
    }
    roots
}

impl FakeEfi {
    /// Starts the fake on a loopback port chosen by the system.
    pub async fn start(settings: FakeEfiSettings) -> Self {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(&settings.client_ca)),
            provider(),
        )
        .build()
        .expect("the client certificate verifier");
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs(&settings.server.cert), key(&settings.server.key))
            .expect("the fake's server certificate");
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let webhook_tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots(&settings.webhook_server_ca))
            .with_client_auth_cert(
                certs(&settings.webhook_client.cert),
                key(&settings.webhook_client.key),
            )
            .expect("the fake's webhook client certificate");
        let webhook_client = reqwest::Client::builder()
            .tls_backend_preconfigured(webhook_tls)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the webhook client");

        let state = Arc::new(api::State {
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            pix_key: settings.pix_key,
            token_ttl: settings.token_ttl,
            tokens: Mutex::new(HashMap::new()),
            pix_token_requests: AtomicUsize::new(0),
            charges_token_requests: AtomicUsize::new(0),
            cobs: Mutex::new(BTreeMap::new()),
            boletos: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1000),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("the fake's address");
        let refused_handshakes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(
            listener,
            acceptor,
            api::router(state.clone()),
            refused_handshakes.clone(),
        ));
        Self {
            addr,
            state,
            webhook_client,
            webhook_url: Mutex::new(None),
            refused_handshakes,
            task,
        }
    }

    /// `https://127.0.0.1:{port}`: the base of both APIs.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Token requests so far to `api`.
    pub fn token_requests(&self, api: Api) -> usize {
        match api {
            Api::Pix => self.state.pix_token_requests.load(Ordering::SeqCst),
            Api::Charges => self.state.charges_token_requests.load(Ordering::SeqCst),
        }
    }

    /// Handshakes refused so far (no client certificate, or one the CA did not sign).
    pub fn refused_handshakes(&self) -> usize {
        self.refused_handshakes.load(Ordering::SeqCst)
    }

    /// Revokes every token issued so far: the next call with one is answered 401.
    pub async fn revoke_tokens(&self) {
        self.state.tokens.lock().await.clear();
    }

    /// The Pix charges, by txid.
    pub async fn pix_charges(&self) -> Vec<PixCharge> {
        self.state.cobs.lock().await.values().cloned().collect()
    }

    /// The boletos, in the order they were issued.
    pub async fn boletos(&self) -> Vec<Boleto> {
        self.state.boletos.lock().await.clone()
    }

    /// Registers the Pix webhook URL (Efí's `PUT /v2/webhook/{chave}`, done here by hand).
    pub async fn set_webhook_url(&self, url: &str) {
        *self.webhook_url.lock().await = Some(url.trim_end_matches('/').to_owned());
    }

    /// Pays the charge `txid`: it becomes `CONCLUIDA` and the webhook is posted with a fresh
    /// `endToEndId`. Returns that id and the listener's HTTP status.
    pub async fn pay(&self, txid: &str) -> Result<(String, u16), String> {
        let (valor, chave) = {
            let mut cobs = self.state.cobs.lock().await;
            let cob = cobs
                .get_mut(txid)
                .ok_or_else(|| format!("no pix charge {txid}"))?;
            cob.status = "CONCLUIDA".into();
            let valor = cob.request.pointer("/valor/original").cloned();
            (valor, cob.request.get("chave").cloned())
        };
        let end_to_end_id = end_to_end_id();
        let notification = json!({
            "pix": [{
                "endToEndId": end_to_end_id,
                "txid": txid,
                "chave": chave,
                "valor": valor,
                "horario": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "infoPagador": "pagamento de teste",
            }]
        });
        let body = serde_json::to_vec(&notification).map_err(|e| e.to_string())?;
        let status = self.post_webhook(body).await?;
        Ok((end_to_end_id, status))
    }

    /// Pays the boleto `charge_id`: its history gains `paid`. Returns its notification token
    /// and the charge's `metadata.notification_url`, for the test to post (with
    /// [`Self::post_notification`]) where that URL leads.
    pub async fn pay_boleto(&self, charge_id: u64) -> Result<(String, String), String> {
        let mut boletos = self.state.boletos.lock().await;
        let boleto = boletos
            .iter_mut()
            .find(|b| b.charge_id == charge_id)
            .ok_or_else(|| format!("no boleto {charge_id}"))?;
        boleto.history.push("paid");
        let url = boleto
            .request
            .pointer("/metadata/notification_url")
            .and_then(serde_json::Value::as_str)
            .ok_or("the boleto has no notification_url")?
            .to_owned();
        Ok((boleto.token.clone(), url))
    }

    /// Posts `notification=<token>` to `url` as Efí's charges API does; returns the status.
    pub async fn post_notification(&self, url: &str, token: &str) -> Result<u16, String> {
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("notification={token}"))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(response.status().as_u16())
    }

    /// Posts `body` to the webhook as Efí would (`{url}/pix`, Efí's certificate); returns the
    /// listener's HTTP status.
    pub async fn post_webhook(&self, body: Vec<u8>) -> Result<u16, String> {
        let url = self
            .webhook_url
            .lock()
            .await
            .clone()
            .ok_or("no webhook URL registered")?;
        let response = self
            .webhook_client
            .post(format!("{url}/pix"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(response.status().as_u16())
    }
}

/// `E` + Efí's ISPB + the minute + 11 characters: the shape of a Pix end-to-end id.
fn end_to_end_id() -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "E09089356{}{}",
        chrono::Utc::now().format("%Y%m%d%H%M"),
        &unique[..11]
    )
}

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    refused: Arc<AtomicUsize>,
) {
    // Connections live in this set: aborting the accept task drops it, which ends them too.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, router, refused) = (acceptor.clone(), router.clone(), refused.clone());
        connections.spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                refused.fetch_add(1, Ordering::SeqCst);
                return;
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                .await;
        });
        // Reap finished connections so the set does not grow with every one.
        while connections.try_join_next().is_some() {}
    }
}
