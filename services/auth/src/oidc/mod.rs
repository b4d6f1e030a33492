//! OIDC federation: a tenant's users sign in with the tenant's own identity provider.
//!
//! Authorization Code with PKCE (S256 only), `state` and `nonce`, exact redirect URIs:
//! [`flow`] starts a login (the pending login is kept in Postgres, single use) and completes
//! it (code exchange, ID token validation, claim and role mapping); [`client`] talks to the
//! provider (discovery, JWKS, token endpoint); [`claims`] reads claims by dotted path and
//! holds the presets for Keycloak, Auth0 and a generic provider.

pub mod claims;
pub mod client;
pub mod flow;
