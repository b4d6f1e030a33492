//! Sign-up, login, refresh rotation and reuse, logout, login protection, bad input.

mod common;

use common::{PASSWORD, email, start, start_with, with_token};
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn login_issues_a_token_per_tenant_and_switching_issues_another() {
    let h = start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let m = h.member(a, api::Role::Member).await;
    // Also a viewer in b.
    let admin = h.admin().await;
    h.members()
        .add_member(with_token(
            api::AddMemberRequest {
                tenant_id: b.to_string(),
                user_id: m.user_id.to_string(),
                role: api::Role::Viewer as i32,
            },
            Some(&admin),
        ))
        .await
        .unwrap();
    // Without a tenant and with two memberships: no access token, the list to pick from.
    let s = tenantry_testkit::eventually(
        "both memberships projected",
        std::time::Duration::from_secs(5),
        || async {
            let s = h.login(&m.email, PASSWORD, None).await.unwrap();
            (s.memberships.len() == 2).then_some(s)
        },
    )
    .await;
    assert!(s.access_token.is_empty());
    let switched = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: s.refresh_token.clone(),
            tenant_id: b.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(switched.tenant_id, b.to_string());
    assert_eq!(switched.role, api::Role::Viewer as i32);
    assert!(!switched.access_token.is_empty());
    assert_ne!(switched.refresh_token, s.refresh_token, "refresh rotates");
    // Keeping the tenant: a refresh without one stays in b.
    let again = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: switched.refresh_token.clone(),
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.tenant_id, b.to_string());
    // A tenant the user is not in: refused, and the refresh token is not spent by it.
    let refused = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: again.refresh_token.clone(),
            tenant_id: Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    h.sessions()
        .refresh(api::RefreshRequest {
            refresh_token: again.refresh_token,
            tenant_id: a.to_string(),
        })
        .await
        .expect("the refused switch did not spend the token");
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_whole_family() {
    let h = start().await;
    let m = h.member(Uuid::now_v7(), api::Role::Viewer).await;
    let refresh = |token: String| {
        let mut client = h.sessions();
        async move {
            client
                .refresh(api::RefreshRequest {
                    refresh_token: token,
                    tenant_id: String::new(),
                })
                .await
                .map(|r| r.into_inner())
        }
    };
    let first = m.refresh.clone();
    let second = refresh(first.clone()).await.unwrap().refresh_token;
    let third = refresh(second.clone()).await.unwrap().refresh_token;
    // An attacker replays the first token: refused, and the family is revoked...
    let reuse = refresh(first).await.unwrap_err();
    assert_eq!(reuse.code(), Code::Unauthenticated);
    assert!(reuse.message().contains("revoked"), "{}", reuse.message());
    // ...so the legitimate holder's newest token is dead too.
    assert_eq!(
        refresh(third).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        refresh(second).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let h = start().await;
    let m = h.member(Uuid::now_v7(), api::Role::Viewer).await;
    h.sessions()
        .logout(api::LogoutRequest {
            refresh_token: m.refresh.clone(),
        })
        .await
        .unwrap();
    let err = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: m.refresh,
            tenant_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_read_the_same() {
    let h = start().await;
    let known = email();
    h.sign_up(&known).await;
    let unknown = h.login(&email(), PASSWORD, None).await.unwrap_err();
    let wrong = h
        .login(&known, "not-the-password-at-all", None)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(unknown.message(), wrong.message());
}

#[tokio::test]
async fn five_failures_lock_the_account_and_the_lockout_is_an_event() {
    let h = start().await;
    let who = email();
    h.sign_up(&who).await;
    for _ in 0..5 {
        let e = h
            .login(&who, "wrong-password-guess", None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    // Locked: even the right password is refused, with the same message.
    let locked = h.login(&who, PASSWORD, None).await.unwrap_err();
    assert_eq!(locked.code(), Code::Unauthenticated);
    assert_eq!(locked.message(), "invalid e-mail or password");
    let store = h.env.event_store().await;
    let address = tenantry_auth::api::credential_address(&who).unwrap();
    let messages = store.read_aggregate(&address, 0).await.unwrap();
    let types: Vec<String> = messages
        .iter()
        .flat_map(|m| m.batch.events.iter().map(|e| e.event_type.clone()))
        .collect();
    // Five before the lockout, all on the audit trail; the attempt made while locked appends
    // nothing (the lockout itself is on the trail).
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "credential.login_failed.v1")
            .count(),
        5
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "credential.locked_out.v1")
            .count(),
        1
    );
    assert!(
        types.contains(&"credential.locked_out.v1".to_owned()),
        "{types:?}"
    );
}

#[tokio::test]
async fn failures_from_one_address_are_throttled() {
    let h = start_with(|c| c.login_failures_per_addr = 3).await;
    for _ in 0..3 {
        // Different accounts each time: the per-address limit is what stops the spray.
        let e = h
            .login(&email(), "wrong-password-guess", None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = h
        .login(&email(), "wrong-password-guess", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let h = start().await;
    let before = h.last_position().await;
    let cases = [
        ("not-an-email", PASSWORD.to_owned(), "email"),
        ("a@b", PASSWORD.to_owned(), "email"),
        (
            &*format!("{}@example.com", "x".repeat(300)),
            PASSWORD.to_owned(),
            "email",
        ),
        ("ok@example.com", "short".to_owned(), "password"),
        ("ok@example.com", "y".repeat(500), "password"),
        ("ok@example.com", "password1234".to_owned(), "password"),
    ];
    for (email, password, field) in cases {
        let e = h
            .sessions()
            .sign_up(api::SignUpRequest {
                email: email.into(),
                password,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{email}");
        assert!(e.message().starts_with(field), "{}", e.message());
    }
    let e = h.login("ok@example.com", PASSWORD, None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = h
        .sessions()
        .login(api::LoginRequest {
            email: "ok@example.com".into(),
            password: PASSWORD.into(),
            tenant_id: "tenant.*".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("tenant_id"));
    assert_eq!(h.last_position().await, before, "nothing was written");
}

#[tokio::test]
async fn signing_up_twice_with_one_address_is_refused() {
    let h = start().await;
    let who = email();
    h.sign_up(&who).await;
    let e = h
        .sessions()
        .sign_up(api::SignUpRequest {
            email: who.to_uppercase(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn a_credential_from_before_sealed_hashes_still_logs_in() {
    use tenantry_auth::domain::events::{CredentialEvent, UserEvent};
    use tenantry_eventstore::aggregate::batch_of;
    use tenantry_eventstore::{AppendRequest, CommandMeta};
    use tenantry_proto::events::v1 as pb;

    let h = start().await;
    let store = h.env.event_store().await;
    let who = email();
    let user_id = Uuid::now_v7();
    let meta = CommandMeta {
        command_id: Uuid::now_v7().to_string(),
        actor: format!("user:{user_id}"),
        correlation_id: Uuid::now_v7().to_string(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    };
    // As an auth service from before credential.created.v2 wrote them: the hash in the clear.
    let phc = tenantry_auth::crypto::password::hash(PASSWORD.into())
        .await
        .unwrap();
    let user = tenantry_auth::api::user_address(user_id).unwrap();
    let credential = tenantry_auth::api::credential_address(&who).unwrap();
    let old: [(_, pb::EventBatch); 2] = [
        (
            user.clone(),
            batch_of(
                &user,
                &[UserEvent::Registered(pb::UserRegistered {
                    user_id: user_id.to_string(),
                    issuer: tenantry_testkit::ISSUER.into(),
                    subject: user_id.to_string(),
                    email: who.clone(),
                })],
                &meta,
            ),
        ),
        (
            credential.clone(),
            batch_of(
                &credential,
                &[CredentialEvent::CreatedV1(pb::CredentialCreated {
                    user_id: user_id.to_string(),
                    email: who.clone(),
                    password_hash: phc,
                    password_hash_sealed: vec![],
                })],
                &meta,
            ),
        ),
    ];
    for (address, batch) in old {
        store
            .append(AppendRequest {
                address,
                expected: Some(0),
                message_id: Uuid::now_v7().to_string(),
                batch,
                traceparent: None,
                fingerprint: None,
            })
            .await
            .unwrap();
    }
    let s = h
        .login(&who, PASSWORD, None)
        .await
        .expect("the old hash verifies");
    assert_eq!(s.user_id, user_id.to_string());
    let e = h
        .login(&who, "wrong-password-guess", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}
