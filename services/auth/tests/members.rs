//! Memberships and invitations: owners manage, the last owner stays, invitations are single
//! use and expire, nobody raises their own role.

mod common;

use common::{PASSWORD, email, start, start_with_clock, with_token};
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn a_member_cannot_grant_themselves_owner() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let _owner = h.member(tenant, api::Role::Owner).await;
    let m = h.member(tenant, api::Role::Member).await;
    let e = h
        .members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: m.user_id.to_string(),
                role: api::Role::Owner as i32,
            },
            Some(&m.token),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: m.email.clone(),
                role: api::Role::Owner as i32,
                ttl_hours: 0,
            },
            Some(&m.token),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Refreshing does not raise it either: the role comes from the membership.
    let s = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: m.refresh,
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.role, api::Role::Member as i32);
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let t = Some(owner.token.as_str());
    let e = h
        .members()
        .remove_member(with_token(
            api::RemoveMemberRequest {
                user_id: owner.user_id.to_string(),
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = h
        .members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: owner.user_id.to_string(),
                role: api::Role::Member as i32,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // With a second owner, the first may step down.
    let second = h.member(tenant, api::Role::Member).await;
    h.members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: second.user_id.to_string(),
                role: api::Role::Owner as i32,
            },
            t,
        ))
        .await
        .unwrap();
    h.members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: owner.user_id.to_string(),
                role: api::Role::Viewer as i32,
            },
            t,
        ))
        .await
        .unwrap();
    // The demoted owner's next token says viewer.
    let s = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: owner.refresh,
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.role, api::Role::Viewer as i32);
    // Tokens carry the role they were issued with; the promoted owner refreshes to act as one.
    let e = h
        .members()
        .remove_member(with_token(
            api::RemoveMemberRequest {
                user_id: owner.user_id.to_string(),
            },
            Some(&second.token),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let promoted = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: second.refresh.clone(),
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promoted.role, api::Role::Owner as i32);
    // A removed member's session can no longer get into the tenant.
    h.members()
        .remove_member(with_token(
            api::RemoveMemberRequest {
                user_id: owner.user_id.to_string(),
            },
            Some(&promoted.access_token),
        ))
        .await
        .unwrap();
    let e = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: s.refresh_token,
            tenant_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn invitations_are_single_use_bound_to_their_address_and_revocable() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let invitee = email();
    let session = h.sign_up(&invitee).await;
    let invite = |address: String| {
        let mut c = h.members();
        let token = owner.token.clone();
        async move {
            c.create_invitation(with_token(
                api::CreateInvitationRequest {
                    email: address,
                    role: api::Role::Member as i32,
                    ttl_hours: 0,
                },
                Some(&token),
            ))
            .await
            .unwrap()
            .into_inner()
        }
    };
    let accept = |token: String, refresh: String| {
        let mut c = h.sessions();
        async move {
            c.accept_invitation(api::AcceptInvitationRequest {
                invitation_token: token,
                refresh_token: refresh,
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    // Sent to someone else: refused.
    let other = invite(email()).await;
    let e = accept(other.token.clone(), session.refresh_token.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // A tampered token: refused.
    let mine = invite(invitee.clone()).await;
    let mut tampered = mine.token.clone();
    tampered.pop();
    tampered.push('x');
    assert_eq!(
        accept(tampered, session.refresh_token.clone())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // The real one: a member of the tenant, with a token for it.
    let joined = accept(mine.token.clone(), session.refresh_token.clone())
        .await
        .unwrap();
    assert_eq!(joined.tenant_id, tenant.to_string());
    assert_eq!(joined.role, api::Role::Member as i32);
    // Used: refused the second time.
    assert_eq!(
        accept(mine.token, joined.refresh_token.clone())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // Revoked: refused.
    let revoked = invite(invitee.clone()).await;
    h.members()
        .revoke_invitation(with_token(
            api::RevokeInvitationRequest {
                invitation_id: revoked.invitation_id.clone(),
            },
            Some(&owner.token),
        ))
        .await
        .unwrap();
    assert_eq!(
        accept(revoked.token, joined.refresh_token.clone())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let open = h
        .members()
        .list_invitations(with_token(
            api::ListInvitationsRequest {},
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(open.len(), 1, "only the one sent elsewhere is still open");
    let members = h
        .members()
        .list_members(with_token(
            api::ListMembersRequest {},
            Some(&joined.access_token),
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert!(
        members
            .iter()
            .any(|m| m.email == invitee && m.role == api::Role::Member as i32)
    );
}

#[tokio::test]
async fn member_commands_refuse_bad_input_by_field() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let t = Some(owner.token.as_str());
    let before = h.last_position().await;
    let e = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: "nobody".into(),
                role: api::Role::Member as i32,
                ttl_hours: 0,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("email"),
        "{e:?}"
    );
    let e = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: "a@example.com".into(),
                role: 42,
                ttl_hours: 0,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("role"),
        "{e:?}"
    );
    let e = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: "a@example.com".into(),
                role: api::Role::Member as i32,
                ttl_hours: 10_000,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("ttl_hours"),
        "{e:?}"
    );
    let e = h
        .members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: "x.*".into(),
                role: api::Role::Member as i32,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("user_id"),
        "{e:?}"
    );
    let e = h
        .members()
        .change_role(with_token(
            api::ChangeRoleRequest {
                user_id: owner.user_id.to_string(),
                role: 0,
            },
            t,
        ))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("role"),
        "{e:?}"
    );
    let e = h
        .accounts()
        .create_service_account(with_token(
            api::CreateServiceAccountRequest {
                name: "n".repeat(101),
                role: api::Role::Member as i32,
                ..Default::default()
            },
            t,
        ))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("name"),
        "{e:?}"
    );
    assert_eq!(h.last_position().await, before);
    let _ = PASSWORD;
}

#[tokio::test]
async fn an_expired_invitation_is_refused() {
    let clock = tenantry_kit::ManualClock::new(chrono::Utc::now());
    let h = start_with_clock(clock.clone()).await;
    let tenant = Uuid::now_v7();
    let owner = h.member(tenant, api::Role::Owner).await;
    let invitee = email();
    let session = h.sign_up(&invitee).await;
    let invitation = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: invitee,
                role: api::Role::Viewer as i32,
                ttl_hours: 1,
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner();
    clock.advance(chrono::Duration::minutes(61));
    let e = h
        .sessions()
        .accept_invitation(api::AcceptInvitationRequest {
            invitation_token: invitation.token,
            refresh_token: session.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}
