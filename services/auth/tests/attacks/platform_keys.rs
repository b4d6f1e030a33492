//! Platform service accounts (ADR 0011): keys that act as platform admin, which Tenantry's
//! services call each other with. A tenant's owner manages their tenant's service accounts
//! through the same RPCs; none of that may reach the platform's.

use std::time::Duration;

use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

use crate::common::{Harness, start, with_token};

/// A platform service account and a live key of it, made by the bootstrap admin.
async fn platform_account(h: &Harness) -> (api::ServiceAccount, api::CreateApiKeyResponse) {
    let admin = h.admin().await;
    let account = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: format!("billing-{}", Uuid::now_v7().simple()),
                platform: true,
                ..Default::default()
            },
            Some(&admin),
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
                name: "billing".into(),
                platform: true,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    (account, key)
}

/// Whether `token` is taken as a platform admin (`ListSigningKeys` is platform_admin only).
async fn acts_as_platform_admin(h: &Harness, token: &str) -> Result<(), tonic::Status> {
    h.keys()
        .list_signing_keys(with_token(api::ListSigningKeysRequest {}, Some(token)))
        .await
        .map(drop)
}

fn denied<T>(r: Result<tonic::Response<T>, tonic::Status>, what: &str) {
    let e = r.map(drop).unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
}

/// An owner (or an owner's key) may do anything with their tenant's service accounts: with
/// `platform`, every RPC of the service is refused, for a platform account the owner knows
/// the id of too, and the platform's key keeps working.
#[tokio::test]
async fn attack_tenant_owner_creates_or_takes_over_a_platform_service_account() {
    let h = start().await;
    let (account, key) = platform_account(&h).await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    // The owner's own key with the owner role, to try the same with a key.
    let owners_account = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "ci".into(),
                role: api::Role::Owner as i32,
                ..Default::default()
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    let owners_key = h
        .accounts()
        .create_api_key(with_token(
            api::CreateApiKeyRequest {
                service_account_id: owners_account.service_account_id.clone(),
                name: "ci".into(),
                ..Default::default()
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key;
    tenantry_testkit::eventually("the owner's key is known", Duration::from_secs(2), || {
        let mut accounts = h.accounts();
        let request = with_token(
            api::ListServiceAccountsRequest::default(),
            Some(&owners_key),
        );
        async move { accounts.list_service_accounts(request).await.ok() }
    })
    .await;

    for token in [owner.token.as_str(), owners_key.as_str()] {
        let t = Some(token);
        let mut accounts = h.accounts();
        denied(
            accounts
                .create_service_account(with_token(
                    api::CreateServiceAccountRequest {
                        name: "mine".into(),
                        platform: true,
                        ..Default::default()
                    },
                    t,
                ))
                .await,
            "create a platform account",
        );
        denied(
            accounts
                .list_service_accounts(with_token(
                    api::ListServiceAccountsRequest { platform: true },
                    t,
                ))
                .await,
            "list platform accounts",
        );
        denied(
            accounts
                .create_api_key(with_token(
                    api::CreateApiKeyRequest {
                        service_account_id: account.service_account_id.clone(),
                        name: "mine".into(),
                        platform: true,
                    },
                    t,
                ))
                .await,
            "create a key of a platform account",
        );
        denied(
            accounts
                .list_api_keys(with_token(
                    api::ListApiKeysRequest {
                        prefix: String::new(),
                        platform: true,
                    },
                    t,
                ))
                .await,
            "list platform keys",
        );
        denied(
            accounts
                .revoke_api_key(with_token(
                    api::RevokeApiKeyRequest {
                        key_id: key.key_id.clone(),
                        platform: true,
                    },
                    t,
                ))
                .await,
            "revoke a platform key",
        );
        // Named without `platform`, the platform's objects are not the tenant's: not found.
        let e = accounts
            .create_api_key(with_token(
                api::CreateApiKeyRequest {
                    service_account_id: account.service_account_id.clone(),
                    name: "mine".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        let e = accounts
            .revoke_api_key(with_token(
                api::RevokeApiKeyRequest {
                    key_id: key.key_id.clone(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        // A tenant's own account never becomes a platform admin.
        let e = accounts
            .create_service_account(with_token(
                api::CreateServiceAccountRequest {
                    name: "root".into(),
                    role: api::Role::PlatformAdmin as i32,
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }

    // Nothing changed: the platform still has one key of that account, live, and it works.
    let admin = h.admin().await;
    let keys = h
        .accounts()
        .list_api_keys(with_token(
            api::ListApiKeysRequest {
                prefix: String::new(),
                platform: true,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    let of_account: Vec<_> = keys
        .iter()
        .filter(|k| k.service_account_id == account.service_account_id)
        .collect();
    assert_eq!(of_account.len(), 1);
    assert!(!of_account[0].revoked);
    acts_as_platform_admin(&h, &key.api_key).await.unwrap();
}

/// A tenant's keys stay in their tenant, whatever their role: no platform-only RPC, no other
/// tenant, and the tenant comes from the key, never from the request.
#[tokio::test]
async fn attack_tenant_owner_key_acts_beyond_its_tenant() {
    let h = start().await;
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let owner = h.member(tenant, api::Role::Owner).await;
    let account = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "ci".into(),
                role: api::Role::Owner as i32,
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
                service_account_id: account.service_account_id.clone(),
                name: "ci".into(),
                ..Default::default()
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key;
    // Its own tenant: it works.
    let members = tenantry_testkit::eventually("the key is known", Duration::from_secs(2), || {
        let mut m = h.members();
        let request = with_token(api::ListMembersRequest {}, Some(&key));
        async move { m.list_members(request).await.ok() }
    })
    .await
    .into_inner()
    .members;
    assert!(
        members
            .iter()
            .any(|m| m.user_id == owner.user_id.to_string())
    );

    let e = acts_as_platform_admin(&h, &key).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Adding someone to another tenant is a platform admin's.
    let e = h
        .members()
        .add_member(with_token(
            api::AddMemberRequest {
                tenant_id: other.to_string(),
                user_id: owner.user_id.to_string(),
                role: api::Role::Owner as i32,
            },
            Some(&key),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
}
