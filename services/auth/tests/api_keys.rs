//! Service accounts and API keys: shown once, stored as digests, listable by prefix, and
//! revoked everywhere within a second.

mod common;

use std::time::{Duration, Instant};

use common::{start, with_token};
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn an_api_key_works_until_revoked_and_stops_within_a_second() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let t = Some(owner.token.as_str());
    let sa = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "deployer".into(),
                role: api::Role::Member as i32,
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    let created = h
        .accounts()
        .create_api_key(with_token(
            api::CreateApiKeyRequest {
                service_account_id: sa.service_account_id.clone(),
                name: "ci".into(),
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(created.api_key.starts_with(&created.prefix));
    assert!(created.api_key.len() > 50);

    // The key is nowhere in the log: only its digest.
    let store = h.env.event_store().await;
    let address = tenantry_auth::api::tenant_address::<
        tenantry_auth::domain::service_accounts::ServiceAccounts,
    >(tenant)
    .unwrap();
    for m in store.read_aggregate(&address, 0).await.unwrap() {
        for e in &m.batch.events {
            let secret = created.api_key.rsplit('_').next().unwrap();
            assert!(
                !e.payload
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes())
            );
        }
    }

    let key = Some(created.api_key.as_str());
    let list = |prefix: &str, token: Option<&str>| {
        let mut c = h.accounts();
        let request = with_token(
            api::ListApiKeysRequest {
                prefix: prefix.into(),
            },
            token,
        );
        async move { c.list_api_keys(request).await }
    };
    // The key authenticates as its service account, with its role (member may list keys)...
    let keys = tenantry_testkit::eventually("the key is known", Duration::from_secs(2), || async {
        list(&created.prefix, key).await.ok()
    })
    .await
    .into_inner()
    .api_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].prefix, created.prefix);
    assert!(
        list("tk_zzzzzzzzzz", key)
            .await
            .unwrap()
            .into_inner()
            .api_keys
            .is_empty()
    );
    // ...and no more than that role.
    let e = h
        .accounts()
        .revoke_api_key(with_token(
            api::RevokeApiKeyRequest {
                key_id: created.key_id.clone(),
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    h.accounts()
        .revoke_api_key(with_token(
            api::RevokeApiKeyRequest {
                key_id: created.key_id.clone(),
            },
            t,
        ))
        .await
        .unwrap();
    let revoked_at = Instant::now();
    loop {
        match list("", key).await {
            Err(e) if e.code() == Code::Unauthenticated => break,
            _ if revoked_at.elapsed() > Duration::from_secs(1) => {
                panic!("the key still works a second after revocation")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let listed = list("", t).await.unwrap().into_inner().api_keys;
    assert!(listed[0].revoked);
}

#[tokio::test]
async fn a_made_up_key_is_refused() {
    let h = start().await;
    let e = h
        .members()
        .list_members(with_token(
            api::ListMembersRequest {},
            Some("tk_abcdefgh_notarealsecretnotarealsecretnotarealsec"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}
