//! Tenant settings and limits, with the checks that keep bad values out of the log.

use serde::{Deserialize, Serialize};
use tenantry_proto::events::v1 as pb;

use super::DomainError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// IANA time zone name, e.g. `America/Sao_Paulo`.
    pub timezone: String,
    /// ISO 4217 code, e.g. `BRL`.
    pub currency: String,
    /// BCP 47 language tag, e.g. `pt-BR`.
    pub language: String,
    pub data_retention_days: u32,
    pub limits: Limits,
}

/// 0 means "the plan's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_users: u32,
    pub max_storage_mb: u64,
    pub requests_per_second: u32,
    pub monthly_requests: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            currency: "USD".into(),
            language: "en".into(),
            data_retention_days: 365,
            limits: Limits::default(),
        }
    }
}

pub const MAX_RETENTION_DAYS: u32 = 3650;

impl Settings {
    /// Settings from a request: empty fields take the defaults, the rest must be valid.
    pub fn from_request(p: Option<&pb::TenantSettings>) -> Result<Self, DomainError> {
        let defaults = Self::default();
        let Some(p) = p else { return Ok(defaults) };
        let pick = |v: &str, d: String| if v.is_empty() { d } else { v.to_owned() };
        let settings = Self {
            timezone: pick(&p.timezone, defaults.timezone),
            currency: pick(&p.currency, defaults.currency),
            language: pick(&p.language, defaults.language),
            data_retention_days: if p.data_retention_days == 0 {
                defaults.data_retention_days
            } else {
                p.data_retention_days
            },
            limits: p
                .limits
                .as_ref()
                .map(Limits::from_proto)
                .unwrap_or_default(),
        };
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        if !valid_timezone(&self.timezone) {
            return Err(DomainError::invalid(
                "settings.timezone",
                "must be an IANA time zone name such as UTC or Europe/Lisbon",
            ));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(DomainError::invalid(
                "settings.currency",
                "must be an ISO 4217 code such as USD",
            ));
        }
        if !valid_language(&self.language) {
            return Err(DomainError::invalid(
                "settings.language",
                "must be a language tag such as en or pt-BR",
            ));
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.data_retention_days) {
            return Err(DomainError::invalid(
                "settings.data_retention_days",
                format!("must be between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        Ok(())
    }

    pub fn to_proto(&self) -> pb::TenantSettings {
        pb::TenantSettings {
            timezone: self.timezone.clone(),
            currency: self.currency.clone(),
            language: self.language.clone(),
            data_retention_days: self.data_retention_days,
            limits: Some(self.limits.to_proto()),
        }
    }

    /// From a stored event: trusted, not validated again.
    pub fn from_event(p: Option<&pb::TenantSettings>) -> Self {
        let Some(p) = p else { return Self::default() };
        Self {
            timezone: p.timezone.clone(),
            currency: p.currency.clone(),
            language: p.language.clone(),
            data_retention_days: p.data_retention_days,
            limits: p
                .limits
                .as_ref()
                .map(Limits::from_proto)
                .unwrap_or_default(),
        }
    }
}

impl Limits {
    fn from_proto(p: &pb::TenantLimits) -> Self {
        Self {
            max_users: p.max_users,
            max_storage_mb: p.max_storage_mb,
            requests_per_second: p.requests_per_second,
            monthly_requests: p.monthly_requests,
        }
    }

    fn to_proto(&self) -> pb::TenantLimits {
        pb::TenantLimits {
            max_users: self.max_users,
            max_storage_mb: self.max_storage_mb,
            requests_per_second: self.requests_per_second,
            monthly_requests: self.monthly_requests,
        }
    }
}

/// `UTC`, or `Area/Location[/Sub]` with the characters IANA names use.
fn valid_timezone(tz: &str) -> bool {
    if tz == "UTC" {
        return true;
    }
    let parts: Vec<&str> = tz.split('/').collect();
    tz.len() <= 64
        && (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_uppercase())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

/// `ll`, `lll` or either followed by `-RR` (region) — the tags products actually ship.
fn valid_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()));
    let region_ok = match parts.next() {
        None => true,
        Some(r) => {
            (r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
                || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
        }
    };
    lang_ok && region_ok && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_request_fields_take_defaults() {
        let s = Settings::from_request(Some(&pb::TenantSettings {
            currency: "BRL".into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(
            (
                s.timezone.as_str(),
                s.currency.as_str(),
                s.data_retention_days
            ),
            ("UTC", "BRL", 365)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                pb::TenantSettings {
                    timezone: "Mars/Olympus Mons".into(),
                    ..Default::default()
                },
                "settings.timezone",
            ),
            (
                pb::TenantSettings {
                    currency: "usd".into(),
                    ..Default::default()
                },
                "settings.currency",
            ),
            (
                pb::TenantSettings {
                    language: "english".into(),
                    ..Default::default()
                },
                "settings.language",
            ),
            (
                pb::TenantSettings {
                    data_retention_days: 5000,
                    ..Default::default()
                },
                "settings.data_retention_days",
            ),
        ];
        for (input, field) in cases {
            match Settings::from_request(Some(&input)) {
                Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(
            Settings::from_request(Some(&pb::TenantSettings {
                timezone: "America/Sao_Paulo".into(),
                language: "pt-BR".into(),
                ..Default::default()
            }))
            .is_ok()
        );
    }
}
