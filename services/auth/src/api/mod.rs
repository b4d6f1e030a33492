//! The gRPC API of the auth service, one file per service:
//! [`session`] (public: sign-up, login, refresh, federation), [`members`], [`service_accounts`],
//! [`identity_providers`] and [`keys`]; [`policy`] declares each RPC's role.
//!
//! Tenant-scoped calls act on the tenant of the caller's token, never one named in the body
//! (only platform admins name tenants). Reads come from the aggregates themselves: a team,
//! its service accounts and providers are small, cached, and always current.

pub mod convert;
pub mod identity_providers;
pub mod keys;
pub mod members;
pub mod policy;
pub mod service_accounts;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tenantry_eventstore::{Aggregate, AggregateAddress, CommandMeta, PLATFORM_TENANT, Repository};
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::{ApiError, Clock, Role};
use tenantry_proto::auth::v1 as api;
use uuid::Uuid;

use crate::crypto::random;
use crate::crypto::seal::Sealer;
use crate::domain::credential::{Credential, credential_id};
use crate::domain::identity_providers::IdentityProviders;
use crate::domain::service_accounts::ServiceAccounts;
use crate::domain::session::{Binding, Session, SessionCommand};
use crate::domain::team::{MAX_MEMBERS, Team};
use crate::domain::user::User;
use crate::oidc::client::OidcClient;
use crate::projection::memberships_of;
use crate::throttle::Throttles;
use crate::tokens::{Issuer, KeyStore};

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AuthApi {
    pub(crate) users: Repository<User>,
    pub(crate) credentials: Repository<Credential>,
    pub(crate) sessions: Repository<Session>,
    pub(crate) teams: Repository<Team>,
    pub(crate) accounts: Repository<ServiceAccounts>,
    pub(crate) providers: Repository<IdentityProviders>,
    pub(crate) pool: PgPool,
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) oidc: Arc<OidcClient>,
    pub(crate) throttle: Arc<Throttles>,
    /// Whose `X-Forwarded-For` names the client, for the throttles and the audit trail.
    pub(crate) trusted_proxies: Arc<tenantry_kit::client_addr::TrustedProxies>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) session_ttl: Duration,
    /// `iss` of local users' identities (our own issuer).
    pub(crate) local_issuer: String,
    /// Each tenant's plan limits from billing: its seats.
    pub(crate) plans: Arc<PlanDirectory>,
}

/// A user: platform-level (identities span tenants), keyed by its id.
pub fn user_address(id: Uuid) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<User>(
        PLATFORM_TENANT,
        id.to_string(),
    )?)
}

/// A local credential: platform-level, keyed by the id derived from its e-mail.
pub fn credential_address(email: &str) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<Credential>(
        PLATFORM_TENANT,
        credential_id(email).to_string(),
    )?)
}

/// A session (refresh-token family): platform-level, keyed by its id.
pub fn session_address(id: Uuid) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<Session>(
        PLATFORM_TENANT,
        id.to_string(),
    )?)
}

/// The platform's own service accounts (ADR 0011): one aggregate, in the platform tenant.
pub fn platform_accounts_address() -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<ServiceAccounts>(
        PLATFORM_TENANT,
        PLATFORM_TENANT,
    )?)
}

/// The address of a per-tenant aggregate `A` (team, service accounts, identity providers):
/// one per tenant, in that tenant, with the tenant's id.
pub fn tenant_address<A: Aggregate>(tenant_id: Uuid) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<A>(
        tenant_id.to_string(),
        tenant_id.to_string(),
    )?)
}

/// A refresh token: `rt_<session id>_<secret>`. The session id finds the family; the whole
/// token's digest is what the family holds.
pub struct RefreshToken {
    pub session_id: Uuid,
    pub digest: Vec<u8>,
}

impl RefreshToken {
    /// A fresh token of `session_id` and its digest.
    pub fn issue(session_id: Uuid) -> (String, Vec<u8>) {
        let token = format!("rt_{}_{}", session_id.simple(), random::secret());
        let digest = random::digest(&token);
        (token, digest)
    }

