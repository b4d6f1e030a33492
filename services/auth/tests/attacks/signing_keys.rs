//! Issue 17, item 11: a signing key withdrawn from the JWKS kept being trusted.
//!
//! Verifiers read the JWKS again only for an unknown key id, and remembered verified tokens
//! until they expired, so a leaked key taken out of the JWKS kept working everywhere.

use std::time::Duration;

use tenantry_kit::auth::{JwksSource, Verifier, VerifierConfig};
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

use crate::common::{start_with, with_token};

#[tokio::test]
async fn attack_withdrawn_signing_key_stays_trusted() {
    let h = start_with(|c| c.key_reload_secs = 1).await;
    let jwks_url = format!("http://{}/.well-known/jwks.json", h.svc.addr);
    // A verifier in another service, reading the JWKS over HTTP, trusting a read for 1 s.
    let remote = Verifier::new(VerifierConfig {
        issuer: tenantry_testkit::ISSUER.into(),
        audience: tenantry_testkit::AUDIENCE.into(),
        jwks: JwksSource::Url(jwks_url.clone()),
        refresh_interval: Duration::from_secs(1),
        max_age: Duration::from_secs(1),
    })
    .await
    .unwrap();
    let m = h.member(Uuid::now_v7(), api::Role::Viewer).await;
    let kid = jsonwebtoken::decode_header(&m.token).unwrap().kid.unwrap();
    let list = || async {
        h.members()
            .list_members(with_token(api::ListMembersRequest {}, Some(&m.token)))
            .await
    };
    list().await.expect("verified, and remembered as verified");
    remote
        .verify(&m.token)
        .await
        .expect("verified remotely too");

    // The key leaked: the operator deletes it, and the JWKS stops publishing it.
    let admin = h.env.admin_pool().await;
    let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM \"{}\".signing_keys WHERE kid = $1",
        h.env.schema("auth")
    )))
    .bind(&kid)
    .execute(&admin)
    .await
    .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    tenantry_testkit::eventually("the JWKS drops the key", Duration::from_secs(10), || {
        let url = jwks_url.clone();
        let kid = kid.clone();
        async move {
            let body = reqwest::get(url).await.ok()?.text().await.ok()?;
            (!body.contains(&kid)).then_some(())
        }
    })
    .await;

    tenantry_testkit::eventually(
        "the auth service refuses tokens of the withdrawn key",
        Duration::from_secs(20),
        || async {
            list()
                .await
                .err()
                .filter(|e| e.code() == Code::Unauthenticated)
        },
    )
    .await;
    tenantry_testkit::eventually(
        "a remote verifier refuses them too",
        Duration::from_secs(20),
        || async { remote.verify(&m.token).await.err() },
    )
    .await;
}
