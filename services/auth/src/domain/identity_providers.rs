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
                        return Err(DomainError::limit(
                            "max_identity_providers",
                            format!("a tenant has at most {MAX_PROVIDERS} identity providers"),
                        ));
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

#[cfg(test)]
mod tests {
    use tenantry_kit::gwt::Given;

    use super::*;

    fn tenant() -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
    }

    /// Providers `provider(1)`, `provider(2)`, …
    fn provider(n: u128) -> Uuid {
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0003_0000 + n)
    }

    fn given(events: impl IntoIterator<Item = IdentityProviderEvent>) -> Given<IdentityProviders> {
        tenantry_kit::gwt::given(events).of(tenant(), tenant())
    }

    /// Provider `n`'s settings, its client secret sealed as `secret`.
    fn config(n: u128, secret: &[u8]) -> pb::OidcProviderConfigured {
        pb::OidcProviderConfigured {
            provider_id: provider(n).to_string(),
            preset: "generic".into(),
            issuer: "https://idp.acme.com".into(),
            client_id: format!("client-{n}"),
            client_secret_sealed: secret.to_vec(),
            scopes: vec!["openid".into(), "email".into()],
            claims: None,
            role_mappings: [("admins".to_string(), "owner".to_string())].into(),
            redirect_uris: vec!["https://app.acme.com/callback".into()],
        }
    }

    fn configure(config: pb::OidcProviderConfigured) -> IdentityProviderCommand {
        IdentityProviderCommand::Configure(config)
    }

    fn configured(config: pb::OidcProviderConfigured) -> IdentityProviderEvent {
        IdentityProviderEvent::Configured(config)
    }

    #[test]
    fn given_nothing_when_a_provider_is_configured_then_configured() {
        let state = given([])
            .when(configure(config(1, b"sealed")))
            .then([configured(config(1, b"sealed"))]);
        assert_eq!(
            state.state().providers.get(&provider(1)),
            Some(&config(1, b"sealed"))
        );
    }

    #[test]
    fn given_nothing_when_configured_without_a_client_secret_then_invalid() {
        given([])
            .when(configure(config(1, b"")))
            .then_error(DomainError::invalid("client_secret", "is required"));
    }

    #[test]
    fn given_nothing_when_configured_under_an_id_that_is_no_uuid_then_invalid() {
        let mut bad = config(1, b"sealed");
        bad.provider_id = "okta".into();
        given([])
            .when(configure(bad))
            .then_error(DomainError::invalid("provider_id", "must be a UUID"));
    }

    #[test]
    fn given_a_provider_when_reconfigured_without_a_secret_then_the_old_secret_is_kept() {
        let mut changed = config(1, b"");
        changed.scopes.push("profile".into());
        let mut expected = changed.clone();
        expected.client_secret_sealed = b"sealed".to_vec();
        given([configured(config(1, b"sealed"))])
            .when(configure(changed))
            .then([configured(expected)]);
    }

    #[test]
    fn given_a_provider_when_reconfigured_with_a_secret_then_the_secret_is_replaced() {
        given([configured(config(1, b"sealed"))])
            .when(configure(config(1, b"rotated")))
            .then([configured(config(1, b"rotated"))]);
    }

    #[test]
    fn given_the_most_providers_when_another_is_added_then_refused_but_existing_ones_change() {
        let n = MAX_PROVIDERS as u128;
        let full = given((1..=n).map(|i| configured(config(i, b"sealed"))));
        full.when(configure(config(n + 1, b"sealed")))
            .then_error(DomainError::limit(
                "max_identity_providers",
                format!("a tenant has at most {MAX_PROVIDERS} identity providers"),
            ));
        full.when(configure(config(1, b"rotated")))
            .then([configured(config(1, b"rotated"))]);
    }

    #[test]
    fn given_a_provider_when_removed_then_removed_and_its_secret_forgotten() {
        let removed = given([configured(config(1, b"sealed"))])
            .when(IdentityProviderCommand::Remove { id: provider(1) })
            .then([IdentityProviderEvent::Removed(pb::OidcProviderRemoved {
                provider_id: provider(1).to_string(),
            })]);
        assert!(removed.state().providers.is_empty());
        // Configured again, it is new: the removed provider's secret is not reused.
        removed
            .when(configure(config(1, b"")))
            .then_error(DomainError::invalid("client_secret", "is required"));
    }

    #[test]
    fn given_no_such_provider_when_removed_then_not_found() {
        given([configured(config(1, b"sealed"))])
            .when(IdentityProviderCommand::Remove { id: provider(2) })
            .then_error(DomainError::NotFound(format!(
                "identity provider {}",
                provider(2)
            )));
    }
}
