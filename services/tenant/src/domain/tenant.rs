//! The tenant aggregate.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tenantry_eventstore::{Aggregate, EventMeta, time};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::events::TenantEvent;
use super::{DomainError, Settings};

/// How long a trial lasts unless its type changes first.
pub const TRIAL_DAYS: i64 = 30;
/// Custom domains a tenant may have when its plan sets no number (billing's
/// `PlanLimitsChanged.custom_domains` = 0, or no plan on the log yet).
pub const MAX_DOMAINS: usize = 20;
pub const MAX_FLAGS: usize = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    Enterprise,
    Business,
    #[default]
    Trial,
}

impl TenantKind {
    pub fn from_proto(t: pb::TenantType) -> Option<Self> {
        match t {
            pb::TenantType::Enterprise => Some(Self::Enterprise),
            pb::TenantType::Business => Some(Self::Business),
            pb::TenantType::Trial => Some(Self::Trial),
            pb::TenantType::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> pb::TenantType {
        match self {
            Self::Enterprise => pb::TenantType::Enterprise,
            Self::Business => pb::TenantType::Business,
            Self::Trial => pb::TenantType::Trial,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enterprise => "enterprise",
            Self::Business => "business",
            Self::Trial => "trial",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Active,
    Suspended,
    Decommissioning,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Decommissioning => "decommissioning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    pub verified: bool,
    pub verification_token: String,
}

/// A tenant as its events made it. `id` is `None` until it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub kind: TenantKind,
    pub status: Status,
    pub suspension_reason: String,
    pub settings: Option<Settings>,
    pub feature_flags: BTreeMap<String, bool>,
    pub domains: Vec<Domain>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub trial_expired: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Position of the last event applied.
    pub version: u64,
}

#[derive(Debug, Clone)]
pub enum TenantCommand {
    Create {
        id: Uuid,
        name: String,
        slug: String,
        kind: TenantKind,
        settings: Settings,
        now: DateTime<Utc>,
    },
    UpdateSettings(Settings),
    SetFeatureFlags {
        set: BTreeMap<String, bool>,
        unset: Vec<String>,
    },
    /// `max_domains`: the tenant's cap (its plan's, else [`MAX_DOMAINS`]), looked up before
    /// deciding.
    AddDomain {
        domain: String,
        verification_token: String,
        max_domains: usize,
    },
    /// `proved`: whether the domain served its verification token (checked before deciding).
    VerifyDomain {
        domain: String,
        proved: bool,
    },
    RemoveDomain {
        domain: String,
    },
    ChangeType {
        to: TenantKind,
    },
    Suspend {
        reason: String,
    },
    Reactivate,
    MarkForDecommission {
        reason: String,
    },
    ExpireTrial {
        now: DateTime<Utc>,
    },
}

impl Tenant {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name == name)
    }

    /// Whether `domain` may be added under a cap of `max_domains`: `Ok(true)` if the tenant
    /// has it already, the refusal `AddDomain` would get otherwise. The API asks before
    /// reserving the name platform-wide, so a tenant that may not add a domain cannot hold its
    /// name either. A tenant over a cap that was lowered keeps its domains (and may re-add
    /// one it holds) but adds no other.
    pub fn can_add_domain(&self, domain: &str, max_domains: usize) -> Result<bool, DomainError> {
        self.require_open()?;
        if self.domain(domain).is_some() {
            return Ok(true);
        }
        if self.domains.len() >= max_domains {
            return Err(DomainError::limit(
                "max_custom_domains",
                format!("a tenant has at most {max_domains} custom domains"),
            ));
        }
        Ok(false)
    }

    fn require_exists(&self) -> Result<Uuid, DomainError> {
        self.id
            .ok_or_else(|| DomainError::NotFound("tenant".into()))
    }

    /// Configuration changes are refused once decommissioning has started.
    fn require_open(&self) -> Result<(), DomainError> {
        self.require_exists()?;
        if self.status == Status::Decommissioning {
            return Err(DomainError::Precondition(
                "tenant is being decommissioned".into(),
            ));
        }
        Ok(())
    }
}

impl Aggregate for Tenant {
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = DomainError;

