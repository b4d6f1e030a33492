//! Given events, when a command, then events (or an error).

use chrono::{Duration, TimeZone};
use tenantry_kit::gwt::Given;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn tenant() -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
}

/// Users `user(1)`, `user(2)`, …
fn user(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0001_0000 + n)
}

fn invitation(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0002_0000 + n)
}

fn given(events: impl IntoIterator<Item = TeamEvent>) -> Given<Team> {
    tenantry_kit::gwt::given(events)
        .at(now())
        .of(tenant(), tenant())
}

fn email(n: u128) -> String {
    format!("user{n}@acme.com")
}

fn add(n: u128, role: Role) -> TeamCommand {
    add_under(n, role, MAX_MEMBERS)
}

/// Adding `user(n)` when the tenant's plan has `max_members` seats.
fn add_under(n: u128, role: Role, max_members: usize) -> TeamCommand {
    TeamCommand::AddMember {
        user_id: user(n),
        email: email(n),
        role,
        via: "admin".into(),
        max_members,
    }
}

fn added_member(n: u128, role: Role) -> TeamEvent {
    added(user(n), &email(n), role, "admin")
}

fn role_changed(n: u128, role: Role) -> TeamEvent {
    TeamEvent::MemberRoleChanged(pb::MemberRoleChanged {
        user_id: user(n).to_string(),
        role: role.as_str().into(),
    })
}

fn removed(n: u128) -> TeamEvent {
    TeamEvent::MemberRemoved(pb::MemberRemoved {
        user_id: user(n).to_string(),
    })
}

/// `user(1)` owns the team, `user(2)` is a member.
fn team() -> Given<Team> {
    given([added_member(1, Role::Owner), added_member(2, Role::Member)])
}

fn invite(n: u128, to: &str, role: Role) -> TeamCommand {
    TeamCommand::Invite {
        id: invitation(n),
        email: to.into(),
        role,
        digest: vec![7],
        expires_at: now() + Duration::days(7),
    }
}

fn invited(n: u128, to: &str, role: Role) -> TeamEvent {
    TeamEvent::InvitationCreated(pb::InvitationCreated {
        invitation_id: invitation(n).to_string(),
        email: to.into(),
        role: role.as_str().into(),
        token_digest: vec![7],
        expires_at: Some(time::to_proto(now() + Duration::days(7))),
    })
}

/// `user(n)` accepts invitation 1 presenting `presented`, signed in as `address`, at `at`.
fn accept(n: u128, presented: u8, address: &str, at: DateTime<Utc>) -> TeamCommand {
    TeamCommand::Accept {
        id: invitation(1),
        presented: vec![presented],
        user_id: user(n),
        email: address.into(),
        now: at,
        max_members: MAX_MEMBERS,
    }
}

/// `user(n)` accepts invitation 1 (the right token, now) when the plan has `max_members`
/// seats.
fn accept_under(n: u128, address: &str, max_members: usize) -> TeamCommand {
    TeamCommand::Accept {
        id: invitation(1),
        presented: vec![7],
        user_id: user(n),
        email: address.into(),
        now: now(),
        max_members,
    }
}

fn accepted(n: u128) -> TeamEvent {
    TeamEvent::InvitationAccepted(pb::InvitationAccepted {
        invitation_id: invitation(1).to_string(),
        user_id: user(n).to_string(),
    })
}

fn invalid_invitation() -> DomainError {
    DomainError::Unauthenticated("invalid invitation".into())
}

fn last_owner() -> DomainError {
    DomainError::Precondition(
        "the last owner cannot be removed or demoted; make another member owner first".into(),
    )
}

#[test]
fn given_nothing_when_a_member_is_added_then_member_added() {
    let state = given([])
        .when(add(1, Role::Owner))
        .then([added_member(1, Role::Owner)]);
    assert_eq!(
        state.state().members.get(&user(1)),
        Some(&Member {
            role: Role::Owner,
            email: email(1),
        })
    );
}

#[test]
fn given_a_member_when_added_again_then_nothing_and_the_role_is_kept() {
    team().when(add(2, Role::Owner)).then_nothing();
}

