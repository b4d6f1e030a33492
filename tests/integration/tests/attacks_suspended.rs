//! Issue 17, item 19: a suspended tenant kept full control-plane write access. Now every
//! service refuses its members' writes (FAILED_PRECONDITION naming the suspension) while their
//! reads go on, and a platform admin's reactivation lets them write again.

mod common;

use std::time::Duration;

use tenantry_proto::auth::v1 as auth;
use tenantry_proto::gateway::v1 as gateway;
use tenantry_proto::tenant::v1 as tenant;
use tenantry_testkit::{TestEnv, eventually};
use tonic::Code;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn attack_a_suspended_tenants_members_keep_changing_its_configuration() {
    let env = TestEnv::new().await;
    let (auth_svc, auth_channel) = common::start_auth(&env).await;
    let mut config = env.common();
    config.jwks = format!("http://{}/.well-known/jwks.json", auth_svc.addr);
    let (_tenant_svc, tenant_channel) = common::start_tenant(&env, &config).await;
    let (_gateway, gateway_channel) =
        common::start_gateway(&env, &config, tenantry_gateway::GatewayConfig::ephemeral()).await;
    let mut sessions =
        auth::session_service_client::SessionServiceClient::new(auth_channel.clone());
    let members = auth::member_service_client::MemberServiceClient::new(auth_channel.clone());
    let accounts =
        auth::service_account_service_client::ServiceAccountServiceClient::new(auth_channel);
    let tenants = tenant::tenant_service_client::TenantServiceClient::new(tenant_channel);
    let routes =
        gateway::gateway_config_service_client::GatewayConfigServiceClient::new(gateway_channel);

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
    let acme = tenants
        .clone()
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

    // The owner's writes, one per service.
    let update_settings = || {
        let (mut tenants, owner, acme) = (tenants.clone(), owner.clone(), acme.clone());
        async move {
            tenants
                .update_settings(with_token(
                    tenant::UpdateSettingsRequest {
                        tenant_id: acme,
                        settings: Some(tenantry_proto::events::v1::TenantSettings {
                            currency: "BRL".into(),
                            ..Default::default()
                        }),
                    },
                    &owner,
                ))
                .await
                .map(|_| ())
        }
    };
    let create_route = || {
        let (mut routes, owner) = (routes.clone(), owner.clone());
        async move {
            routes
                .upsert_route(with_token(
                    gateway::UpsertRouteRequest {
                        route: Some(gateway::Route {
                            path_prefix: "/".into(),
                            algorithm: tenantry_proto::events::v1::BalanceAlgorithm::RoundRobin
                                as i32,
                            backends: vec![tenantry_proto::events::v1::Backend {
                                address: "93.184.216.34:80".into(),
                                weight: 1,
                            }],
                            ..Default::default()
                        }),
                    },
                    &owner,
                ))
                .await
                .map(|_| ())
        }
    };
    let create_account = || {
        let (mut accounts, owner) = (accounts.clone(), owner.clone());
        async move {
            accounts
                .create_service_account(with_token(
                    auth::CreateServiceAccountRequest {
                        name: format!("ci-{}", uuid::Uuid::new_v4().simple()),
                        role: auth::Role::Viewer as i32,
                        ..Default::default()
                    },
                    &owner,
                ))
                .await
                .map(|_| ())
        }
    };
    update_settings()
        .await
        .expect("an active tenant's owner writes");

    tenants
        .clone()
        .suspend_tenant(with_token(
            tenant::SuspendTenantRequest {
                tenant_id: acme.clone(),
                reason: "unpaid".into(),
            },
            &admin,
        ))
        .await
        .unwrap();

    // Every service refuses the owner's writes once it has the suspension (milliseconds).
    let refused = |result: Result<(), tonic::Status>| match result {
        Err(e) if e.code() == Code::FailedPrecondition && e.message().contains("suspended") => {
            Some(())
        }
        _ => None,
    };
    let within = Duration::from_secs(5);
    eventually("the tenant service refuses", within, || async {
        refused(update_settings().await)
    })
    .await;
    eventually("the gateway refuses", within, || async {
        refused(create_route().await)
    })
    .await;
    eventually("the auth service refuses", within, || async {
        refused(create_account().await)
    })
    .await;
    // Reads go on.
    tenants
        .clone()
        .get_tenant(with_token(
            tenant::GetTenantRequest {
                tenant_id: acme.clone(),
                min_position: 0,
            },
            &owner,
        ))
        .await
        .expect("the owner still reads");
    routes
        .clone()
        .list_routes(with_token(gateway::ListRoutesRequest::default(), &owner))
        .await
        .expect("the owner still reads routes");

    // A platform admin reactivates it; its members write again.
    tenants
        .clone()
        .reactivate_tenant(with_token(
            tenant::ReactivateTenantRequest {
                tenant_id: acme.clone(),
            },
            &admin,
        ))
        .await
        .expect("a platform admin acts on a suspended tenant");
    eventually("writes work again", within, || async {
        update_settings().await.ok()
    })
    .await;
    eventually("routes too", within, || async { create_route().await.ok() }).await;
}
