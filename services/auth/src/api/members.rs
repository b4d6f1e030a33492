//! `MemberService`: a tenant's members and invitations (the token's tenant).

use chrono::Duration;
use tenantry_kit::{ApiError, TenantContext, command, validate};
use tenantry_proto::auth::v1::{self as api, member_service_server::MemberService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::convert::{role_from_proto, role_to_proto};
use super::session::invitation_token;
use super::{AuthApi, tenant_address, user_address};
use crate::crypto::random;
use crate::domain::team::{Team, TeamCommand};

const DEFAULT_INVITATION_HOURS: u32 = 24 * 7;
const MAX_INVITATION_HOURS: u32 = 24 * 30;

impl AuthApi {
    async fn team_command<T: prost::Message>(
        &self,
        request: &Request<T>,
        tenant_id: Uuid,
        command: TeamCommand,
    ) -> Result<tenantry_eventstore::Executed<Team>, ApiError> {
        let caller = TenantContext::from_request(request)?;
        caller.authorize_tenant(tenant_id)?;
        let meta = command::meta(request, &caller, &self.clock)?;
        Ok(self
            .teams
            .execute(&tenant_address::<Team>(tenant_id)?, &command, &meta)
            .await?)
    }

    async fn caller_team<T>(&self, request: &Request<T>) -> Result<(Uuid, Team), ApiError> {
        let caller = TenantContext::from_request(request)?;
        let tenant_id = caller.tenant()?;
        let (team, _) = self
            .teams
            .load(&tenant_address::<Team>(tenant_id)?)
            .await
            .map_err(ApiError::from)?;
        Ok((tenant_id, team))
    }
}

#[tonic::async_trait]
impl MemberService for AuthApi {
    async fn list_members(
        &self,
        request: Request<api::ListMembersRequest>,
    ) -> Result<Response<api::ListMembersResponse>, Status> {
        let (_, team) = self.caller_team(&request).await?;
        let members = team
            .members
            .iter()
            .map(|(id, m)| api::Member {
                user_id: id.to_string(),
                email: m.email.clone(),
                role: role_to_proto(m.role) as i32,
            })
            .collect();
        Ok(Response::new(api::ListMembersResponse { members }))
    }

    async fn add_member(
        &self,
        request: Request<api::AddMemberRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let r = request.get_ref();
        let tenant_id = validate::uuid("tenant_id", &r.tenant_id)?;
        let user_id = validate::uuid("user_id", &r.user_id)?;
        let role = role_from_proto("role", r.role)?;
        let (user, _) = self
            .users
            .load(&user_address(user_id)?)
            .await
            .map_err(ApiError::from)?;
        if user.id.is_none() {
            return Err(ApiError::NotFound(format!("user {user_id}")).into());
        }
        let executed = self
            .team_command(
                &request,
                tenant_id,
                TeamCommand::AddMember {
                    user_id,
                    email: user.email,
                    role,
                    via: "admin".into(),
                    max_members: self.max_members(tenant_id),
                },
            )
            .await?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }

    async fn change_role(
        &self,
        request: Request<api::ChangeRoleRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let r = request.get_ref();
        let user_id = validate::uuid("user_id", &r.user_id)?;
        let role = role_from_proto("role", r.role)?;
        let executed = self
            .team_command(
                &request,
                tenant_id,
                TeamCommand::ChangeRole { user_id, role },
            )
            .await?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }

    async fn remove_member(
        &self,
        request: Request<api::RemoveMemberRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let user_id = validate::uuid("user_id", &request.get_ref().user_id)?;
        let executed = self
            .team_command(&request, tenant_id, TeamCommand::RemoveMember { user_id })
            .await?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<api::CreateInvitationRequest>,
    ) -> Result<Response<api::CreateInvitationResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let r = request.get_ref();
        validate::email("email", &r.email)?;
        let role = role_from_proto("role", r.role)?;
        let hours = match r.ttl_hours {
            0 => DEFAULT_INVITATION_HOURS,
            h if h > MAX_INVITATION_HOURS => {
                return Err(ApiError::invalid(
                    "ttl_hours",
                    format!("must be at most {MAX_INVITATION_HOURS}"),
                )
                .into());
            }
            h => h,
        };
        let id = Uuid::now_v7();
        let token = invitation_token(tenant_id, id);
        let expires_at = self.clock.now() + Duration::hours(i64::from(hours));
        let executed = self
            .team_command(
                &request,
                tenant_id,
                TeamCommand::Invite {
                    id,
                    email: r.email.clone(),
                    role,
                    digest: random::digest(&token),
                    expires_at,
                },
            )
            .await?;
        Ok(Response::new(api::CreateInvitationResponse {
            invitation_id: id.to_string(),
            token,
            expires_at: Some(tenantry_eventstore::time::to_proto(expires_at)),
            position: executed.position,
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<api::ListInvitationsRequest>,
    ) -> Result<Response<api::ListInvitationsResponse>, Status> {
        let (_, team) = self.caller_team(&request).await?;
        let invitations = team
            .invitations
            .iter()
            .map(|(id, i)| api::Invitation {
                invitation_id: id.to_string(),
                email: i.email.clone(),
                role: role_to_proto(i.role) as i32,
                expires_at: Some(tenantry_eventstore::time::to_proto(i.expires_at)),
            })
            .collect();
        Ok(Response::new(api::ListInvitationsResponse { invitations }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<api::RevokeInvitationRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let id = validate::uuid("invitation_id", &request.get_ref().invitation_id)?;
        let executed = self
            .team_command(&request, tenant_id, TeamCommand::RevokeInvitation { id })
            .await?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }
}
