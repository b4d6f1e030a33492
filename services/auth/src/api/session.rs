//! `SessionService`: sign-up, login, refresh, logout, invitations and federated login. Every
//! RPC here is public: the request carries its own credential.

use crate::domain::identity_providers::IdentityProviders;
use crate::domain::team::Team;
use tenantry_kit::{ApiError, validate};
use tenantry_proto::auth::v1::{self as api, session_service_server::SessionService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    AuthApi, RefreshToken, credential_address, session_address, tenant_address, user_address,
    visible,
};
use crate::crypto::{password, random};
use crate::domain::credential::CredentialCommand;
use crate::domain::session::{Binding, FEDERATED_PREFIX, REUSE_DETECTED, SessionCommand};
use crate::domain::team::TeamCommand;
use crate::domain::user::{UserCommand, federated_id};
use crate::oidc::flow;
use crate::projection::memberships_of;

/// The one answer to every failed login: which part was wrong is not disclosed.
const BAD_LOGIN: &str = "invalid e-mail or password";

fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, ApiError> {
    if value.is_empty() {
        Ok(None)
    } else {
        validate::uuid(field, value).map(Some)
    }
}

impl AuthApi {
    /// Rotates the session's refresh token and issues an access token for `tenant` (or the
    /// session's last tenant).
    pub(crate) async fn refresh(
        &self,
        presented: &str,
        tenant: Option<Uuid>,
    ) -> Result<api::SessionResponse, ApiError> {
        let token = RefreshToken::parse(presented)?;
        let address = session_address(token.session_id)?;
        let now = self.clock.now();
        let (session, _) = self.sessions.load(&address).await?;
        let user_id = session
            .user_id
            .ok_or_else(|| ApiError::Unauthenticated("invalid refresh token".into()))?;
        // Authorise first: a refused tenant must not cost the client its refresh token.
        let (user, _) = self.users.load(&user_address(user_id)?).await?;
        let binding = session.binding();
        let target = tenant.or(session.tenant_id);
        // The membership list is read only when there is a tenant to pick.
        let memberships = match target {
            None => visible(binding, memberships_of(&self.pool, user_id).await?),
            Some(_) => Vec::new(),
        };
        let access = if session.accepts(&token.digest, now) {
            self.access_for(&user, user_id, target, &memberships, binding)
                .await?
        } else {
            None
        };
        let (next, next_digest) = RefreshToken::issue(token.session_id);
        let executed = self
            .sessions
            .execute(
                &address,
                &SessionCommand::Rotate {
                    presented: token.digest,
                    next: next_digest,
                    tenant_id: access.and_then(|(t, _)| t),
                    now,
                },
                &self.public_meta(&format!("user:{user_id}")),
            )
            .await?;
        if executed.state.revoked.as_deref() == Some(REUSE_DETECTED) {
            tracing::warn!(session = %token.session_id, %user_id, "refresh token reused: session revoked");
            return Err(ApiError::Unauthenticated(
                "refresh token already used: the session is revoked, log in again".into(),
            ));
        }
        let expires_at = session.expires_at.unwrap_or(now);
        let platform_admin = user.platform_admin && binding == Binding::Free;
        self.respond(
            user_id,
            platform_admin,
            access,
            next,
            expires_at,
            &memberships,
        )
    }
}

