//! Access tokens: the RFC 8725 negative suite, key rotation and the JWKS endpoint.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{start, with_token};
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use tenantry_kit::auth::{AccessClaims, JwksSource, SigningKey, Verifier, VerifierConfig};
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

fn claims(tenant: Uuid, role: &str) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: tenantry_testkit::ISSUER.into(),
        sub: Uuid::now_v7().to_string(),
        aud: tenantry_testkit::AUDIENCE.into(),
        tenant_id: Some(tenant.to_string()),
        role: role.into(),
        jti: Uuid::now_v7().to_string(),
        iat: now,
        nbf: now,
        exp: now + 300,
    }
}

fn sign_with(key: &SigningKey, header: Header, claims: &AccessClaims) -> String {
    jsonwebtoken::encode(&header, claims, &key.encoding_key()).unwrap()
}

fn header(kid: &str, typ: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid.into());
    h.typ = Some(typ.into());
    h
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn every_malformed_or_foreign_token_is_refused_and_changes_nothing() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let ours = h.svc.keys.signing_key().unwrap();
    let good = claims(tenant, "owner");
    let now = chrono::Utc::now().timestamp();

    let mut bad: Vec<(&str, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "at+jwt", "kid": ours.kid})),
            b64(&serde_json::to_value(&good).unwrap())
        );
        bad.push(("alg none", token));
    }
    {
        // HS256 with our public key as the HMAC secret (algorithm confusion).
        let public = ours.public_jwk()["x"].as_str().unwrap().to_owned();
        let signing_input = format!(
            "{}.{}",
            b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": ours.kid})),
            b64(&serde_json::to_value(&good).unwrap())
        );
        for secret in [
            public.as_bytes().to_vec(),
            URL_SAFE_NO_PAD.decode(&public).unwrap(),
        ] {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            let tag = ring::hmac::sign(&key, signing_input.as_bytes());
            bad.push((
                "HS256 with the public key",
                format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())),
            ));
        }
    }
    let stranger = SigningKey::generate("stranger-key");
    bad.push(("unknown kid", stranger.sign(&good).unwrap()));
    for kid in ["../../etc/passwd", "a/b", "k\\1", "kid with spaces"] {
        bad.push((
            "kid with path characters",
            sign_with(&ours, header(kid, "at+jwt"), &good),
        ));
    }
    let impostor = SigningKey::generate(ours.kid.clone());
    bad.push((
        "well-formed, our kid, not our key",
        impostor.sign(&good).unwrap(),
    ));
    let mut expired = good.clone();
    expired.exp = now - 61 - 60;
    expired.iat = now - 900;
    expired.nbf = now - 900;
    bad.push(("expired beyond the skew", ours.sign(&expired).unwrap()));
    let mut early = good.clone();
    early.nbf = now + 180;
    early.exp = now + 600;
    bad.push(("not yet valid beyond the skew", ours.sign(&early).unwrap()));
    let mut wrong_iss = good.clone();
    wrong_iss.iss = "https://evil.example".into();
    bad.push(("wrong iss", ours.sign(&wrong_iss).unwrap()));
    let mut wrong_aud = good.clone();
    wrong_aud.aud = "someone-else".into();
    bad.push(("wrong aud", ours.sign(&wrong_aud).unwrap()));
    bad.push((
        "an ID token (typ JWT)",
        sign_with(&ours, header(&ours.kid, "JWT"), &good),
    ));
    bad.push(("no typ", {
        let mut h = header(&ours.kid, "at+jwt");
        h.typ = None;
        sign_with(&ours, h, &good)
    }));
    let mut huge = good.clone();
    huge.sub = "x".repeat(9 * 1024);
    bad.push(("over 8 KB", ours.sign(&huge).unwrap()));
    bad.push(("garbage", "not.a.jwt".into()));
    bad.push((
        "unknown role",
        ours.sign(&claims(tenant, "superuser")).unwrap(),
    ));

    let before = h.last_position().await;
    for (what, token) in &bad {
        let err = h
            .accounts()
            .create_service_account(with_token(
                api::CreateServiceAccountRequest {
                    name: format!("sa-{what}"),
                    role: api::Role::Viewer as i32,
                    ..Default::default()
                },
                Some(token),
            ))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
    }
    assert_eq!(
        h.last_position().await,
        before,
        "a refused token wrote something"
    );

    // The control: the same claims, properly signed, are accepted.
    h.accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "control".into(),
                role: api::Role::Viewer as i32,
                ..Default::default()
            },
            Some(&ours.sign(&good).unwrap()),
        ))
        .await
        .expect("a good token works");
}

