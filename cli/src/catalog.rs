//! The services and RPCs the command line offers, read from a descriptor set.
//!
//! A service on the command line is a package `tenantry.<service>.<version>` (all its gRPC
//! services together: `auth` holds `SessionService`, `MemberService`, …); an RPC is a method
//! named in kebab-case (`CreateTenant` → `create-tenant`). Two gRPC services of one package
//! with a method of the same name would clash, so those RPCs are qualified by their service
//! (`member-list`, `invitation-list`).

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};

/// Every service with RPCs in a descriptor set.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub services: Vec<ServiceGroup>,
}

/// One package's services, as one command.
#[derive(Debug, Clone)]
pub struct ServiceGroup {
    /// The package's middle name: `tenant` for `tenantry.tenant.v1`.
    pub name: String,
    /// `tenantry.tenant.v1`.
    pub package: String,
    /// The comment above the package statement (what the service is for).
    pub comment: Option<String>,
    pub rpcs: Vec<Rpc>,
}

/// One RPC, as one command.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// `create-tenant` (or `member-list` when two services of the package share the name).
    pub command: String,
    pub method: MethodDescriptor,
}

#[derive(Debug, thiserror::Error)]
#[error("the descriptor set does not decode: {0}")]
pub struct CatalogError(#[from] prost_reflect::DescriptorError);

impl Catalog {
    /// The services the CLI was built with.
    pub fn builtin() -> Result<Self, CatalogError> {
        Ok(Self::from_pool(&DescriptorPool::decode(
            tenantry_proto::FILE_DESCRIPTOR_SET,
        )?))
    }

    /// Every `tenantry.<service>.<version>` package of `pool` that has services.
    pub fn from_pool(pool: &DescriptorPool) -> Self {
        let mut packages: BTreeMap<String, Vec<ServiceDescriptor>> = BTreeMap::new();
        for service in pool.services() {
            packages
                .entry(service.package_name().to_owned())
                .or_default()
                .push(service);
        }
        let services = packages
            .into_iter()
            .filter_map(|(package, services)| {
                let name = service_name(&package)?.to_owned();
                let comment = services
                    .first()
                    .and_then(|s| package_comment(&s.parent_file()));
                Some(ServiceGroup {
                    name,
                    package,
                    comment,
                    rpcs: rpcs(&services),
                })
            })
            .collect();
        Self { services }
    }

    pub fn service(&self, name: &str) -> Option<&ServiceGroup> {
        self.services.iter().find(|s| s.name == name)
    }
}

impl ServiceGroup {
    pub fn rpc(&self, command: &str) -> Option<&Rpc> {
        self.rpcs.iter().find(|r| r.command == command)
    }

    /// The variable that points this service's calls somewhere else than `--endpoint`:
    /// `TENANTRY_TENANT_ENDPOINT`.
    pub fn endpoint_variable(&self) -> String {
        format!(
            "TENANTRY_{}_ENDPOINT",
            self.name.to_uppercase().replace('-', "_")
        )
    }
}

impl Rpc {
    /// `/tenantry.tenant.v1.TenantService/CreateTenant`.
    pub fn path(&self) -> String {
        format!(
            "/{}/{}",
            self.method.parent_service().full_name(),
            self.method.name()
        )
    }

    pub fn is_streaming(&self) -> bool {
        self.method.is_client_streaming() || self.method.is_server_streaming()
    }

    pub fn comment(&self) -> Option<String> {
        comment_at(&self.method.parent_file(), self.method.path())
    }
}

/// `tenantry.tenant.v1` → `tenant`; other packages are not Tenantry services.
fn service_name(package: &str) -> Option<&str> {
    let mut parts = package.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("tenantry"), Some(name), Some(version), None)
            if !name.is_empty() && version.starts_with('v') =>
        {
            Some(name)
        }
        _ => None,
    }
}

fn rpcs(services: &[ServiceDescriptor]) -> Vec<Rpc> {
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for method in services.iter().flat_map(|s| s.methods()) {
        *by_name.entry(kebab(method.name())).or_default() += 1;
    }
    services
        .iter()
        .flat_map(|s| s.methods())
        .map(|method| {
            let plain = kebab(method.name());
            let command = if by_name.get(&plain).copied().unwrap_or(0) > 1 {
                let service = method.parent_service().name();
                let stem = service.strip_suffix("Service").unwrap_or(service);
                format!("{}-{plain}", kebab(stem))
            } else {
                plain
            };
            Rpc { command, method }
        })
        .collect()
}

/// `CreateTenant` → `create-tenant`, `GetAPIKey` → `get-api-key`.
pub fn kebab(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            out.push('-');
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The leading comment of the element at `path` in `file` (from the source info protox
/// keeps), without the comment markers' indentation.
pub fn comment_at(file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    location.leading_comments.as_deref().and_then(clean_comment)
}

/// The comment above the `package` statement (field 2 of `FileDescriptorProto`): attached
/// to it, or the last detached one before it.
fn package_comment(file: &prost_reflect::FileDescriptor) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == [2])?;
    location
        .leading_comments
        .as_deref()
        .and_then(clean_comment)
        .or_else(|| {
            location
                .leading_detached_comments
                .last()
                .and_then(|c| clean_comment(c))
        })
}

fn clean_comment(raw: &str) -> Option<String> {
    let text = raw
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The first sentence of a comment, on one line (for one-line listings).
pub fn summary(comment: &str) -> String {
    let paragraph = comment
        .split("\n\n")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match paragraph.find(". ") {
        Some(end) => paragraph[..=end].to_owned(),
        None => paragraph,
    }
}
