//! Services call each other with their own credentials (ADR 0011): billing holds an API key of
//! a platform service account, made through the auth service's API and given to it as a file,
//! and the tenant service takes billing's calls with it as a platform admin's. A tenant owner's
//! key, on the same call, is refused.

mod common;

use std::time::Duration;

use tenantry_billing::periods::TenantService;
use tenantry_proto::auth::v1 as auth;
use tenantry_proto::tenant::v1 as tenant;
use tenantry_testkit::{TestEnv, eventually};
use tonic::Code;
use tonic::transport::Channel;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A service account (of the platform with `platform`, else of the token's tenant) and a key
/// of it, made through the auth service's API with `token`.
async fn account_key(
    accounts: &mut auth::service_account_service_client::ServiceAccountServiceClient<Channel>,
    token: &str,
    platform: bool,
    role: auth::Role,
) -> String {
    let account = accounts
        .create_service_account(with_token(
            auth::CreateServiceAccountRequest {
                name: "billing".into(),
                role: role as i32,
                platform,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    accounts
        .create_api_key(with_token(
            auth::CreateApiKeyRequest {
                service_account_id: account.service_account_id,
                name: "billing".into(),
                platform,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key
}

#[tokio::test]
async fn billing_suspends_a_tenant_with_its_platform_key_and_an_owners_key_is_refused() {
    let env = TestEnv::new().await;
    let (auth_svc, auth_channel) = common::start_auth(&env).await;
    let mut config = env.common();
    config.jwks = format!("http://{}/.well-known/jwks.json", auth_svc.addr);
    let (tenant_svc, tenant_channel) = common::start_tenant(&env, &config).await;
    let mut sessions =
        auth::session_service_client::SessionServiceClient::new(auth_channel.clone());
    let members = auth::member_service_client::MemberServiceClient::new(auth_channel.clone());
    let mut accounts =
        auth::service_account_service_client::ServiceAccountServiceClient::new(auth_channel);
    let mut tenants = tenant::tenant_service_client::TenantServiceClient::new(tenant_channel);

    // The operator's part: a platform service account for billing and a key of it, in a file
    // (in Kubernetes the `billing-credential` key of a Secret).
    let admin = sessions
        .login(auth::LoginRequest {
            email: common::ADMIN_EMAIL.into(),
            password: common::ADMIN_PASSWORD.into(),
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let key = account_key(&mut accounts, &admin, true, auth::Role::Unspecified).await;
    let file = std::env::temp_dir()
        .join(&env.id)
        .join("billing.credential");
    std::fs::write(&file, format!("{key}\n")).unwrap();

    // Billing starts with it: it reads the file at start (a missing or unreadable one fails
    // the start).
    let mut billing = tenantry_billing::BillingConfig::ephemeral();
    billing.credential_file = Some(file.clone());
    billing.tenant_endpoint = format!("http://{}", tenant_svc.addr);
    let _billing = common::start_billing_with(&env, &config, billing).await;

    // A tenant with an owner, who has an owner's key of the tenant.
    let acme = tenants
        .create_tenant(with_token(
            tenant::CreateTenantRequest {
                name: "Acme".into(),
                slug: format!("acme-{}", &env.id[2..8]),
                r#type: tenantry_proto::events::v1::TenantType::Business as i32,
                settings: None,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap()
        .tenant_id;
    let owner = common::owner_of(&sessions, &members, &admin, &acme, "owner@acme.test").await;
    let owners_key = account_key(&mut accounts, &owner, false, auth::Role::Owner).await;

    // Billing's own client, as billing builds it: the credential read from the file.
    let credential = std::fs::read_to_string(&file).unwrap();
    let as_billing = TenantService {
        client: tenants.clone(),
        credential: credential.trim().into(),
    };
    let as_owner = TenantService {
        client: tenants.clone(),
        credential: owners_key.as_str().into(),
    };
    let suspend = |service: &TenantService| {
        let mut client = service.client.clone();
        let request = service.request(tenant::SuspendTenantRequest {
            tenant_id: acme.clone(),
            reason: "payment overdue".into(),
        });
        async move { client.suspend_tenant(request.unwrap()).await }
    };

    // The owner's key is known to the tenant service (it reads its own tenant)...
    eventually("the owner's key is known", Duration::from_secs(5), || {
        let mut client = tenants.clone();
        let request = with_token(
            tenant::GetTenantRequest {
                tenant_id: acme.clone(),
                min_position: 0,
            },
            &owners_key,
        );
        async move { client.get_tenant(request).await.ok() }
    })
    .await;
    // ...and cannot suspend it: that is a platform admin's.
    let refused = suspend(&as_owner).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Billing's key can, once the tenant service has followed it from the log.
    let suspended = eventually("billing's call is accepted", Duration::from_secs(5), || {
        let call = suspend(&as_billing);
        async move {
            match call.await {
                Ok(r) => Some(r.into_inner()),
                Err(e) if e.code() == Code::Unauthenticated => None,
                Err(e) => panic!("billing's call was refused: {e:?}"),
            }
        }
    })
    .await;
    let read = tenants
        .get_tenant(with_token(
            tenant::GetTenantRequest {
                tenant_id: acme.clone(),
                min_position: suspended.position,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(read.status, tenant::TenantStatus::Suspended as i32);
}