    fn decide(&self, command: &TenantCommand) -> Result<Vec<TenantEvent>, DomainError> {
        use TenantCommand as C;
        use TenantEvent as E;
        let one = |e| Ok(vec![e]);
        match command {
            C::Create {
                id,
                name,
                slug,
                kind,
                settings,
                now,
            } => {
                if self.id == Some(*id) {
                    return Ok(vec![]); // a retry of the same creation
                }
                if self.exists() {
                    return Err(DomainError::AlreadyExists(format!("tenant {id}")));
                }
                let trial_ends_at = (*kind == TenantKind::Trial)
                    .then(|| time::to_proto(*now + Duration::days(TRIAL_DAYS)));
                one(E::Created(pb::TenantCreated {
                    tenant_id: id.to_string(),
                    name: name.clone(),
                    slug: slug.clone(),
                    r#type: kind.to_proto() as i32,
                    settings: Some(settings.to_proto()),
                    trial_ends_at,
                }))
            }
            C::UpdateSettings(settings) => {
                self.require_open()?;
                if self.settings.as_ref() == Some(settings) {
                    return Ok(vec![]);
                }
                one(E::SettingsUpdated(pb::TenantSettingsUpdated {
                    settings: Some(settings.to_proto()),
                }))
            }
            C::SetFeatureFlags { set, unset } => {
                self.require_open()?;
                let set: BTreeMap<_, _> = set
                    .iter()
                    .filter(|(k, v)| self.feature_flags.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                let unset: Vec<_> = unset
                    .iter()
                    .filter(|k| self.feature_flags.contains_key(*k) && !set.contains_key(*k))
                    .cloned()
                    .collect();
                if set.is_empty() && unset.is_empty() {
                    return Ok(vec![]);
                }
                let after = self.feature_flags.len()
                    + set
                        .keys()
                        .filter(|k| !self.feature_flags.contains_key(*k))
                        .count()
                    - unset.len();
                if after > MAX_FLAGS {
                    return Err(DomainError::limit(
                        "max_feature_flags",
                        format!("a tenant has at most {MAX_FLAGS} feature flags"),
                    ));
                }
                one(E::FeatureFlagsChanged(pb::TenantFeatureFlagsChanged {
                    set: set.into_iter().collect(),
                    unset,
                }))
            }
            C::AddDomain {
                domain,
                verification_token,
                max_domains,
            } => {
                if self.can_add_domain(domain, *max_domains)? {
                    return Ok(vec![]);
                }
                one(E::DomainAdded(pb::TenantDomainAdded {
                    domain: domain.clone(),
                    verification_token: verification_token.clone(),
                }))
            }
            C::VerifyDomain { domain, proved } => {
                self.require_open()?;
                let d = self
                    .domain(domain)
                    .ok_or_else(|| DomainError::NotFound(format!("domain {domain}")))?;
                if d.verified {
                    return Ok(vec![]);
                }
                if !proved {
                    return Err(DomainError::Precondition(format!(
                        "{domain} did not serve its verification token at /.well-known/tenantry-domain-verification"
                    )));
                }
                one(E::DomainVerified(pb::TenantDomainVerified {
                    domain: domain.clone(),
                }))
            }
            C::RemoveDomain { domain } => {
                self.require_exists()?;
                if self.domain(domain).is_none() {
                    return Err(DomainError::NotFound(format!("domain {domain}")));
                }
                one(E::DomainRemoved(pb::TenantDomainRemoved {
                    domain: domain.clone(),
                }))
            }
            C::ChangeType { to } => {
                self.require_open()?;
                if self.kind == *to {
                    return Ok(vec![]);
                }
                one(E::TypeChanged(pb::TenantTypeChanged {
                    from: self.kind.to_proto() as i32,
                    to: to.to_proto() as i32,
                }))
            }
            C::Suspend { reason } => {
                self.require_open()?;
                if self.status == Status::Suspended {
                    return Ok(vec![]);
                }
                one(E::Suspended(pb::TenantSuspended {
                    reason: reason.clone(),
                }))
            }
            C::Reactivate => {
                self.require_open()?;
                if self.status == Status::Active {
                    return Ok(vec![]);
                }
                one(E::Reactivated(pb::TenantReactivated {}))
            }
            C::MarkForDecommission { reason } => {
                self.require_exists()?;
                if self.status == Status::Decommissioning {
                    return Ok(vec![]);
                }
                one(E::MarkedForDecommission(pb::TenantMarkedForDecommission {
                    reason: reason.clone(),
                }))
            }
            C::ExpireTrial { now } => {
                self.require_exists()?;
                match self.trial_ends_at {
                    Some(ends)
                        if self.kind == TenantKind::Trial
                            && !self.trial_expired
                            && *now >= ends =>
                    {
                        one(E::TrialExpired(pb::TenantTrialExpired {
                            trial_ended_at: Some(time::to_proto(ends)),
                        }))
                    }
                    _ => Ok(vec![]),
                }
            }
        }
    }

    fn evolve(&mut self, event: &TenantEvent, meta: &EventMeta) {
        use TenantEvent as E;
        match event {
            E::Created(c) => {
                self.id = Uuid::try_parse(&c.tenant_id).ok();
                self.name = c.name.clone();
                self.slug = c.slug.clone();
                self.kind = pb::TenantType::try_from(c.r#type)
                    .ok()
                    .and_then(TenantKind::from_proto)
                    .unwrap_or_default();
                self.settings = Some(Settings::from_event(c.settings.as_ref()));
                self.trial_ends_at = c.trial_ends_at.as_ref().map(|t| time::from_proto(Some(t)));
                self.created_at = meta.occurred_at;
            }
            E::SettingsUpdated(s) => {
                self.settings = Some(Settings::from_event(s.settings.as_ref()))
            }
            E::FeatureFlagsChanged(f) => {
                for key in &f.unset {
                    self.feature_flags.remove(key);
                }
                self.feature_flags
                    .extend(f.set.iter().map(|(k, v)| (k.clone(), *v)));
            }
            E::DomainAdded(d) => self.domains.push(Domain {
                name: d.domain.clone(),
                verified: false,
                verification_token: d.verification_token.clone(),
            }),
            E::DomainVerified(d) => {
                if let Some(domain) = self.domains.iter_mut().find(|x| x.name == d.domain) {
                    domain.verified = true;
                }
            }
            E::DomainRemoved(d) => self.domains.retain(|x| x.name != d.domain),
            E::Suspended(s) => {
                self.status = Status::Suspended;
                self.suspension_reason = s.reason.clone();
            }
            E::Reactivated(_) => {
                self.status = Status::Active;
                self.suspension_reason.clear();
            }
            E::MarkedForDecommission(_) => self.status = Status::Decommissioning,
            E::TypeChanged(t) => {
                self.kind = pb::TenantType::try_from(t.to)
                    .ok()
                    .and_then(TenantKind::from_proto)
                    .unwrap_or(self.kind);
                if self.kind != TenantKind::Trial {
                    self.trial_ends_at = None;
                    self.trial_expired = false;
                }
            }
            E::TrialExpired(_) => self.trial_expired = true,
        }
        self.updated_at = meta.occurred_at;
        self.version = meta.position;
    }
}

/// A slug: 3–63 of `a-z`, `0-9` and inner `-`; it names the tenant in URLs and host names.
pub fn validate_slug(slug: &str) -> Result<(), DomainError> {
    let ok = (3..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "slug",
            "must be 3-63 characters of a-z, 0-9 and inner hyphens",
        ))
    }
}

/// A custom domain: a lower-case host name with at least two labels.
pub fn validate_domain(domain: &str) -> Result<(), DomainError> {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "domain",
            "must be a lower-case host name such as app.example.com",
        ))
    }
}

/// A feature flag key: 1–64 of `a-z`, `0-9`, `_`, `-`, `.`-free so it can be a metric label.
pub fn validate_flag(field: &'static str, key: &str) -> Result<(), DomainError> {
    let ok = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("flag {key:?} must be 1-64 of a-z, 0-9, _ and -"),
        ))
    }
}

#[cfg(test)]
mod tests;
