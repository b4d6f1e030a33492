//! Federated login against a real OIDC provider nobody here wrote: the npm package
//! `oidc-provider`, started by the test (`tests/oidc-provider/`).

mod common;

use common::oidc::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT, authorize, begin, complete, configure, keycloak_claims,
    login, provider,
};
use common::{start, with_token};
use serde_json::json;
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn keycloak_login_provisions_the_mapped_role_just_in_time() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let p = provider("ok", keycloak_claims(tenant, &["manager", "user"])).await;
    let config = configure(
        &h,
        &owner.token,
        &p,
        "keycloak",
        &format!("resource_access.{CLIENT_ID}.tenant_id"),
    )
    .await;
    assert_eq!(
        config.claims.as_ref().unwrap().roles,
        format!("resource_access.{CLIENT_ID}.roles")
    );

    let first = login(&h, &p, tenant, &config.provider_id)
        .await
        .expect("federated login");
    assert_eq!(first.tenant_id, tenant.to_string());
    assert_eq!(
        first.role,
        api::Role::Member as i32,
        "manager maps to member"
    );
    let members = h
        .members()
        .list_members(with_token(
            api::ListMembersRequest {},
            Some(&first.access_token),
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert!(
        members
            .iter()
            .any(|m| m.user_id == first.user_id && m.email == "alice@example.com")
    );

    // Later logins find the same user and keep the role an owner set since.
    h.members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: first.user_id.clone(),
                role: api::Role::Viewer as i32,
            },
            Some(&owner.token),
        ))
        .await
        .unwrap();
    let second = login(&h, &p, tenant, &config.provider_id).await.unwrap();
    assert_eq!(second.user_id, first.user_id);
    assert_eq!(second.role, api::Role::Viewer as i32);

    // The client secret is in the log only sealed.
    let store = h.env.event_store().await;
    let address = tenantry_auth::api::tenant_address::<
        tenantry_auth::domain::identity_providers::IdentityProviders,
    >(tenant)
    .unwrap();
    for m in store.read_aggregate(&address, 0).await.unwrap() {
        for e in &m.batch.events {
            assert!(
                !e.payload
                    .windows(CLIENT_SECRET.len())
                    .any(|w| w == CLIENT_SECRET.as_bytes())
            );
        }
    }
}

#[tokio::test]
async fn a_state_works_once() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let p = provider("ok", keycloak_claims(tenant, &["user"])).await;
    let config = configure(&h, &owner.token, &p, "keycloak", "").await;
    let begun = begin(&h, tenant, &config.provider_id).await;
    let (code, state) = authorize(&p, &begun.authorization_url).await;
    complete(&h, code.clone(), state.clone())
        .await
        .expect("first use");
    let replay = complete(&h, code, state).await.unwrap_err();
    assert_eq!(replay.code(), Code::Unauthenticated);
    let made_up = complete(&h, "code".into(), "made-up-state".into())
        .await
        .unwrap_err();
    assert_eq!(made_up.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn auth0_namespaced_claims_map_too() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let claims = json!({
        "email": "bob@example.com",
        "https://tenantry.dev/roles": ["admin"],
        "https://tenantry.dev/tenant_id": tenant.to_string(),
    });
    let p = provider("ok", claims).await;
    let config = configure(&h, &owner.token, &p, "auth0", "").await;
    let s = login(&h, &p, tenant, &config.provider_id).await.unwrap();
    assert_eq!(s.role, api::Role::Owner as i32, "admin maps to owner");
}

#[tokio::test]
async fn a_wrong_issuer_or_a_bad_signature_is_refused_and_provisions_nobody() {
    for (mode, why) in [("wrong-iss", "Issuer"), ("bad-signature", "Signature")] {
        let h = start().await;
        let tenant = Uuid::now_v7();
        let owner = h.member(tenant, api::Role::Owner).await;
        let p = provider(mode, keycloak_claims(tenant, &["admin"])).await;
        let config = configure(&h, &owner.token, &p, "keycloak", "").await;
        let e = login(&h, &p, tenant, &config.provider_id)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{mode}: {e:?}");
        assert!(
            e.message().contains(why),
            "{mode}: refused for another reason: {}",
            e.message()
        );
        let members = h
            .members()
            .list_members(with_token(api::ListMembersRequest {}, Some(&owner.token)))
            .await
            .unwrap()
            .into_inner()
            .members;
        assert_eq!(members.len(), 1, "{mode}: nobody was provisioned");
    }
}

