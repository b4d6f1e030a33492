//! A team's size follows its tenant's plan: billing's `plan_limits_changed` appended to the log
//! (as billing would) sets the seats, per tenant, on a running auth service, for members added
//! by an admin and for invitations accepted.

mod common;

use std::time::Duration;

use common::{Harness, email, start, with_token};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_proto::auth::v1 as api;
use tenantry_proto::events::v1 as pb;
use tonic::Code;
use uuid::Uuid;

/// Billing's plan for `tenant`, with `seats`; returns once the service applied it.
async fn plan(h: &Harness, tenant: Uuid, seats: u32) {
    let store = h.env.event_store().await;
    let event = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: format!("seats-{seats}"),
        seats,
        custom_domains: 1,
        ..Default::default()
    });
    let id = tenant.to_string();
    let position = tenantry_testkit::append(&store, &id, &id, event)
        .await
        .unwrap();
    assert!(
        h.svc.plans.applied(position, Duration::from_secs(10)).await,
        "the plan directory applied position {position}"
    );
}

/// A new user added to `tenant` by a platform admin.
async fn add_member(h: &Harness, tenant: Uuid) -> Result<(), tonic::Status> {
    let user = h.sign_up(&email()).await;
    let admin = h.admin().await;
    h.members()
        .add_member(with_token(
            api::AddMemberRequest {
                tenant_id: tenant.to_string(),
                user_id: user.user_id,
                role: api::Role::Viewer as i32,
            },
            Some(&admin),
        ))
        .await
        .map(drop)
}

fn assert_seats_limit(e: &tonic::Status) {
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().starts_with("max_team_members"), "{e:?}");
}

#[tokio::test]
async fn the_plans_seats_cap_the_team_and_raising_them_lets_one_more_in() {
    let h = start().await;
    let tenant = Uuid::now_v7();
    plan(&h, tenant, 2).await;
    let owner = h.member(tenant, api::Role::Owner).await;
    add_member(&h, tenant).await.unwrap();

    // Full: neither an admin's add nor an accepted invitation makes a third member.
    let e = add_member(&h, tenant).await.unwrap_err();
    assert_seats_limit(&e);
    assert!(e.message().contains("at most 2 members"), "{e:?}");
    let invitee = email();
    let session = h.sign_up(&invitee).await;
    let invitation = h
        .members()
        .create_invitation(with_token(
            api::CreateInvitationRequest {
                email: invitee.clone(),
                role: api::Role::Member as i32,
                ttl_hours: 0,
            },
            Some(&owner.token),
        ))
        .await
        .unwrap()
        .into_inner();
    let accept = || {
        let mut c = h.sessions();
        let request = api::AcceptInvitationRequest {
            invitation_token: invitation.token.clone(),
            refresh_token: session.refresh_token.clone(),
        };
        async move { c.accept_invitation(request).await.map(|r| r.into_inner()) }
    };
    assert_seats_limit(&accept().await.unwrap_err());

    // An upgrade raises the seats: the refused invitation (still open) now gets in, and the
    // team is full again at three.
    plan(&h, tenant, 3).await;
    let joined = accept().await.unwrap();
    assert_eq!(joined.tenant_id, tenant.to_string());
    assert_seats_limit(&add_member(&h, tenant).await.unwrap_err());
    let members = h
        .members()
        .list_members(with_token(api::ListMembersRequest {}, Some(&owner.token)))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 3);
}

#[tokio::test]
async fn isolation_one_tenants_plan_does_not_cap_another_team() {
    let h = start().await;
    let (small, large, unplanned) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    plan(&h, small, 2).await;
    plan(&h, large, 10).await;
    for tenant in [small, large, unplanned] {
        for _ in 0..2 {
            add_member(&h, tenant).await.unwrap();
        }
        let third = add_member(&h, tenant).await;
        if tenant == small {
            assert_seats_limit(&third.unwrap_err());
        } else {
            // The other teams' caps are their own plan's (10) and the default.
            third.unwrap();
        }
    }
}
