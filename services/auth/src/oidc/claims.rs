//! Reading an ID token's claims by dotted path, and the provider presets.

use std::collections::BTreeMap;

use serde_json::Value;
use tenantry_kit::Role;

/// Defaults a preset gives to the settings a request leaves empty.
pub struct Preset {
    pub scopes: &'static [&'static str],
    /// Claim paths; `{client_id}` is replaced by the provider's client id.
    pub tenant_id: &'static str,
    pub roles: &'static str,
    pub email: &'static str,
}

pub const PRESETS: &[(&str, Preset)] = &[
    (
        // Client roles live under `resource_access.<client>.roles`.
        "keycloak",
        Preset {
            scopes: &["openid", "email", "profile"],
            tenant_id: "",
            roles: "resource_access.{client_id}.roles",
            email: "email",
        },
    ),
    (
        // Custom claims must be namespaced with a URL (which contains dots).
        "auth0",
        Preset {
            scopes: &["openid", "email", "profile"],
            tenant_id: "https://tenantry.dev/tenant_id",
            roles: "https://tenantry.dev/roles",
            email: "email",
        },
    ),
    (
        "generic",
        Preset {
            scopes: &["openid", "email"],
            tenant_id: "",
            roles: "roles",
            email: "email",
        },
    ),
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
}

/// The default IdP-role → Tenantry-role mapping.
pub fn default_role_mappings() -> BTreeMap<String, String> {
    [
        ("admin", "owner"),
        ("manager", "member"),
        ("user", "viewer"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

/// The value at `path`. Keys may themselves contain dots (Auth0's namespaced claims), so at
/// each level the longest key that matches a prefix of the path wins.
pub fn at_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return None;
    }
    let object = claims.as_object()?;
    if let Some(v) = object.get(path) {
        return Some(v);
    }
    let mut cut = path.len();
    while let Some(dot) = path[..cut].rfind('.') {
        if let Some(v) = object.get(&path[..dot])
            && let Some(found) = at_path(v, &path[dot + 1..])
        {
            return Some(found);
        }
        cut = dot;
    }
    None
}

/// The strings at `path`: one string, or an array of them.
pub fn strings_at(claims: &Value, path: &str) -> Vec<String> {
    match at_path(claims, path) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// The highest Tenantry role any of `idp_roles` maps to.
pub fn mapped_role(idp_roles: &[String], mappings: &BTreeMap<String, String>) -> Option<Role> {
    idp_roles
        .iter()
        .filter_map(|r| mappings.get(r))
        .filter_map(|r| r.parse::<Role>().ok())
        .filter(|r| *r != Role::PlatformAdmin)
        .max()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dotted_paths_reach_nested_and_namespaced_claims() {
        let claims = json!({
            "resource_access": {"app": {"roles": ["manager", "user"], "tenant_id": "t1"}},
            "https://tenantry.dev/roles": ["admin"],
            "email": "a@example.com",
        });
        assert_eq!(
            strings_at(&claims, "resource_access.app.roles"),
            vec!["manager", "user"]
        );
        assert_eq!(
            strings_at(&claims, "resource_access.app.tenant_id"),
            vec!["t1"]
        );
        assert_eq!(
            strings_at(&claims, "https://tenantry.dev/roles"),
            vec!["admin"]
        );
        assert!(strings_at(&claims, "resource_access.other.roles").is_empty());
        let roles = strings_at(&claims, "resource_access.app.roles");
        assert_eq!(
            mapped_role(&roles, &default_role_mappings()),
            Some(Role::Member)
        );
        assert_eq!(
            mapped_role(&["nobody".into()], &default_role_mappings()),
            None
        );
    }
}
