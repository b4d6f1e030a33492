//! The npm `oidc-provider` (`tests/oidc-provider/`), started by a test as a real identity
//! provider, and the steps of a federated login against it.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tenantry_proto::auth::v1 as api;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Harness, with_token};

pub const CLIENT_ID: &str = "tenantry-app";
pub const CLIENT_SECRET: &str = "client-s3cret-value/+&";
pub const REDIRECT: &str = "http://127.0.0.1:8089/auth/callback";

pub fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// `npm ci` once per test binary, if the harness was never installed.
pub async fn installed() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            if harness_dir().join("node_modules/oidc-provider").exists() {
                return;
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(harness_dir())
                .status()
                .await
                .expect("npm must be installed");
            assert!(status.success(), "npm ci failed in tests/oidc-provider");
        })
        .await;
}

pub struct Provider {
    pub issuer: String,
    // Killed on drop; its stdin closing also stops it.
    _child: Child,
}

pub async fn provider(mode: &str, claims: Value) -> Provider {
    installed().await;
    let mut child = Command::new("node")
        .arg("server.mjs")
        .args([
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            REDIRECT,
        ])
        .args(["--claims", &claims.to_string(), "--mode", mode])
        .current_dir(harness_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let ready: Value = serde_json::from_str(&line).expect("provider ready line");
    Provider {
        issuer: ready["issuer"].as_str().unwrap().to_owned(),
        _child: child,
    }
}

/// Plays the browser: follows the authorization URL through the provider's login and consent
/// and returns the `code` and `state` it redirects back with.
pub async fn authorize(p: &Provider, url: &str) -> (String, String) {
    let helper =
        reqwest::Url::parse_with_params(&format!("{}/test/login", p.issuer), &[("authorize", url)])
            .unwrap();
    let answer: Value = reqwest::get(helper).await.unwrap().json().await.unwrap();
    let redirect = reqwest::Url::parse(answer["redirect"].as_str().expect("a redirect")).unwrap();
    assert!(redirect.as_str().starts_with(REDIRECT));
    let get = |k: &str| {
        redirect
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    (get("code").expect("a code"), get("state").unwrap())
}

pub fn keycloak_claims(tenant: Uuid, roles: &[&str]) -> Value {
    json!({
        "email": "alice@example.com",
        "resource_access": {CLIENT_ID: {"roles": roles, "tenant_id": tenant.to_string()}},
    })
}

pub async fn configure(
    h: &Harness,
    owner: &str,
    p: &Provider,
    preset: &str,
    tenant_claim: &str,
) -> api::OidcProvider {
    h.providers()
        .configure_oidc_provider(with_token(
            api::ConfigureOidcProviderRequest {
                preset: preset.into(),
                issuer: p.issuer.clone(),
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                scopes: vec!["openid".into()],
                claims: Some(api::ClaimMappings {
                    tenant_id: tenant_claim.into(),
                    ..Default::default()
                }),
                redirect_uris: vec![REDIRECT.into()],
                ..Default::default()
            },
            Some(owner),
        ))
        .await
        .expect("configure provider")
        .into_inner()
        .provider
        .unwrap()
}

pub async fn begin(h: &Harness, tenant: Uuid, provider_id: &str) -> api::BeginOidcLoginResponse {
    h.sessions()
        .begin_oidc_login(api::BeginOidcLoginRequest {
            tenant_id: tenant.to_string(),
            provider_id: provider_id.into(),
            redirect_uri: REDIRECT.into(),
        })
        .await
        .expect("begin")
        .into_inner()
}

pub async fn complete(
    h: &Harness,
    code: String,
    state: String,
) -> Result<api::SessionResponse, tonic::Status> {
    h.sessions()
        .complete_oidc_login(api::CompleteOidcLoginRequest { state, code })
        .await
        .map(|r| r.into_inner())
}

pub async fn login(
    h: &Harness,
    p: &Provider,
    tenant: Uuid,
    provider_id: &str,
) -> Result<api::SessionResponse, tonic::Status> {
    let begun = begin(h, tenant, provider_id).await;
    let url = reqwest::Url::parse(&begun.authorization_url).unwrap();
    let param = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("nonce").is_some() && param("state") == Some(begun.state.clone()));
    let (code, state) = authorize(p, &begun.authorization_url).await;
    assert_eq!(state, begun.state);
    complete(h, code, state).await
}