#[tonic::async_trait]
impl SessionService for AuthApi {
    async fn sign_up(
        &self,
        request: Request<api::SignUpRequest>,
    ) -> Result<Response<api::SessionResponse>, Status> {
        let r = request.get_ref();
        validate::email("email", &r.email)?;
        password::check_policy(&r.password, &r.email)?;
        // Before the hash: an argon2 computation and two appends per account is what a flood
        // of sign-ups would cost.
        self.admit(
            &self.throttle.signups,
            "auth-signups-per-addr",
            "sign-ups",
            self.addr_of(&request),
        )
        .await?;
        let user_id = Uuid::now_v7();
        let sealed = password::seal_hash(
            &self.sealer,
            user_id,
            &password::hash(r.password.clone()).await?,
        );
        // The user first: a taken e-mail then leaves an unreachable user, never a
        // credential pointing nowhere.
        let meta = self.public_meta(&format!("user:{user_id}"));
        self.users
            .execute_new(
                &user_address(user_id)?,
                &UserCommand::Register {
                    id: user_id,
                    issuer: self.local_issuer.clone(),
                    subject: user_id.to_string(),
                    email: r.email.clone(),
                },
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        self.credentials
            .execute_new(
                &credential_address(&r.email)?,
                &CredentialCommand::Create {
                    user_id,
                    email: r.email.clone(),
                    password_hash_sealed: sealed,
                },
                &self.public_meta(&format!("user:{user_id}")),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(
            self.open_session(user_id, None, "signup", None).await?,
        ))
    }

    async fn login(
        &self,
        request: Request<api::LoginRequest>,
    ) -> Result<Response<api::SessionResponse>, Status> {
        let addr = self.addr_of(&request);
        let r = request.get_ref();
        validate::email("email", &r.email)?;
        validate::text("password", &r.password, password::MAX_LENGTH)?;
        let tenant = optional_uuid("tenant_id", &r.tenant_id)?;
        if !self.throttle.login_failures.allows(addr).await {
            return Err(ApiError::ResourceExhausted(format!(
                "auth-login-failures-per-addr: at most {} failed logins a minute from one \
                 address; wait a minute",
                self.throttle.login_failures.limit()
            ))
            .into());
        }
        let client_addr = addr.map(|a| a.to_string()).unwrap_or_default();
        let address = credential_address(&r.email)?;
        let (credential, _) = self
            .credentials
            .load(&address)
            .await
            .map_err(ApiError::from)?;
        let now = self.clock.now();
        // Unknown and locked accounts are checked against a decoy: same work, same answer.
        let hash = match credential.user_id {
            Some(user_id) if !credential.is_locked(now) => {
                password::open_hash(&self.sealer, user_id, &credential.password)?
            }
            _ => None,
        };
        let ok = password::verify(r.password.clone(), hash).await;
        let (Some(user_id), true) = (credential.user_id, ok) else {
            self.throttle.login_failures.record(addr).await;
            // A locked account's lockout is on the log already: further attempts append
            // nothing, so guessing at a locked account cannot grow the log.
            if let Some(user_id) = credential.user_id
                && !credential.is_locked(now)
            {
                self.credentials
                    .execute(
                        &address,
                        &CredentialCommand::RecordFailure { client_addr, now },
                        &self.public_meta(&format!("user:{user_id}")),
                    )
                    .await
                    .map_err(ApiError::from)?;
            }
            return Err(ApiError::Unauthenticated(BAD_LOGIN.into()).into());
        };
        self.credentials
            .execute(
                &address,
                &CredentialCommand::RecordSuccess { client_addr },
                &self.public_meta(&format!("user:{user_id}")),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(
            self.open_session(user_id, tenant, "password", None).await?,
        ))
    }

    async fn refresh(
        &self,
        request: Request<api::RefreshRequest>,
    ) -> Result<Response<api::SessionResponse>, Status> {
        let r = request.get_ref();
        let tenant = optional_uuid("tenant_id", &r.tenant_id)?;
        Ok(Response::new(
            AuthApi::refresh(self, &r.refresh_token, tenant).await?,
        ))
    }

    async fn logout(
        &self,
        request: Request<api::LogoutRequest>,
    ) -> Result<Response<api::LogoutResponse>, Status> {
        let token = RefreshToken::parse(&request.get_ref().refresh_token)?;
        self.sessions
            .execute(
                &session_address(token.session_id)?,
                &SessionCommand::Revoke {
                    presented: token.digest,
                },
                &self.public_meta("session"),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::LogoutResponse {}))
    }

    async fn accept_invitation(
        &self,
        request: Request<api::AcceptInvitationRequest>,
    ) -> Result<Response<api::SessionResponse>, Status> {
        let r = request.get_ref();
        let (tenant_id, invitation_id) = parse_invitation(&r.invitation_token)?;
        let session = RefreshToken::parse(&r.refresh_token)?;
        let (state, _) = self
            .sessions
            .load(&session_address(session.session_id)?)
            .await
            .map_err(ApiError::from)?;
        let user_id = match state.user_id {
            Some(u) if state.accepts(&session.digest, self.clock.now()) => u,
            _ => return Err(ApiError::Unauthenticated("invalid refresh token".into()).into()),
        };
        // Checked before the invitation is spent: a session bound to another tenant cannot
        // join this one (the refresh below would refuse it, with the membership already made).
        match state.binding() {
            Binding::Free => {}
            Binding::Tenant(home) if home == tenant_id => {}
            Binding::Tenant(home) => {
                return Err(ApiError::PermissionDenied(format!(
                    "this session was opened through the identity provider of tenant {home}; \
                     accept the invitation from a session of your own account"
                ))
                .into());
            }
            Binding::Unknown => {
                return Err(ApiError::Unauthenticated(
                    "this federated session predates tenant-bound sessions; sign in again".into(),
                )
                .into());
            }
        }
        let (user, _) = self
            .users
            .load(&user_address(user_id)?)
            .await
            .map_err(ApiError::from)?;
        self.teams
            .execute(
                &tenant_address::<Team>(tenant_id)?,
                &TeamCommand::Accept {
                    id: invitation_id,
                    presented: random::digest(&r.invitation_token),
                    user_id,
                    email: user.email.clone(),
                    now: self.clock.now(),
                    max_members: self.max_members(tenant_id),
                },
                &self.public_meta(&format!("user:{user_id}")),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(
            AuthApi::refresh(self, &r.refresh_token, Some(tenant_id)).await?,
        ))
    }