    pub fn parse(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::Unauthenticated("invalid refresh token".into());
        if token.len() > 200 {
            return Err(bad());
        }
        let rest = token.strip_prefix("rt_").ok_or_else(bad)?;
        let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
        if secret.is_empty() {
            return Err(bad());
        }
        let session_id = Uuid::try_parse(id).map_err(|_| bad())?;
        Ok(Self {
            session_id,
            digest: random::digest(token),
        })
    }
}

impl AuthApi {
    /// How many members `tenant`'s team may have: its plan's seats, or [`MAX_MEMBERS`] when
    /// the plan sets none (or billing has not set a plan yet).
    pub(crate) fn max_members(&self, tenant: Uuid) -> usize {
        self.plans.cap(tenant, |p| p.seats, MAX_MEMBERS)
    }

    /// Metadata of a command with no token behind it (sign-up, login, refresh): the actor is
    /// the user it concerns.
    pub(crate) fn public_meta(&self, actor: &str) -> CommandMeta {
        let id = Uuid::now_v7().to_string();
        CommandMeta {
            command_id: id.clone(),
            actor: actor.to_owned(),
            correlation_id: id,
            occurred_at: self.clock.now(),
            traceparent: tenantry_kit::telemetry::current_traceparent(),
            fingerprint: None,
        }
    }

    /// The role `user_id` may act as in `tenant_id`: their membership, or platform admin.
    pub(crate) async fn role_in(
        &self,
        user: &User,
        user_id: Uuid,
        tenant_id: Uuid,
    ) -> Result<Role, ApiError> {
        let (team, _) = self.teams.load(&tenant_address::<Team>(tenant_id)?).await?;
        match team.members.get(&user_id) {
            Some(m) => Ok(m.role),
            None if user.platform_admin => Ok(Role::PlatformAdmin),
            None => Err(ApiError::PermissionDenied(format!(
                "not a member of tenant {tenant_id}"
            ))),
        }
    }

    /// Decides which tenant and role an access token is for; `None` when the user must pick.
    /// A session bound to a tenant (opened through its identity provider) gets that tenant
    /// or nothing: no other tenant, no platform-admin token.
    pub(crate) async fn access_for(
        &self,
        user: &User,
        user_id: Uuid,
        requested: Option<Uuid>,
        memberships: &[(Uuid, Role)],
        binding: Binding,
    ) -> Result<Option<(Option<Uuid>, Role)>, ApiError> {
        match binding {
            Binding::Free => {}
            Binding::Tenant(home) => {
                if requested.is_some_and(|t| t != home) {
                    return Err(ApiError::PermissionDenied(format!(
                        "this session was opened through the identity provider of tenant \
                         {home} and acts in that tenant only; sign in through the other \
                         tenant's own provider"
                    )));
                }
                let (team, _) = self.teams.load(&tenant_address::<Team>(home)?).await?;
                let role = team.members.get(&user_id).map(|m| m.role).ok_or_else(|| {
                    ApiError::PermissionDenied(format!("not a member of tenant {home}"))
                })?;
                return Ok(Some((Some(home), role)));
            }
            Binding::Unknown => {
                return Err(ApiError::Unauthenticated(
                    "this federated session predates tenant-bound sessions; sign in again".into(),
                ));
            }
        }
        match requested {
            Some(t) => Ok(Some((Some(t), self.role_in(user, user_id, t).await?))),
            None if user.platform_admin => Ok(Some((None, Role::PlatformAdmin))),
            None => match memberships {
                [(only, _)] => Ok(Some((
                    Some(*only),
                    self.role_in(user, user_id, *only).await?,
                ))),
                _ => Ok(None),
            },
        }
    }