#[tokio::test]
async fn a_tenants_token_does_not_reach_another_tenants_objects() {
    let h = start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let owner_a = h.member(a, api::Role::Owner).await;
    let owner_b = h.member(b, api::Role::Owner).await;
    let member_b = h.member(b, api::Role::Member).await;
    let sa = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "ci".into(),
                role: api::Role::Member as i32,
                ..Default::default()
            },
            Some(&owner_b.token),
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
                service_account_id: sa.service_account_id.clone(),
                name: "k".into(),
                ..Default::default()
            },
            Some(&owner_b.token),
        ))
        .await
        .unwrap()
        .into_inner();
    let invitation = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: "x@example.com".into(),
                role: api::Role::Viewer as i32,
                ttl_hours: 0,
            },
            Some(&owner_b.token),
        ))
        .await
        .unwrap()
        .into_inner();

    // Owner of A, aiming at B's objects by id: as if they did not exist.
    let t = Some(owner_a.token.as_str());
    let e = h
        .accounts()
        .revoke_api_key(with_token(
            api::RevokeApiKeyRequest {
                key_id: key.key_id.clone(),
                ..Default::default()
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = h
        .accounts()
        .create_api_key(with_token(
            api::CreateApiKeyRequest {
                service_account_id: sa.service_account_id.clone(),
                name: "x".into(),
                ..Default::default()
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = h
        .members()
        .remove_member(with_token(
            api::RemoveMemberRequest {
                user_id: member_b.user_id.to_string(),
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = h
        .members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: member_b.user_id.to_string(),
                role: api::Role::Viewer as i32,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = h
        .members()
        .revoke_invitation(with_token(
            api::RevokeInvitationRequest {
                invitation_id: invitation.invitation_id.clone(),
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // A's owner cannot add members anywhere (platform admins only).
    let e = h
        .members()
        .add_member(with_token(
            api::AddMemberRequest {
                tenant_id: b.to_string(),
                user_id: owner_a.user_id.to_string(),
                role: api::Role::Owner as i32,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A's listings show A only.
    let members = h
        .members()
        .list_members(with_token(api::ListMembersRequest {}, t))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, owner_a.user_id.to_string());
    assert!(
        h.accounts()
            .list_api_keys(with_token(
                api::ListApiKeysRequest {
                    prefix: String::new(),
                    ..Default::default()
                },
                t
            ))
            .await
            .unwrap()
            .into_inner()
            .api_keys
            .is_empty()
    );
    assert!(
        h.accounts()
            .list_service_accounts(with_token(api::ListServiceAccountsRequest::default(), t))
            .await
            .unwrap()
            .into_inner()
            .service_accounts
            .is_empty()
    );
    assert!(
        h.members()
            .list_invitations(with_token(api::ListInvitationsRequest {}, t))
            .await
            .unwrap()
            .into_inner()
            .invitations
            .is_empty()
    );
    assert!(
        h.providers()
            .list_oidc_providers(with_token(api::ListOidcProvidersRequest {}, t))
            .await
            .unwrap()
            .into_inner()
            .providers
            .is_empty()
    );
    // B's key is B's: it lists B's service accounts, not A's.
    let listed = h
        .accounts()
        .list_service_accounts(with_token(
            api::ListServiceAccountsRequest::default(),
            Some(&key.api_key),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.service_accounts.len(), 1);
    // A refresh token of A's user cannot switch into B.
    let e = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: owner_a.refresh.clone(),
            tenant_id: b.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn rotation_publishes_first_signs_later_and_keeps_old_tokens_valid() {
    // The service's clock moves by hand: "before the lead is over" does not depend on how
    // fast a loaded machine logs in.
    let clock = tenantry_kit::ManualClock::new(chrono::Utc::now());
    let h = common::start_full(
        |c| c.key_publish_lead_secs = 2,
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let jwks_url = format!("http://{}/.well-known/jwks.json", h.svc.addr);
    // A verifier elsewhere (any service's interceptor) reading the JWKS over HTTP.
    let remote = Verifier::new(VerifierConfig {
        issuer: tenantry_testkit::ISSUER.into(),
        audience: tenantry_testkit::AUDIENCE.into(),
        jwks: JwksSource::Url(jwks_url.clone()),
        refresh_interval: Duration::from_secs(1),
        max_age: Duration::from_secs(300),
    })
    .await
    .unwrap();
    let tenant = Uuid::now_v7();
    let m = h.member(tenant, api::Role::Viewer).await;
    let old_kid = jsonwebtoken::decode_header(&m.token).unwrap().kid.unwrap();
    remote.verify(&m.token).await.unwrap();

    let admin = h.admin().await;
    let rotated = h
        .keys()
        .rotate_signing_key(with_token(api::RotateSigningKeyRequest {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.kid, old_kid);
    let jwks: serde_json::Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&rotated.kid.as_str()),
        "{kids:?}"
    );
    // Published, not yet signing.
    let before = h
        .login(&m.email, common::PASSWORD, Some(tenant))
        .await
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&before.access_token)
            .unwrap()
            .kid
            .unwrap(),
        old_kid
    );

    clock.advance(chrono::Duration::milliseconds(2300));
    let after = h
        .login(&m.email, common::PASSWORD, Some(tenant))
        .await
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&after.access_token)
            .unwrap()
            .kid
            .unwrap(),
        rotated.kid
    );
    for token in [&m.token, &after.access_token] {
        remote
            .verify(token)
            .await
            .expect("old and new tokens both verify remotely");
        h.members()
            .list_members(with_token(api::ListMembersRequest {}, Some(token)))
            .await
            .expect("and at auth");
    }
    let listed = h
        .keys()
        .list_signing_keys(with_token(api::ListSigningKeysRequest {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(listed.iter().any(|k| k.kid == rotated.kid && k.signing));
    assert!(
        listed
            .iter()
            .any(|k| k.kid == old_kid && !k.signing && k.retired_at.is_some())
    );
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_once_its_tokens_have_expired() {
    let clock = tenantry_kit::ManualClock::new(chrono::Utc::now());
    let env = tenantry_testkit::TestEnv::new().await;
    let svc = env
        .start(tenantry_auth::AuthService {
            config: common::config(&env),
            clock: std::sync::Arc::new(clock.clone()),
        })
        .await;
    let old = svc.keys.signing_key().unwrap().kid;
    let new = svc.keys.rotate().await.unwrap().key.kid;
    assert_eq!(svc.keys.ring().keys.len(), 2);
    // Retired at activation (60 s); tokens signed until then live 900 s, plus 60 s of skew.
    clock.advance(chrono::Duration::seconds(60 + 900 + 59));
    svc.keys.reload().await.unwrap();
    assert!(
        svc.keys.ring().jwks.contains(&old),
        "still published inside the window"
    );
    clock.advance(chrono::Duration::seconds(2));
    svc.keys.reload().await.unwrap();
    let ring = svc.keys.ring();
    assert!(!ring.jwks.contains(&old));
    assert!(ring.jwks.contains(&new));
}
