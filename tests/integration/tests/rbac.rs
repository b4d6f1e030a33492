//! Role-based access, checked from the outside for every RPC of every service.
//!
//! The RPCs come from each server's own reflection, so a new RPC or a new service is covered
//! the day it is added: each is called with no token and with a real token (issued by the
//! auth service, verified by every service through its JWKS) for every role, and the answer
//! must match the RPC's declared minimum role. Zero unexpected allows, zero unexpected denies.

mod common;

use std::str::FromStr;

use futures::StreamExt;
use prost::Message;
use tenantry_kit::service::Service;
use tenantry_kit::{Access, Role, RpcPolicy};
use tenantry_proto::auth::v1 as auth;
use tenantry_testkit::TestEnv;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use uuid::Uuid;

/// Every `tenantry.*` RPC a server lists through reflection, as `/package.Service/Method`.
async fn rpcs(channel: Channel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let ask = |request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([ask(MessageRequest::ListServices(
            String::new(),
        ))]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}")
    };
    let mut paths = Vec::new();
    for service in list
        .service
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with("tenantry."))
    {
        let mut files = client
            .server_reflection_info(futures::stream::iter([ask(
                MessageRequest::FileContainingSymbol(service.clone()),
            )]))
            .await
            .unwrap()
            .into_inner();
        let Some(Ok(answer)) = files.next().await else {
            panic!("no descriptor for {service}")
        };
        let Some(MessageResponse::FileDescriptorResponse(fds)) = answer.message_response else {
            panic!("{answer:?}")
        };
        for bytes in fds.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            for s in &file.service {
                let full = format!("{}.{}", file.package(), s.name());
                if full == service {
                    paths.extend(s.method.iter().map(|m| format!("/{full}/{}", m.name())));
                }
            }
        }
    }
    paths
}

