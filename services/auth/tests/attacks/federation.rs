//! Issue 17, item 2: a tenant's identity provider taking over users of other tenants.
//!
//! Users are `(issuer, subject)`, so tenant A configuring the issuer tenant B federates with
//! meets B's users as the same identities. A session opened through A's provider must mint
//! tokens for A only: refreshing it into B, or accepting B's invitation with it, is refused.

use std::time::Duration;

use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

use crate::common::oidc::{configure, keycloak_claims, login, provider};
use crate::common::{start, with_token};

#[tokio::test]
async fn attack_federated_session_refreshed_into_another_tenant_is_denied() {
    let h = start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let owner_a = h.member(a, api::Role::Owner).await;
    let owner_b = h.member(b, api::Role::Owner).await;
    // One provider, one subject (`alice`, an `admin` there); both tenants federate with it.
    let p = provider("ok", keycloak_claims(b, &["admin"])).await;
    let config_b = configure(&h, &owner_b.token, &p, "keycloak", "").await;
    let config_a = configure(&h, &owner_a.token, &p, "keycloak", "").await;

    // The victim is an owner of B through B's provider...
    let in_b = login(&h, &p, b, &config_b.provider_id).await.unwrap();
    assert_eq!(in_b.role, api::Role::Owner as i32);
    // ...and signs in to A once: A's backend now holds that session's refresh token.
    let in_a = login(&h, &p, a, &config_a.provider_id).await.unwrap();
    assert_eq!(in_a.user_id, in_b.user_id, "one identity in both tenants");

    let stolen = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: in_a.refresh_token.clone(),
            tenant_id: b.to_string(),
        })
        .await;
    let e = stolen.expect_err("A's session must not mint a token for B");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The refused switch spent nothing: the session still works, for A.
    let again = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: in_a.refresh_token.clone(),
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.tenant_id, a.to_string());

    // B's invitation accepted with A's session would mint B's token the same way.
    let invitation = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: "alice@example.com".into(),
                role: api::Role::Owner as i32,
                ttl_hours: 0,
            },
            Some(&owner_b.token),
        ))
        .await
        .unwrap()
        .into_inner();
    let e = h
        .sessions()
        .accept_invitation(api::AcceptInvitationRequest {
            invitation_token: invitation.token,
            refresh_token: again.refresh_token.clone(),
        })
        .await
        .expect_err("A's session must not join B");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // And a login through A's provider does not tell A which other tenants the user is in.
    h.svc
        .positions
        .wait_for(h.last_position().await, Duration::from_secs(10))
        .await
        .unwrap();
    let later = login(&h, &p, a, &config_a.provider_id).await.unwrap();
    let listed: Vec<&str> = later
        .memberships
        .iter()
        .map(|m| m.tenant_id.as_str())
        .collect();
    assert_eq!(listed, vec![a.to_string().as_str()], "only A is shown to A");
    assert!(!later.platform_admin);
}
