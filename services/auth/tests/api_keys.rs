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
                ..Default::default()
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
                ..Default::default()
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
            // What follows `<prefix>_` (the secret may itself contain `_`).
            let secret = &created.api_key[created.prefix.len() + 1..];
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
                ..Default::default()
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
                ..Default::default()
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
                ..Default::default()
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

/// Creates the platform service account `name` and a key of it, as `admin`.
async fn platform_key(
    h: &common::Harness,
    admin: &str,
    name: &str,
) -> (api::ServiceAccount, api::CreateApiKeyResponse) {
    let account = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: name.into(),
                platform: true,
                ..Default::default()
            },
            Some(admin),
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
                service_account_id: account.service_account_id.clone(),
                name: "test".into(),
                platform: true,
            },
            Some(admin),
        ))
        .await
        .unwrap()
        .into_inner();
    (account, key)
}

#[tokio::test]
async fn a_platform_service_account_key_acts_as_platform_admin_until_revoked() {
    let h = start().await;
    let admin = h.admin().await;
    let name = format!("billing-{}", Uuid::now_v7().simple());
    let (account, created) = platform_key(&h, &admin, &name).await;
    assert_eq!(account.role, api::Role::PlatformAdmin as i32);
    assert!(created.api_key.starts_with("tk_"));

    // Listed among the platform's accounts, not in any tenant's.
    let listed = h
        .accounts()
        .list_service_accounts(with_token(
            api::ListServiceAccountsRequest { platform: true },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .service_accounts;
    assert!(listed.contains(&account));

    // The key verifies as a platform admin with no tenant: a platform-only RPC answers, and a
    // tenant-scoped one says the key has no tenant.
    let key = Some(created.api_key.as_str());
    let signing_keys = || {
        let mut keys = h.keys();
        async move {
            keys.list_signing_keys(with_token(api::ListSigningKeysRequest {}, key))
                .await
        }
    };
    tenantry_testkit::eventually(
        "the platform key is known",
        Duration::from_secs(2),
        || async { signing_keys().await.ok() },
    )
    .await;
    let e = h
        .members()
        .list_members(with_token(api::ListMembersRequest {}, key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // A platform admin's token without `platform` still means the token's tenant: no
    // platform account is made by accident.
    let e = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "accidental".into(),
                role: api::Role::Member as i32,
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    h.accounts()
        .revoke_api_key(with_token(
            api::RevokeApiKeyRequest {
                key_id: created.key_id.clone(),
                platform: true,
            },
            Some(&admin),
        ))
        .await
        .unwrap();
    let revoked_at = Instant::now();
    loop {
        match signing_keys().await {
            Err(e) if e.code() == Code::Unauthenticated => break,
            _ if revoked_at.elapsed() > Duration::from_secs(1) => {
                panic!("the platform key still works a second after revocation")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let keys = h
        .accounts()
        .list_api_keys(with_token(
            api::ListApiKeysRequest {
                prefix: created.prefix.clone(),
                platform: true,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].revoked);
}

#[tokio::test]
async fn a_platform_account_is_platform_admin_and_a_tenant_account_never_is() {
    let h = start().await;
    let admin = h.admin().await;
    let owner = h.member(Uuid::now_v7(), api::Role::Owner).await;
    let create = |role: api::Role, platform: bool, token: String| {
        let mut accounts = h.accounts();
        async move {
            accounts
                .create_service_account(with_token(
                    api::CreateServiceAccountRequest {
                        name: format!("sa-{}", Uuid::now_v7().simple()),
                        role: role as i32,
                        platform,
                    },
                    Some(&token),
                ))
                .await
        }
    };
    let invalid = |r: Result<_, tonic::Status>| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("role"), "{e:?}");
    };
    // A platform account with a tenant role: refused, naming the field.
    invalid(create(api::Role::Member, true, admin.clone()).await);
    // platform_admin for a tenant's account.
    invalid(create(api::Role::PlatformAdmin, false, owner.token.clone()).await);
    // Said explicitly, platform_admin is what a platform account is.
    let account = create(api::Role::PlatformAdmin, true, admin.clone())
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    assert_eq!(account.role, api::Role::PlatformAdmin as i32);
}