/// Calls `path` with an empty message; only the status matters.
async fn call(channel: Channel, path: &str, token: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc
        .unary(request, PathAndQuery::from_str(path).unwrap(), codec)
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

/// Whether the access layer (not a handler) refused the call.
fn refused_by_policy(status: &tonic::Status) -> bool {
    status.code() == Code::Unauthenticated
        || (status.code() == Code::PermissionDenied
            && status.message().starts_with("requires role"))
        || (status.code() == Code::PermissionDenied && status.message().contains("not declared"))
}

/// Writes need at least `member`: catches an RPC declared with too low a role by mistake.
fn is_write(method: &str) -> bool {
    [
        "Create",
        "Update",
        "Delete",
        "Remove",
        "Add",
        "Set",
        "Change",
        "Revoke",
        "Rotate",
        "Grant",
        "Suspend",
        "Reactivate",
        "Mark",
        "Verify",
        "Configure",
        "Drain",
        "Undrain",
        "Define",
        "Cancel",
        "Trigger",
        "Validate",
    ]
    .iter()
    .any(|verb| method.starts_with(verb))
}

#[tokio::test]
async fn every_rpc_of_every_service_allows_exactly_its_declared_roles() {
    let env = TestEnv::new().await;
    let (auth_svc, auth_channel) = common::start_auth(&env).await;
    // Every other service verifies the auth service's tokens through its JWKS.
    let mut common_config = env.common();
    common_config.jwks = format!("http://{}/.well-known/jwks.json", auth_svc.addr);
    let (_tenant_svc, tenant_channel) = common::start_tenant(&env, &common_config).await;
    let (_billing_svc, billing_channel) = common::start_billing(&env, &common_config).await;
    let orchestration_svc = env
        .start_with(
            &common_config,
            tenantry_orchestration::OrchestrationService::new(
                tenantry_orchestration::OrchestrationConfig::ephemeral(
                    std::env::temp_dir().join(&env.id).join("orchestration"),
                    vec![],
                ),
            ),
        )
        .await;
    let orchestration_channel = tenantry_testkit::channel(orchestration_svc.addr).await;
    let (_sync_svc, sync_channel) = common::start_sync(&env, &common_config).await;
    let (_gateway, gateway_channel) = common::start_gateway(
        &env,
        &common_config,
        tenantry_gateway::GatewayConfig::ephemeral(),
    )
    .await;
    let services: Vec<(&str, Channel, RpcPolicy)> = vec![
        (
            "gateway",
            gateway_channel,
            tenantry_gateway::api::policy::policy(),
        ),
        (
            "auth",
            auth_channel.clone(),
            tenantry_auth::api::policy::policy(),
        ),
        (
            "tenant",
            tenant_channel,
            tenantry_tenant::api::policy::policy(),
        ),
        (
            "billing",
            billing_channel,
            tenantry_billing::api::policy::policy(),
        ),
        (
            "orchestration",
            orchestration_channel,
            tenantry_orchestration::api::policy::policy(),
        ),
        ("sync", sync_channel, tenantry_sync::api::policy::policy()),
    ];

    // Real tokens for one tenant, one per role.
    let tenant = Uuid::now_v7();
    let sessions = auth::session_service_client::SessionServiceClient::new(auth_channel.clone());
    let login = |email: String, password: String, tenant: Option<Uuid>| {
        let mut s = sessions.clone();
        async move {
            s.login(auth::LoginRequest {
                email,
                password,
                tenant_id: tenant.map(|t| t.to_string()).unwrap_or_default(),
            })
            .await
            .unwrap()
            .into_inner()
            .access_token
        }
    };
    let admin = login(
        common::ADMIN_EMAIL.into(),
        common::ADMIN_PASSWORD.into(),
        None,
    )
    .await;
    let mut tokens = vec![(Role::PlatformAdmin, admin.clone())];
    for (role, proto) in [
        (Role::Viewer, auth::Role::Viewer),
        (Role::Member, auth::Role::Member),
        (Role::Owner, auth::Role::Owner),
    ] {
        let email = format!("{}@example.com", role.as_str());
        let user = sessions
            .clone()
            .sign_up(auth::SignUpRequest {
                email: email.clone(),
                password: "blue-kettle-orbit-42".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut request = tonic::Request::new(auth::AddMemberRequest {
            tenant_id: tenant.to_string(),
            user_id: user.user_id,
            role: proto as i32,
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {admin}").parse().unwrap());
        auth::member_service_client::MemberServiceClient::new(auth_channel.clone())
            .add_member(request)
            .await
            .unwrap();
        tokens.push((
            role,
            login(email, "blue-kettle-orbit-42".into(), Some(tenant)).await,
        ));
    }

    let mut checked = 0;
    let mut failures = Vec::new();
    let mut declared = Vec::new();
    for (name, channel, policy) in &services {
        let paths = rpcs(channel.clone()).await;
        for path in &paths {
            let access = match policy.lookup(path) {
                Some(Access::Public) => "public".to_owned(),
                Some(Access::Role(r)) => r.to_string(),
                None => "undeclared".to_owned(),
            };
            declared.push(format!("{path} {access}"));
        }
        assert!(!paths.is_empty(), "{name} lists no RPC");
        for path in paths {
            let Some(access) = policy.lookup(&path) else {
                failures.push(format!("{name} {path}: not declared in the policy"));
                continue;
            };
            let method = path.rsplit('/').next().unwrap_or_default();
            if let Access::Role(required) = access
                && is_write(method)
                && required < Role::Member
            {
                failures.push(format!("{path}: a write open to {required}"));
            }
            let anonymous = call(channel.clone(), &path, None).await;
            match access {
                Access::Public
                    if refused_by_policy(&anonymous)
                        && anonymous.code() != Code::Unauthenticated =>
                {
                    failures.push(format!("{path}: public but refused: {anonymous:?}"));
                }
                Access::Role(_) if anonymous.code() != Code::Unauthenticated => {
                    failures.push(format!("{path}: no token got {:?}", anonymous.code()));
                }
                _ => {}
            }
            for (role, token) in &tokens {
                let status = call(channel.clone(), &path, Some(token)).await;
                let should_allow = match access {
                    Access::Public => true,
                    Access::Role(required) => role.satisfies(required),
                };
                // A public RPC's handler may refuse the (empty) credential in its body itself.
                let refused = match access {
                    Access::Public => {
                        refused_by_policy(&status) && status.code() != Code::Unauthenticated
                    }
                    Access::Role(_) => refused_by_policy(&status),
                };
                if should_allow && refused {
                    failures.push(format!("{path}: {role} refused: {status:?}"));
                }
                let denied = status.code() == Code::PermissionDenied && refused_by_policy(&status);
                if !should_allow && !denied {
                    failures.push(format!("{path}: {role} NOT refused: {status:?}"));
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The declared roles themselves are reviewed: any change shows up as a diff of this file.
    declared.sort();
    let actual = declared.join("\n") + "\n";
    let expected = include_str!("rbac.expected");
    assert!(
        actual == expected,
        "declared roles changed; if intended, update tests/integration/tests/rbac.expected to:\n{actual}"
    );
    assert!(checked >= 4 * 30, "only {checked} checks");
}