    /// Starts a session for `user_id` and answers with its tokens. `bound_tenant` is the
    /// tenant whose identity provider signed the user in (federated logins).
    pub(crate) async fn open_session(
        &self,
        user_id: Uuid,
        tenant: Option<Uuid>,
        method: &str,
        bound_tenant: Option<Uuid>,
    ) -> Result<api::SessionResponse, ApiError> {
        let (user, _) = self.users.load(&user_address(user_id)?).await?;
        let binding = bound_tenant.map_or(Binding::Free, Binding::Tenant);
        let memberships = visible(binding, memberships_of(&self.pool, user_id).await?);
        let access = self
            .access_for(&user, user_id, tenant, &memberships, binding)
            .await?;
        let session_id = Uuid::now_v7();
        let (refresh, digest) = RefreshToken::issue(session_id);
        let expires_at =
            self.clock.now() + chrono::Duration::from_std(self.session_ttl).unwrap_or_default();
        self.sessions
            .execute_new(
                &session_address(session_id)?,
                &SessionCommand::Start {
                    id: session_id,
                    user_id,
                    digest,
                    expires_at,
                    method: method.to_owned(),
                    bound_tenant,
                },
                &self.public_meta(&format!("user:{user_id}")),
            )
            .await?;
        let platform_admin = user.platform_admin && binding == Binding::Free;
        self.respond(
            user_id,
            platform_admin,
            access,
            refresh,
            expires_at,
            &memberships,
        )
    }

    pub(crate) fn respond(
        &self,
        user_id: Uuid,
        platform_admin: bool,
        access: Option<(Option<Uuid>, Role)>,
        refresh: String,
        refresh_expires_at: chrono::DateTime<chrono::Utc>,
        memberships: &[(Uuid, Role)],
    ) -> Result<api::SessionResponse, ApiError> {
        let mut response = api::SessionResponse {
            user_id: user_id.to_string(),
            refresh_token: refresh,
            refresh_token_expires_at: Some(tenantry_eventstore::time::to_proto(refresh_expires_at)),
            platform_admin,
            memberships: memberships
                .iter()
                .map(|(t, r)| api::Membership {
                    tenant_id: t.to_string(),
                    role: convert::role_to_proto(*r) as i32,
                })
                .collect(),
            ..Default::default()
        };
        if let Some((tenant, role)) = access {
            let token = self
                .issuer
                .access_token(&user_id.to_string(), tenant, role)?;
            response.access_token = token.token;
            response.access_token_expires_at =
                Some(tenantry_eventstore::time::to_proto(token.expires_at));
            response.tenant_id = tenant.map(|t| t.to_string()).unwrap_or_default();
            response.role = convert::role_to_proto(role) as i32;
        }
        Ok(response)
    }
}

/// The memberships a session may show: a session bound to a tenant shows that tenant's only
/// (the other tenants a user belongs to are none of its provider's business).
pub(crate) fn visible(binding: Binding, memberships: Vec<(Uuid, Role)>) -> Vec<(Uuid, Role)> {
    match binding {
        Binding::Free => memberships,
        Binding::Tenant(home) => memberships
            .into_iter()
            .filter(|(t, _)| *t == home)
            .collect(),
        Binding::Unknown => Vec::new(),
    }
}

impl AuthApi {
    /// The client address of a request, for throttling and the audit trail: the TCP peer, or
    /// the client a trusted proxy names.
    pub(crate) fn addr_of<T>(&self, request: &tonic::Request<T>) -> Option<IpAddr> {
        tenantry_kit::client_addr::client_addr(request, &self.trusted_proxies)
    }

    /// Counts an attempt against `throttle` (`setting` names its limit); refused beyond it.
    pub(crate) async fn admit(
        &self,
        throttle: &crate::throttle::AddressThrottle,
        setting: &str,
        what: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        if throttle.admit(addr).await {
            return Ok(());
        }
        Err(ApiError::ResourceExhausted(format!(
            "{setting}: at most {} {what} a minute from one address; wait a minute",
            throttle.limit()
        )))
    }
}