#[tokio::test]
async fn claims_that_place_the_user_elsewhere_or_map_to_no_role_are_refused() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let elsewhere = provider("ok", keycloak_claims(Uuid::now_v7(), &["admin"])).await;
    let config = configure(
        &h,
        &owner.token,
        &elsewhere,
        "keycloak",
        &format!("resource_access.{CLIENT_ID}.tenant_id"),
    )
    .await;
    let e = login(&h, &elsewhere, tenant, &config.provider_id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let nobody = provider("ok", keycloak_claims(tenant, &["intern"])).await;
    let config = configure(&h, &owner.token, &nobody, "keycloak", "").await;
    let e = login(&h, &nobody, tenant, &config.provider_id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn provider_settings_are_validated_by_field_and_isolated_by_tenant() {
    let h = start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let owner_a = h.member(a, api::Role::Owner).await;
    let owner_b = h.member(b, api::Role::Owner).await;
    let p = provider("ok", keycloak_claims(a, &["admin"])).await;
    let good = api::ConfigureOidcProviderRequest {
        preset: "keycloak".into(),
        issuer: p.issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        scopes: vec!["openid".into()],
        redirect_uris: vec![REDIRECT.into()],
        ..Default::default()
    };
    let before = h.last_position().await;
    let cases: Vec<(&str, api::ConfigureOidcProviderRequest)> = vec![
        (
            "redirect_uris[0]",
            api::ConfigureOidcProviderRequest {
                redirect_uris: vec!["http://app.example.com/cb".into()],
                ..good.clone()
            },
        ),
        (
            "redirect_uris",
            api::ConfigureOidcProviderRequest {
                redirect_uris: vec![],
                ..good.clone()
            },
        ),
        (
            "role_mappings[admin]",
            api::ConfigureOidcProviderRequest {
                role_mappings: [("admin".to_owned(), "god".to_owned())].into(),
                ..good.clone()
            },
        ),
        (
            "scopes",
            api::ConfigureOidcProviderRequest {
                scopes: vec!["email".into()],
                ..good.clone()
            },
        ),
        (
            "preset",
            api::ConfigureOidcProviderRequest {
                preset: "okta-ish".into(),
                ..good.clone()
            },
        ),
        (
            "issuer",
            api::ConfigureOidcProviderRequest {
                issuer: "not a url".into(),
                ..good.clone()
            },
        ),
        (
            "client_id",
            api::ConfigureOidcProviderRequest {
                client_id: "c".repeat(201),
                ..good.clone()
            },
        ),
        (
            "client_secret",
            api::ConfigureOidcProviderRequest {
                client_secret: String::new(),
                ..good.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let e = h
            .providers()
            .configure_oidc_provider(with_token(request, Some(&owner_a.token)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    assert_eq!(h.last_position().await, before, "nothing stored");

    let config = configure(&h, &owner_a.token, &p, "keycloak", "").await;
    let e = h
        .sessions()
        .begin_oidc_login(api::BeginOidcLoginRequest {
            tenant_id: a.to_string(),
            provider_id: config.provider_id.clone(),
            redirect_uri: format!("{REDIRECT}/other"),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("redirect_uri"),
        "{e:?}"
    );
    // Tenant B sees nothing of A's provider and cannot use or remove it.
    let e = h
        .sessions()
        .begin_oidc_login(api::BeginOidcLoginRequest {
            tenant_id: b.to_string(),
            provider_id: config.provider_id.clone(),
            redirect_uri: REDIRECT.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        h.providers()
            .list_oidc_providers(with_token(
                api::ListOidcProvidersRequest {},
                Some(&owner_b.token)
            ))
            .await
            .unwrap()
            .into_inner()
            .providers
            .is_empty()
    );
    let e = h
        .providers()
        .remove_oidc_provider(with_token(
            api::RemoveOidcProviderRequest {
                provider_id: config.provider_id.clone(),
            },
            Some(&owner_b.token),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // B naming A's provider id configures a provider of B's own; A's is untouched.
    let mut hijack = good.clone();
    hijack.provider_id = config.provider_id.clone();
    hijack.client_id = "hijacked".into();
    h.providers()
        .configure_oidc_provider(with_token(hijack, Some(&owner_b.token)))
        .await
        .unwrap();
    let a_providers = h
        .providers()
        .list_oidc_providers(with_token(
            api::ListOidcProvidersRequest {},
            Some(&owner_a.token),
        ))
        .await
        .unwrap()
        .into_inner()
        .providers;
    assert_eq!(a_providers.len(), 1);
    assert_eq!(a_providers[0].client_id, CLIENT_ID);
}
