//! Issue 17, item 10: the login throttle behind the edge, and floods it did not cover.
//!
//! The test's own connection plays the proxy: its peer address is 127.0.0.1, and it says who
//! its client was in `X-Forwarded-For`, as the gateway does.

use std::time::Duration;

use tenantry_kit::ManualClock;
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

use crate::common::oidc::{REDIRECT, configure, keycloak_claims, provider};
use crate::common::{Harness, PASSWORD, email, start_full, start_with};

const ATTACKER: &str = "203.0.113.7";
const USER: &str = "198.51.100.20";

/// `message` as the proxy forwards it for the client at `client`.
fn via_proxy<T>(client: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-forwarded-for", client.parse().unwrap());
    request
}

async fn login_from(
    h: &Harness,
    client: &str,
    email: &str,
    password: &str,
) -> Result<api::SessionResponse, tonic::Status> {
    h.sessions()
        .login(via_proxy(
            client,
            api::LoginRequest {
                email: email.into(),
                password: password.into(),
                tenant_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn attack_bad_logins_through_the_proxy_lock_out_every_user() {
    let h = start_with(|c| {
        c.login_failures_per_addr = 3;
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    })
    .await;
    let user = email();
    h.sign_up(&user).await;
    for _ in 0..3 {
        let e = login_from(&h, ATTACKER, &email(), "wrong-password-guess")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = login_from(&h, ATTACKER, &email(), "wrong-password-guess")
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::ResourceExhausted,
        "the attacker is throttled"
    );
    login_from(&h, USER, &user, PASSWORD)
        .await
        .expect("another client behind the same proxy still logs in");
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_not_believed() {
    // The test's peer (127.0.0.1) is not among the trusted proxies: a client rotating its
    // `X-Forwarded-For` is still one address.
    let h = start_with(|c| {
        c.login_failures_per_addr = 3;
        c.trusted_proxies = "10.0.0.0/8".parse().unwrap();
    })
    .await;
    for i in 0..3 {
        let e = login_from(
            &h,
            &format!("203.0.113.{i}"),
            &email(),
            "wrong-password-guess",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = login_from(&h, "203.0.113.99", &email(), "wrong-password-guess")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn attack_sign_up_flood_from_one_address() {
    let h = start_with(|c| c.signups_per_addr = 3).await;
    let sign_up = || async {
        h.sessions()
            .sign_up(api::SignUpRequest {
                email: email(),
                password: PASSWORD.into(),
            })
            .await
    };
    for _ in 0..3 {
        sign_up().await.expect("within the limit");
    }
    let e = sign_up().await.expect_err("a fourth account a minute");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("auth-signups-per-addr"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn attack_failed_logins_on_a_locked_account_grow_the_log() {
    let h = start_with(|c| c.login_failures_per_addr = 1000).await;
    let victim = email();
    h.sign_up(&victim).await;
    for _ in 0..5 {
        h.login(&victim, "wrong-password-guess", None)
            .await
            .unwrap_err();
    }
    let store = h.env.event_store().await;
    let address = tenantry_auth::api::credential_address(&victim).unwrap();
    let locked = store.read_aggregate(&address, 0).await.unwrap().len();
    for _ in 0..5 {
        let e = h
            .login(&victim, "wrong-password-guess", None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let after = store.read_aggregate(&address, 0).await.unwrap().len();
    assert_eq!(after, locked, "attempts on a locked account were appended");
}

/// Begins a federated login of `tenant` with `provider_id` as the client at `client`.
async fn begin_from(
    h: &Harness,
    client: &str,
    tenant: Uuid,
    provider_id: &str,
) -> Result<api::BeginOidcLoginResponse, tonic::Status> {
    h.sessions()
        .begin_oidc_login(via_proxy(
            client,
            api::BeginOidcLoginRequest {
                tenant_id: tenant.to_string(),
                provider_id: provider_id.into(),
                redirect_uri: REDIRECT.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn pending_logins(h: &Harness) -> i64 {
    let admin = h.env.admin_pool().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".oidc_logins",
        h.env.schema("auth")
    )))
    .fetch_one(&admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn attack_begin_oidc_login_flood_from_one_address() {
    let h = start_with(|c| c.oidc_logins_per_addr = 3).await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let p = provider("ok", keycloak_claims(tenant, &["user"])).await;
    let config = configure(&h, &owner.token, &p, "keycloak", "").await;
    for _ in 0..3 {
        begin_from(&h, ATTACKER, tenant, &config.provider_id)
            .await
            .expect("within the limit");
    }
    let e = begin_from(&h, ATTACKER, tenant, &config.provider_id)
        .await
        .expect_err("a row a call, without end");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("auth-oidc-logins-per-addr"),
        "{}",
        e.message()
    );
    assert_eq!(pending_logins(&h).await, 3);
}

#[tokio::test]
async fn attack_abandoned_oidc_logins_pile_up() {
    let clock = ManualClock::new(chrono::Utc::now());
    let h = start_full(
        |c| c.oidc_sweep_secs = 1,
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let p = provider("ok", keycloak_claims(tenant, &["user"])).await;
    let config = configure(&h, &owner.token, &p, "keycloak", "").await;
    for i in 0..3 {
        begin_from(&h, &format!("203.0.113.{i}"), tenant, &config.provider_id)
            .await
            .unwrap();
    }
    assert_eq!(pending_logins(&h).await, 3);
    // Nobody completes them; they expire, and nothing else touches the table.
    clock.advance(chrono::Duration::minutes(11));
    tenantry_testkit::eventually(
        "expired pending logins are swept",
        Duration::from_secs(10),
        || async { (pending_logins(&h).await == 0).then_some(()) },
    )
    .await;
}
