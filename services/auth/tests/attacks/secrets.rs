//! Issue 17, item 5 (the secrets part): credentials in the event log.

use tenantry_proto::auth::v1 as api;

use crate::common::oidc::{CLIENT_SECRET, configure, keycloak_claims, provider};
use crate::common::{ADMIN_PASSWORD, PASSWORD, start, with_token};

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whoever reads the stream (any process on the bus, a backup, an export) reads every event.
#[tokio::test]
async fn attack_reading_the_event_log_reveals_no_credential() {
    let h = start().await;
    let tenant = uuid::Uuid::now_v7();
    // Sign-up (and the bootstrap admin's creation at start), a login, a provider with a client
    // secret, a service account with an API key.
    let owner = h.member(tenant, api::Role::Owner).await;
    let p = provider("ok", keycloak_claims(tenant, &["user"])).await;
    configure(&h, &owner.token, &p, "keycloak", "").await;
    let account = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "ci".into(),
                role: api::Role::Member as i32,
                ..Default::default()
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    let key = h
        .accounts()
        .create_api_key(with_token(
            api::CreateApiKeyRequest {
                service_account_id: account.service_account_id,
                name: "deploy".into(),
                ..Default::default()
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner();
    // What follows `<prefix>_` (the secret may itself contain `_`).
    let key_secret = key.api_key[key.prefix.len() + 1..].to_owned();

    let log = h.raw_log().await;
    let subjects: Vec<&str> = log.iter().map(|(s, _)| s.as_str()).collect();
    for kind in [
        "credential",
        "user",
        "service_accounts",
        "identity_providers",
    ] {
        assert!(
            subjects.iter().any(|s| s.contains(&format!(".{kind}."))),
            "the log holds {kind} events: {subjects:?}"
        );
    }
    let secrets: [(&str, &str); 7] = [
        ("a password", PASSWORD),
        ("the admin's password", ADMIN_PASSWORD),
        ("a password hash (PHC)", "$argon2"),
        ("the OIDC client secret", CLIENT_SECRET),
        ("the API key", &key.api_key),
        ("the API key's secret", &key_secret),
        ("a refresh token", &owner.refresh),
    ];
    for (subject, bytes) in &log {
        for (what, secret) in secrets {
            assert!(
                !holds(bytes, secret.as_bytes()),
                "{subject} holds {what} in the clear"
            );
        }
    }
}
