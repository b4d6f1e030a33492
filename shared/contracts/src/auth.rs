//! The auth service's contracts: identities, credentials, sessions, teams, service accounts
//! and their API keys (which every service follows to accept keys), identity providers.

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

/// Aggregate type of a tenant's service accounts and API keys (one per tenant).
pub const SERVICE_ACCOUNTS: &str = "service_accounts";

#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    Registered(pb::UserRegistered),
    PlatformAdminGranted(pb::PlatformAdminGranted),
    LoggedIn(pb::UserLoggedIn),
}

event_table!(UserEvent in "user" {
    Registered => "user.registered.v1": pb::UserRegistered,
    PlatformAdminGranted => "user.platform_admin_granted.v1": pb::PlatformAdminGranted,
    LoggedIn => "user.logged_in.v1": pb::UserLoggedIn,
});

#[derive(Debug, Clone, PartialEq)]
pub enum CredentialEvent {
    /// The password hash sealed under the master key.
    Created(pb::CredentialCreated),
    /// The first version, with the password hash in the clear: read from old logs, never
    /// written.
    CreatedV1(pb::CredentialCreated),
    LoginSucceeded(pb::CredentialLoginSucceeded),
    LoginFailed(pb::CredentialLoginFailed),
    LockedOut(pb::CredentialLockedOut),
}

event_table!(CredentialEvent in "credential" {
    Created => "credential.created.v2": pb::CredentialCreated,
    CreatedV1 => "credential.created.v1": pb::CredentialCreated,
    LoginSucceeded => "credential.login_succeeded.v1": pb::CredentialLoginSucceeded,
    LoginFailed => "credential.login_failed.v1": pb::CredentialLoginFailed,
    LockedOut => "credential.locked_out.v1": pb::CredentialLockedOut,
});

#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Started(pb::SessionStarted),
    Refreshed(pb::SessionRefreshed),
    Revoked(pb::SessionRevoked),
}

event_table!(SessionEvent in "session" {
    Started => "session.started.v1": pb::SessionStarted,
    Refreshed => "session.refreshed.v1": pb::SessionRefreshed,
    Revoked => "session.revoked.v1": pb::SessionRevoked,
});

#[derive(Debug, Clone, PartialEq)]
pub enum TeamEvent {
    MemberAdded(pb::MemberAdded),
    MemberRoleChanged(pb::MemberRoleChanged),
    MemberRemoved(pb::MemberRemoved),
    InvitationCreated(pb::InvitationCreated),
    InvitationAccepted(pb::InvitationAccepted),
    InvitationRevoked(pb::InvitationRevoked),
}

event_table!(TeamEvent in "team" {
    MemberAdded => "team.member_added.v1": pb::MemberAdded,
    MemberRoleChanged => "team.member_role_changed.v1": pb::MemberRoleChanged,
    MemberRemoved => "team.member_removed.v1": pb::MemberRemoved,
    InvitationCreated => "team.invitation_created.v1": pb::InvitationCreated,
    InvitationAccepted => "team.invitation_accepted.v1": pb::InvitationAccepted,
    InvitationRevoked => "team.invitation_revoked.v1": pb::InvitationRevoked,
});

/// Events of the `service_accounts` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAccountEvent {
    AccountCreated(pb::ServiceAccountCreated),
    ApiKeyCreated(pb::ApiKeyCreated),
    ApiKeyRevoked(pb::ApiKeyRevoked),
}

event_table!(ServiceAccountEvent in "service_accounts" {
    AccountCreated => "service_accounts.account_created.v1": pb::ServiceAccountCreated,
    ApiKeyCreated => "service_accounts.api_key_created.v1": pb::ApiKeyCreated,
    ApiKeyRevoked => "service_accounts.api_key_revoked.v1": pb::ApiKeyRevoked,
});

// Configuring is the common event and removals are rare: boxing buys nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityProviderEvent {
    Configured(pb::OidcProviderConfigured),
    Removed(pb::OidcProviderRemoved),
}

event_table!(IdentityProviderEvent in "identity_providers" {
    Configured => "identity_providers.configured.v1": pb::OidcProviderConfigured,
    Removed => "identity_providers.removed.v1": pb::OidcProviderRemoved,
});
