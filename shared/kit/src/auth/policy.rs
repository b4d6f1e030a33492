use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A caller's role. Tenant roles are ordered (`viewer` < `member` < `owner`);
/// `platform_admin` operates across tenants and satisfies every requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Member,
    Owner,
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Owner, Role::PlatformAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Owner => "owner",
            Role::PlatformAdmin => "platform_admin",
        }
    }

    /// Whether this role meets a requirement of `required`.
    pub fn satisfies(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// What an RPC requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health, reflection).
    Public,
    /// A valid token with at least this role.
    Role(Role),
}

/// Every RPC a server exposes, by full path (`/tenantry.tenant.v1.TenantService/GetTenant`),
/// with its declared access. Anything not listed is denied.
#[derive(Debug, Clone, Default)]
pub struct RpcPolicy {
    rules: HashMap<String, Access>,
}

impl RpcPolicy {
    /// Health checks and reflection are public on every server.
    pub fn new() -> Self {
        let mut policy = Self::default();
        policy.allow_service("grpc.health.v1.Health", Access::Public);
        policy.allow_service("grpc.reflection.v1.ServerReflection", Access::Public);
        policy.allow_service("grpc.reflection.v1alpha.ServerReflection", Access::Public);
        policy
    }

    /// Declares one RPC, e.g. `declare("tenantry.tenant.v1.TenantService", "GetTenant", ...)`.
    pub fn declare(&mut self, service: &str, method: &str, access: Access) -> &mut Self {
        self.rules.insert(format!("/{service}/{method}"), access);
        self
    }

    fn allow_service(&mut self, service: &str, access: Access) {
        self.rules.insert(format!("/{service}/*"), access);
    }

    /// The access declared for a request path; `None` means deny.
    pub fn lookup(&self, path: &str) -> Option<Access> {
        if let Some(access) = self.rules.get(path) {
            return Some(*access);
        }
        let service = path.rsplit_once('/').map(|(s, _)| s)?;
        self.rules.get(&format!("{service}/*")).copied()
    }

    /// The rule a request path falls under, as declared: the path itself, or its service's
    /// wildcard (`/grpc.health.v1.Health/*`); `None` for a path the policy does not know.
    /// Bounded by the policy, so fit for a metric label.
    pub fn declared(&self, path: &str) -> Option<&str> {
        if let Some((rule, _)) = self.rules.get_key_value(path) {
            return Some(rule);
        }
        let service = path.rsplit_once('/').map(|(s, _)| s)?;
        self.rules
            .get_key_value(&format!("{service}/*"))
            .map(|(rule, _)| rule.as_str())
    }

    /// Every declared RPC path (without the service wildcards).
    pub fn paths(&self) -> impl Iterator<Item = (&str, Access)> {
        self.rules
            .iter()
            .filter(|(p, _)| !p.ends_with("/*"))
            .map(|(p, a)| (p.as_str(), *a))
    }

    /// Checks the policy against the RPCs of `package` in the descriptor set (what reflection
    /// serves): every one declares a role (none is public, none is denied by omission) and the
    /// policy names no RPC that does not exist. Returns how many RPCs it checked.
    pub fn check_covers(&self, package: &str) -> Result<usize, String> {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(tenantry_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("descriptor set: {e}"))?;
        let mut checked = 0;
        for file in set.file.iter().filter(|f| f.package() == package) {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{package}.{}/{}", service.name(), method.name());
                    match self.lookup(&path) {
                        Some(Access::Role(_)) => checked += 1,
                        other => return Err(format!("{path} declares {other:?}")),
                    }
                }
            }
        }
        let declared = self
            .paths()
            .filter(|(p, _)| p.starts_with(&format!("/{package}.")))
            .count();
        if declared != checked {
            return Err(format!(
                "the policy names {declared} RPCs of {package}; {checked} exist"
            ));
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Owner.satisfies(Role::Member));
        assert!(!Role::Viewer.satisfies(Role::Member));
        assert!(Role::PlatformAdmin.satisfies(Role::Owner));
        assert_eq!("member".parse::<Role>(), Ok(Role::Member));
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn undeclared_rpcs_are_denied() {
        let mut policy = RpcPolicy::new();
        policy.declare("a.S", "Get", Access::Role(Role::Viewer));
        assert_eq!(policy.lookup("/a.S/Get"), Some(Access::Role(Role::Viewer)));
        assert_eq!(policy.lookup("/a.S/Delete"), None);
        assert_eq!(policy.declared("/a.S/Get"), Some("/a.S/Get"));
        assert_eq!(policy.declared("/a.S/Delete"), None);
        assert_eq!(policy.declared("/x1"), None);
        assert_eq!(
            policy.declared("/grpc.health.v1.Health/Made-Up"),
            Some("/grpc.health.v1.Health/*")
        );
        assert_eq!(
            policy.lookup("/grpc.health.v1.Health/Check"),
            Some(Access::Public)
        );
    }
}
