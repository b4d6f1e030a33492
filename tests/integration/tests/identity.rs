//! Identity across services: tokens the auth service issues and API keys it creates are
//! honoured by the tenant service, and a revoked key stops working there within a second.

mod common;

use std::time::{Duration, Instant};

use tenantry_proto::auth::v1 as auth;
use tenantry_proto::tenant::v1 as tenant;
use tenantry_testkit::TestEnv;
use tonic::Code;
use tonic::metadata::MetadataValue;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test]
async fn auth_issued_tokens_and_api_keys_work_at_the_tenant_service_until_revoked() {
    let env = TestEnv::new().await;
    let (auth_svc, auth_channel) = common::start_auth(&env).await;
    let mut config = env.common();
    config.jwks = format!("http://{}/.well-known/jwks.json", auth_svc.addr);
    let (_tenant_svc, tenant_channel) = common::start_tenant(&env, &config).await;
    let mut sessions =
        auth::session_service_client::SessionServiceClient::new(auth_channel.clone());
    let members = auth::member_service_client::MemberServiceClient::new(auth_channel.clone());
    let mut accounts = auth::service_account_service_client::ServiceAccountServiceClient::new(
        auth_channel.clone(),
    );
    let tenants = tenant::tenant_service_client::TenantServiceClient::new(tenant_channel);

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
    let create = |slug: &'static str| {
        let mut tenants = tenants.clone();
        let admin = admin.clone();
        async move {
            let created = tenants
                .create_tenant(with_token(
                    tenant::CreateTenantRequest {
                        name: slug.into(),
                        slug: slug.into(),
                        r#type: 2,
                        settings: None,
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner();
            (created.tenant.unwrap().tenant_id, created.position)
        }
    };
    let (acme, _) = create("acme").await;
    // Reads below wait for the read model to hold both tenants.
    let (other, created) = create("other").await;

    // An owner for acme, through the auth service.
    let owner = common::owner_of(&sessions, &members, &admin, &acme, "owner@acme.test").await;
    let got = tenants
        .clone()
        .get_tenant(with_token(
            tenant::GetTenantRequest {
                tenant_id: acme.clone(),
                min_position: created,
            },
            &owner,
        ))
        .await
        .unwrap();
    assert_eq!(got.into_inner().tenant.unwrap().slug, "acme");

    let sa = accounts
        .create_service_account(with_token(
            auth::CreateServiceAccountRequest {
                name: "reader".into(),
                role: auth::Role::Viewer as i32,
                ..Default::default()
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    let key = accounts
        .create_api_key(with_token(
            auth::CreateApiKeyRequest {
                service_account_id: sa.service_account_id,
                name: "ci".into(),
                ..Default::default()
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();

    let get = |id: String| {
        let mut tenants = tenants.clone();
        let key = key.api_key.clone();
        async move {
            tenants
                .get_tenant(with_token(
                    tenant::GetTenantRequest {
                        tenant_id: id,
                        min_position: 0,
                    },
                    &key,
                ))
                .await
        }
    };
    tenantry_testkit::eventually(
        "the key reaches the tenant service",
        Duration::from_secs(1),
        || async { get(acme.clone()).await.ok() },
    )
    .await;
    // Its tenant only; a viewer cannot write.
    assert_eq!(get(other.clone()).await.unwrap_err().code(), Code::NotFound);
    let e = tenants
        .clone()
        .update_settings(with_token(
            tenant::UpdateSettingsRequest {
                tenant_id: acme.clone(),
                ..Default::default()
            },
            &key.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    accounts
        .revoke_api_key(with_token(
            auth::RevokeApiKeyRequest {
                key_id: key.key_id.clone(),
                ..Default::default()
            },
            &owner,
        ))
        .await
        .unwrap();
    let revoked = Instant::now();
    loop {
        match get(acme.clone()).await {
            Err(e) if e.code() == Code::Unauthenticated => break,
            _ if revoked.elapsed() > Duration::from_secs(1) => {
                panic!("revoked key still accepted after 1 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