#[test]
fn given_a_full_team_when_a_member_is_added_then_refused_but_members_are_still_recognised() {
    let full = given((1..=MAX_MEMBERS as u128).map(|n| added_member(n, Role::Member)));
    full.when(add(MAX_MEMBERS as u128 + 1, Role::Viewer))
        .then_error(DomainError::limit(
            "max_team_members",
            format!("a team has at most {MAX_MEMBERS} members"),
        ));
    full.when(add(1, Role::Viewer)).then_nothing();
}

#[test]
fn given_a_team_at_its_plans_seats_when_a_member_is_added_or_accepts_then_refused_naming_the_cap() {
    let seats = || DomainError::limit("max_team_members", "a team has at most 2 members");
    team()
        .when(add_under(3, Role::Viewer, 2))
        .then_error(seats());
    team()
        .when(add_under(3, Role::Viewer, 3))
        .then([added_member(3, Role::Viewer)]);
    // Members of a team over a lowered cap stay, and are still recognised.
    team().when(add_under(2, Role::Viewer, 1)).then_nothing();
    let inviting = team().and([invited(1, &email(3), Role::Viewer)]);
    inviting
        .when(accept_under(3, &email(3), 2))
        .then_error(seats());
    // A member accepting an invitation takes no new seat.
    team()
        .and([invited(1, &email(2), Role::Owner)])
        .when(accept_under(2, &email(2), 2))
        .then([accepted(2), role_changed(2, Role::Owner)]);
}

#[test]
fn given_a_member_when_promoted_then_role_changed() {
    let state = team()
        .when(TeamCommand::ChangeRole {
            user_id: user(2),
            role: Role::Owner,
        })
        .then([role_changed(2, Role::Owner)]);
    assert_eq!(state.state().owners(), 2);
}

#[test]
fn given_a_member_when_given_the_role_they_hold_then_nothing() {
    team()
        .when(TeamCommand::ChangeRole {
            user_id: user(2),
            role: Role::Member,
        })
        .then_nothing();
}

#[test]
fn given_no_such_member_when_their_role_is_changed_or_they_are_removed_then_not_found() {
    let missing = DomainError::NotFound(format!("member {}", user(9)));
    team()
        .when(TeamCommand::ChangeRole {
            user_id: user(9),
            role: Role::Viewer,
        })
        .then_error(missing.clone());
    team()
        .when(TeamCommand::RemoveMember { user_id: user(9) })
        .then_error(missing);
}

#[test]
fn given_one_owner_when_removed_or_demoted_then_refused_until_another_is_owner() {
    let state = team();
    state
        .when(TeamCommand::RemoveMember { user_id: user(1) })
        .then_error(last_owner());
    state
        .when(TeamCommand::ChangeRole {
            user_id: user(1),
            role: Role::Viewer,
        })
        .then_error(last_owner());
    let two_owners = state
        .when(TeamCommand::ChangeRole {
            user_id: user(2),
            role: Role::Owner,
        })
        .then([role_changed(2, Role::Owner)]);
    two_owners
        .when(TeamCommand::ChangeRole {
            user_id: user(1),
            role: Role::Member,
        })
        .then([role_changed(1, Role::Member)]);
    let state = two_owners
        .when(TeamCommand::RemoveMember { user_id: user(1) })
        .then([removed(1)]);
    assert_eq!(state.state().owners(), 1);
}

#[test]
fn given_a_member_when_removed_then_member_removed() {
    let state = team()
        .when(TeamCommand::RemoveMember { user_id: user(2) })
        .then([removed(2)]);
    assert!(!state.state().members.contains_key(&user(2)));
}

#[test]
fn given_a_team_when_someone_is_invited_then_invitation_created() {
    let state = team()
        .when(invite(1, "new@acme.com", Role::Member))
        .then([invited(1, "new@acme.com", Role::Member)]);
    assert_eq!(state.state().invitations.len(), 1);
}

