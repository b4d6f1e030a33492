//! A tenant's OIDC identity providers, one aggregate per tenant. Settings were validated
//! before the command (the issuer's discovery document was fetched), and the client secret
//! arrives sealed.

use std::collections::BTreeMap;

use tenantry_eventstore::{Aggregate, EventMeta};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::DomainError;
use super::events::IdentityProviderEvent;

pub const MAX_PROVIDERS: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityProviders {
    pub providers: BTreeMap<Uuid, pb::OidcProviderConfigured>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum IdentityProviderCommand {
    /// Creates or replaces `config.provider_id`; an empty sealed secret keeps the old one.
    Configure(pb::OidcProviderConfigured),
    Remove {
        id: Uuid,
    },
}

impl Aggregate for IdentityProviders {
    type Command = IdentityProviderCommand;
    type Event = IdentityProviderEvent;
    type Error = DomainError;

    fn decide(
        &self,
        command: &IdentityProviderCommand,
    ) -> Result<Vec<IdentityProviderEvent>, DomainError> {
        match command {
            IdentityProviderCommand::Configure(config) => {
                let id = Uuid::try_parse(&config.provider_id)
                    .map_err(|_| DomainError::invalid("provider_id", "must be a UUID"))?;
                let mut config = config.clone();
                match self.providers.get(&id) {
                    Some(old) if config.client_secret_sealed.is_empty() => {
                        config
                            .client_secret_sealed
                            .clone_from(&old.client_secret_sealed);
                    }
                    Some(_) => {}
                    None if config.client_secret_sealed.is_empty() => {
                        return Err(DomainError::invalid("client_secret", "is required"));
                    }
                    None if self.providers.len() >= MAX_PROVIDERS => {
                        return Err(DomainError::Precondition(format!(
                            "a tenant has at most {MAX_PROVIDERS} identity providers"
                        )));
                    }
                    None => {}
                }
                Ok(vec![IdentityProviderEvent::Configured(config)])
            }
            IdentityProviderCommand::Remove { id } => {
                if !self.providers.contains_key(id) {
                    return Err(DomainError::NotFound(format!("identity provider {id}")));
                }
                Ok(vec![IdentityProviderEvent::Removed(
                    pb::OidcProviderRemoved {
                        provider_id: id.to_string(),
                    },
                )])
            }
        }
    }

    fn evolve(&mut self, event: &IdentityProviderEvent, _meta: &EventMeta) {
        match event {
            IdentityProviderEvent::Configured(c) => {
                if let Ok(id) = Uuid::try_parse(&c.provider_id) {
                    self.providers.insert(id, c.clone());
                }
            }
            IdentityProviderEvent::Removed(r) => {
                if let Ok(id) = Uuid::try_parse(&r.provider_id) {
                    self.providers.remove(&id);
                }
            }
        }
    }
}