    async fn begin_oidc_login(
        &self,
        request: Request<api::BeginOidcLoginRequest>,
    ) -> Result<Response<api::BeginOidcLoginResponse>, Status> {
        let r = request.get_ref();
        let tenant_id = validate::uuid("tenant_id", &r.tenant_id)?;
        let provider_id = validate::uuid("provider_id", &r.provider_id)?;
        validate::text("redirect_uri", &r.redirect_uri, 2000)?;
        // Each one stores a pending login (and may fetch the provider's discovery document).
        self.admit(
            &self.throttle.oidc_logins,
            "auth-oidc-logins-per-addr",
            "federated logins begun",
            self.addr_of(&request),
        )
        .await?;
        let (providers, _) = self
            .providers
            .load(&tenant_address::<IdentityProviders>(tenant_id)?)
            .await
            .map_err(ApiError::from)?;
        let provider = providers
            .providers
            .get(&provider_id)
            .ok_or_else(|| ApiError::NotFound(format!("identity provider {provider_id}")))?;
        let begun = flow::begin(
            &self.pool,
            &self.oidc,
            tenant_id,
            provider,
            &r.redirect_uri,
            self.clock.now(),
        )
        .await?;
        Ok(Response::new(api::BeginOidcLoginResponse {
            authorization_url: begun.authorization_url,
            state: begun.state,
            expires_at: Some(tenantry_eventstore::time::to_proto(begun.expires_at)),
        }))
    }

    async fn complete_oidc_login(
        &self,
        request: Request<api::CompleteOidcLoginRequest>,
    ) -> Result<Response<api::SessionResponse>, Status> {
        let addr = self.addr_of(&request);
        let r = request.get_ref();
        validate::text("state", &r.state, 200)?;
        validate::text("code", &r.code, 2000)?;
        let now = self.clock.now();
        let pending = flow::take(&self.pool, &r.state, now).await?;
        let (providers, _) = self
            .providers
            .load(&tenant_address::<IdentityProviders>(pending.tenant_id)?)
            .await
            .map_err(ApiError::from)?;
        let provider = providers
            .providers
            .get(&pending.provider_id)
            .ok_or_else(|| ApiError::NotFound("identity provider (removed since)".into()))?;
        let identity =
            flow::complete(&self.oidc, &self.sealer, &pending, provider, &r.code, now).await?;
        let user_id = federated_id(&identity.issuer, &identity.subject);
        let actor = format!("user:{user_id}");
        self.users
            .execute(
                &user_address(user_id)?,
                &UserCommand::FederatedLogin {
                    id: user_id,
                    issuer: identity.issuer.clone(),
                    subject: identity.subject.clone(),
                    email: identity.email.clone(),
                    tenant_id: pending.tenant_id,
                    provider_id: pending.provider_id,
                    client_addr: addr.map(|a| a.to_string()).unwrap_or_default(),
                },
                &self.public_meta(&actor),
            )
            .await
            .map_err(ApiError::from)?;
        // Just in time: the first login makes the membership, with the mapped role; later
        // ones keep whatever role an owner has set since.
        self.teams
            .execute(
                &tenant_address::<Team>(pending.tenant_id)?,
                &TeamCommand::AddMember {
                    user_id,
                    email: identity.email.clone(),
                    role: identity.role,
                    via: format!("oidc:{}", pending.provider_id),
                    max_members: self.max_members(pending.tenant_id),
                },
                &self.public_meta(&actor),
            )
            .await
            .map_err(ApiError::from)?;
        let method = format!("{FEDERATED_PREFIX}{}", pending.provider_id);
        // The provider vouched for the user in this tenant only: so is the session.
        Ok(Response::new(
            self.open_session(
                user_id,
                Some(pending.tenant_id),
                &method,
                Some(pending.tenant_id),
            )
            .await?,
        ))
    }
}

/// An invitation token: `inv_<tenant>_<invitation>_<secret>`.
pub fn invitation_token(tenant_id: Uuid, invitation_id: Uuid) -> String {
    format!(
        "inv_{}_{}_{}",
        tenant_id.simple(),
        invitation_id.simple(),
        random::secret()
    )
}

fn parse_invitation(token: &str) -> Result<(Uuid, Uuid), ApiError> {
    let bad = || ApiError::Unauthenticated("invalid invitation".into());
    if token.len() > 200 {
        return Err(bad());
    }
    let mut parts = token.strip_prefix("inv_").ok_or_else(bad)?.splitn(3, '_');
    let tenant = parts
        .next()
        .and_then(|p| Uuid::try_parse(p).ok())
        .ok_or_else(bad)?;
    let invitation = parts
        .next()
        .and_then(|p| Uuid::try_parse(p).ok())
        .ok_or_else(bad)?;
    parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    Ok((tenant, invitation))
}
