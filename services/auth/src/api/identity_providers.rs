//! `IdentityProviderService`: the token's tenant's OIDC providers.

use crate::domain::identity_providers::IdentityProviders;
use std::collections::HashMap;

use tenantry_kit::{ApiError, TenantContext, command, validate};
use tenantry_proto::auth::v1::{
    self as api, identity_provider_service_server::IdentityProviderService,
};
use tenantry_proto::events::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{AuthApi, tenant_address};
use crate::domain::identity_providers::IdentityProviderCommand;
use crate::domain::tenant_role;
use crate::oidc::claims::{default_role_mappings, preset};
use crate::oidc::flow::SECRET_PURPOSE;

const MAX_REDIRECT_URIS: usize = 10;

/// An absolute `https` URL, or `http` on loopback (development, tests); no fragment.
fn check_url(field: &str, value: &str) -> Result<(), ApiError> {
    validate::text(field, value, 2000)?;
    let url = reqwest::Url::parse(value)
        .map_err(|e| ApiError::invalid(field, format!("must be an absolute URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(ApiError::invalid(
            field,
            "must use https (http only on loopback)",
        ));
    }
    if url.fragment().is_some() {
        return Err(ApiError::invalid(field, "must not have a fragment"));
    }
    Ok(())
}

/// The request's settings, validated, with the preset's defaults filled in.
fn settings(
    r: &api::ConfigureOidcProviderRequest,
    id: Uuid,
) -> Result<pb::OidcProviderConfigured, ApiError> {
    let preset_name = if r.preset.is_empty() {
        "generic"
    } else {
        r.preset.as_str()
    };
    let preset = preset(preset_name)
        .ok_or_else(|| ApiError::invalid("preset", "must be one of keycloak, auth0, generic"))?;
    check_url("issuer", &r.issuer)?;
    if r.issuer.contains('?') {
        return Err(ApiError::invalid("issuer", "must not have a query"));
    }
    validate::text("client_id", &r.client_id, 200)?;
    validate::optional_text("client_secret", &r.client_secret, 500)?;
    let scopes: Vec<String> = if r.scopes.is_empty() {
        preset.scopes.iter().map(|s| (*s).to_owned()).collect()
    } else {
        r.scopes.clone()
    };
    for (i, s) in scopes.iter().enumerate() {
        validate::text(&format!("scopes[{i}]"), s, 100)?;
        if s.contains(char::is_whitespace) {
            return Err(ApiError::invalid(
                format!("scopes[{i}]"),
                "must be one scope",
            ));
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ApiError::invalid("scopes", "must include openid"));
    }
    let given = r.claims.clone().unwrap_or_default();
    let pick = |given: &str, default: &str| {
        if given.is_empty() {
            default.replace("{client_id}", &r.client_id)
        } else {
            given.to_owned()
        }
    };
    let claims = pb::ClaimMappings {
        tenant_id: pick(&given.tenant_id, preset.tenant_id),
        roles: pick(&given.roles, preset.roles),
        email: pick(&given.email, preset.email),
    };
    for (field, path) in [
        ("claims.tenant_id", &claims.tenant_id),
        ("claims.roles", &claims.roles),
        ("claims.email", &claims.email),
    ] {
        validate::optional_text(field, path, 200)?;
    }
    if claims.roles.is_empty() {
        return Err(ApiError::invalid("claims.roles", "is required"));
    }
    let role_mappings: HashMap<String, String> = if r.role_mappings.is_empty() {
        default_role_mappings().into_iter().collect()
    } else {
        r.role_mappings.clone()
    };
    for (from, to) in &role_mappings {
        let field = format!("role_mappings[{from}]");
        validate::text(&field, from, 100)?;
        tenant_role("role_mappings", to).map_err(|_| {
            ApiError::invalid(
                field,
                format!("unknown role {to:?}: expected viewer, member or owner"),
            )
        })?;
    }
    if r.redirect_uris.is_empty() || r.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(ApiError::invalid(
            "redirect_uris",
            format!("must list 1 to {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    for (i, uri) in r.redirect_uris.iter().enumerate() {
        check_url(&format!("redirect_uris[{i}]"), uri)?;
    }
    Ok(pb::OidcProviderConfigured {
        provider_id: id.to_string(),
        preset: preset_name.to_owned(),
        issuer: r.issuer.clone(),
        client_id: r.client_id.clone(),
        client_secret_sealed: vec![],
        scopes,
        claims: Some(claims),
        role_mappings,
        redirect_uris: r.redirect_uris.clone(),
    })
}

/// The public view of a provider (never the secret).
fn view(c: &pb::OidcProviderConfigured) -> api::OidcProvider {
    let claims = c.claims.clone().unwrap_or_default();
    api::OidcProvider {
        provider_id: c.provider_id.clone(),
        preset: c.preset.clone(),
        issuer: c.issuer.clone(),
        client_id: c.client_id.clone(),
        scopes: c.scopes.clone(),
        claims: Some(api::ClaimMappings {
            tenant_id: claims.tenant_id,
            roles: claims.roles,
            email: claims.email,
        }),
        role_mappings: c.role_mappings.clone(),
        redirect_uris: c.redirect_uris.clone(),
    }
}

#[tonic::async_trait]
impl IdentityProviderService for AuthApi {
    async fn configure_oidc_provider(
        &self,
        request: Request<api::ConfigureOidcProviderRequest>,
    ) -> Result<Response<api::ConfigureOidcProviderResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let r = request.get_ref();
        let id = if r.provider_id.is_empty() {
            Uuid::now_v7()
        } else {
            validate::uuid("provider_id", &r.provider_id)?
        };
        let mut config = settings(r, id)?;
        // A provider we cannot discover now would fail every login: refuse it up front.
        self.oidc.discover(&config.issuer).await?;
        if !r.client_secret.is_empty() {
            config.client_secret_sealed =
                self.sealer.seal(SECRET_PURPOSE, r.client_secret.as_bytes());
        }
        let meta = command::meta(&request, &caller, &self.clock)?;
        let executed = self
            .providers
            .execute(
                &tenant_address::<IdentityProviders>(tenant_id)?,
                &IdentityProviderCommand::Configure(config.clone()),
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ConfigureOidcProviderResponse {
            provider: Some(view(&config)),
            position: executed.position,
        }))
    }

    async fn list_oidc_providers(
        &self,
        request: Request<api::ListOidcProvidersRequest>,
    ) -> Result<Response<api::ListOidcProvidersResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let (providers, _) = self
            .providers
            .load(&tenant_address::<IdentityProviders>(tenant_id)?)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ListOidcProvidersResponse {
            providers: providers.providers.values().map(view).collect(),
        }))
    }

    async fn remove_oidc_provider(
        &self,
        request: Request<api::RemoveOidcProviderRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant_id = caller.tenant()?;
        let id = validate::uuid("provider_id", &request.get_ref().provider_id)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let executed = self
            .providers
            .execute(
                &tenant_address::<IdentityProviders>(tenant_id)?,
                &IdentityProviderCommand::Remove { id },
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }
}