#[test]
fn given_the_most_open_invitations_when_another_is_sent_then_refused_until_one_closes() {
    let full = team()
        .and((1..=MAX_OPEN_INVITATIONS as u128).map(|n| invited(n, "x@acme.com", Role::Viewer)));
    let n = MAX_OPEN_INVITATIONS as u128 + 1;
    full.when(invite(n, "x@acme.com", Role::Viewer))
        .then_error(DomainError::limit(
            "max_open_invitations",
            format!("at most {MAX_OPEN_INVITATIONS} invitations may be open"),
        ));
    full.and([TeamEvent::InvitationRevoked(pb::InvitationRevoked {
        invitation_id: invitation(1).to_string(),
    })])
    .when(invite(n, "x@acme.com", Role::Viewer))
    .then([invited(n, "x@acme.com", Role::Viewer)]);
}

#[test]
fn given_an_invitation_when_a_new_user_accepts_then_accepted_and_added_with_its_role() {
    // The address is compared without regard to case; the member keeps the one they use.
    let state = team()
        .and([invited(1, "new@acme.com", Role::Member)])
        .when(accept(3, 7, "New@Acme.com", now()))
        .then([
            accepted(3),
            added(
                user(3),
                "New@Acme.com",
                Role::Member,
                &format!("invitation:{}", invitation(1)),
            ),
        ]);
    assert!(state.state().invitations.is_empty());
    state
        .when(accept(3, 7, "New@Acme.com", now()))
        .then_error(invalid_invitation());
}

#[test]
fn given_a_full_team_when_a_new_user_accepts_an_invitation_then_refused() {
    let full = given((1..=MAX_MEMBERS as u128).map(|n| added_member(n, Role::Member)))
        .and([invited(1, "late@acme.com", Role::Viewer)]);
    full.when(accept(MAX_MEMBERS as u128 + 1, 7, "late@acme.com", now()))
        .then_error(DomainError::limit(
            "max_team_members",
            format!("a team has at most {MAX_MEMBERS} members"),
        ));
}

#[test]
fn given_an_invitation_to_a_higher_role_when_a_member_accepts_then_promoted() {
    team()
        .and([invited(1, &email(2), Role::Owner)])
        .when(accept(2, 7, &email(2), now()))
        .then([accepted(2), role_changed(2, Role::Owner)]);
}

#[test]
fn given_an_invitation_to_a_lower_role_when_a_member_accepts_then_the_role_is_kept() {
    team()
        .and([invited(1, &email(2), Role::Viewer)])
        .when(accept(2, 7, &email(2), now()))
        .then([accepted(2)]);
}

#[test]
fn given_an_invitation_when_accepted_with_a_wrong_token_or_too_late_then_invalid() {
    let state = team().and([invited(1, "new@acme.com", Role::Member)]);
    state
        .when(accept(3, 8, "new@acme.com", now()))
        .then_error(invalid_invitation());
    state
        .when(accept(3, 7, "new@acme.com", now() + Duration::days(7)))
        .then_error(invalid_invitation());
    team()
        .when(accept(3, 7, "new@acme.com", now()))
        .then_error(invalid_invitation());
}

#[test]
fn given_an_invitation_when_accepted_from_another_address_then_refused() {
    team()
        .and([invited(1, "new@acme.com", Role::Member)])
        .when(accept(3, 7, "other@acme.com", now()))
        .then_error(DomainError::Precondition(
            "the invitation was sent to another e-mail address".into(),
        ));
}

#[test]
fn given_an_invitation_when_revoked_then_revoked_and_no_longer_accepted() {
    let state = team()
        .and([invited(1, "new@acme.com", Role::Member)])
        .when(TeamCommand::RevokeInvitation { id: invitation(1) })
        .then([TeamEvent::InvitationRevoked(pb::InvitationRevoked {
            invitation_id: invitation(1).to_string(),
        })]);
    state
        .when(accept(3, 7, "new@acme.com", now()))
        .then_error(invalid_invitation());
    state
        .when(TeamCommand::RevokeInvitation { id: invitation(1) })
        .then_error(DomainError::NotFound(format!(
            "invitation {}",
            invitation(1)
        )));
}
