//! The role each RPC requires. An RPC missing here is denied to everyone.

use tenantry_kit::{Access, Role, RpcPolicy};

pub const SESSIONS: &str = "tenantry.auth.v1.SessionService";
pub const MEMBERS: &str = "tenantry.auth.v1.MemberService";
pub const SERVICE_ACCOUNTS: &str = "tenantry.auth.v1.ServiceAccountService";
pub const IDENTITY_PROVIDERS: &str = "tenantry.auth.v1.IdentityProviderService";
pub const KEYS: &str = "tenantry.auth.v1.KeyService";
pub const SERVICES: [&str; 5] = [
    SESSIONS,
    MEMBERS,
    SERVICE_ACCOUNTS,
    IDENTITY_PROVIDERS,
    KEYS,
];

pub fn policy() -> RpcPolicy {
    let mut p = RpcPolicy::new();
    let role = Access::Role;
    // Each of these carries its own credential (password, refresh token, invitation, code).
    for method in [
        "SignUp",
        "Login",
        "Refresh",
        "Logout",
        "AcceptInvitation",
        "BeginOidcLogin",
        "CompleteOidcLogin",
    ] {
        p.declare(SESSIONS, method, Access::Public);
    }
    p.declare(MEMBERS, "ListMembers", role(Role::Viewer))
        .declare(MEMBERS, "AddMember", role(Role::PlatformAdmin))
        .declare(MEMBERS, "ChangeRole", role(Role::Owner))
        .declare(MEMBERS, "RemoveMember", role(Role::Owner))
        .declare(MEMBERS, "CreateInvitation", role(Role::Owner))
        .declare(MEMBERS, "ListInvitations", role(Role::Owner))
        .declare(MEMBERS, "RevokeInvitation", role(Role::Owner))
        .declare(SERVICE_ACCOUNTS, "CreateServiceAccount", role(Role::Owner))
        .declare(SERVICE_ACCOUNTS, "ListServiceAccounts", role(Role::Member))
        .declare(SERVICE_ACCOUNTS, "CreateApiKey", role(Role::Owner))
        .declare(SERVICE_ACCOUNTS, "ListApiKeys", role(Role::Member))
        .declare(SERVICE_ACCOUNTS, "RevokeApiKey", role(Role::Owner))
        .declare(
            IDENTITY_PROVIDERS,
            "ConfigureOidcProvider",
            role(Role::Owner),
        )
        .declare(IDENTITY_PROVIDERS, "ListOidcProviders", role(Role::Member))
        .declare(IDENTITY_PROVIDERS, "RemoveOidcProvider", role(Role::Owner))
        .declare(KEYS, "RotateSigningKey", role(Role::PlatformAdmin))
        .declare(KEYS, "ListSigningKeys", role(Role::PlatformAdmin))
        .declare(KEYS, "GrantPlatformAdmin", role(Role::PlatformAdmin));
    p
}
