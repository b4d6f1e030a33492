//! Subjects of the event log and validation of the tokens that go into them.
//!
//! A tenant id, aggregate type or aggregate id ends up in a subject, a consumer filter or a
//! Redis key; a `.` would add a token, `*`/`>` would widen a filter, whitespace breaks the
//! protocol. Everything is checked here, once, with the caller's field name in the error.

use crate::error::InvalidToken;

/// The tenant token of platform-level aggregates (plan catalog, name reservations).
pub const PLATFORM_TENANT: &str = "platform";

/// Longest token we accept; ids are UUIDs (36), slugs and names are far shorter.
const MAX_TOKEN_LEN: usize = 128;

/// Checks that `value` can be used as one subject token.
pub fn validate_token(field: &'static str, value: &str) -> Result<(), InvalidToken> {
    if value.is_empty() {
        return Err(InvalidToken {
            field,
            reason: "must not be empty",
        });
    }
    if value.len() > MAX_TOKEN_LEN {
        return Err(InvalidToken {
            field,
            reason: "must be at most 128 bytes",
        });
    }
    if value.contains(['.', '*', '>']) {
        return Err(InvalidToken {
            field,
            reason: "must not contain '.', '*' or '>'",
        });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidToken {
            field,
            reason: "must not contain whitespace or control characters",
        });
    }
    Ok(())
}

/// Checks a dotted subject root such as `evt` or `test1.evt`: each part a valid token.
pub fn validate_root(field: &'static str, root: &str) -> Result<(), InvalidToken> {
    root.split('.')
        .try_for_each(|part| validate_token(field, part))
}

/// Where an aggregate lives: its tenant, type and id, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregateAddress {
    tenant_id: String,
    aggregate_type: &'static str,
    aggregate_id: String,
}

impl AggregateAddress {
    pub fn new(
        tenant_id: impl Into<String>,
        aggregate_type: &'static str,
        aggregate_id: impl Into<String>,
    ) -> Result<Self, InvalidToken> {
        let (tenant_id, aggregate_id) = (tenant_id.into(), aggregate_id.into());
        validate_token("tenant_id", &tenant_id)?;
        validate_token("aggregate_type", aggregate_type)?;
        validate_token("aggregate_id", &aggregate_id)?;
        Ok(Self {
            tenant_id,
            aggregate_type,
            aggregate_id,
        })
    }

    /// The address of aggregate `id` of type `A` in `tenant`: the type comes from the
    /// aggregate's event contract, never from a string typed at the call site.
    pub fn of<A: crate::Aggregate>(
        tenant_id: impl Into<String>,
        aggregate_id: impl Into<String>,
    ) -> Result<Self, InvalidToken> {
        Self::new(tenant_id, A::TYPE, aggregate_id)
    }

    /// Like [`AggregateAddress::of`], from an event contract (for writers of facts without
    /// an aggregate, such as tests appending another service's events).
    pub fn for_events<E: crate::EventPayload>(
        tenant_id: impl Into<String>,
        aggregate_id: impl Into<String>,
    ) -> Result<Self, InvalidToken> {
        Self::new(tenant_id, E::AGGREGATE_TYPE, aggregate_id)
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    pub fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// `<root>.<tenant_id>.<aggregate_type>.<aggregate_id>`
    pub fn subject(&self, root: &str) -> String {
        format!(
            "{root}.{}.{}.{}",
            self.tenant_id, self.aggregate_type, self.aggregate_id
        )
    }
}

/// The filter for every aggregate of one type, across tenants: `<root>.*.<aggregate_type>.*`.
pub fn type_filter(root: &str, aggregate_type: &str) -> Result<String, InvalidToken> {
    validate_token("aggregate_type", aggregate_type)?;
    Ok(format!("{root}.*.{aggregate_type}.*"))
}

/// The filter for everything one tenant ever did: `<root>.<tenant_id>.>`.
pub fn tenant_filter(root: &str, tenant_id: &str) -> Result<String, InvalidToken> {
    validate_token("tenant_id", tenant_id)?;
    Ok(format!("{root}.{tenant_id}.>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_every_character_that_changes_a_subject() {
        for bad in ["a.b", "a*", ">", "a b", "a\tb", "a\nb", ""] {
            let err = validate_token("tenant_id", bad).unwrap_err();
            assert_eq!(err.field, "tenant_id", "{bad:?}");
        }
        assert!(validate_token("x", &"a".repeat(129)).is_err());
        assert!(validate_token("x", "0192e8a1-7c3a-7b1e-9f3e-2b8c4d5e6f70").is_ok());
    }

    #[test]
    fn builds_subjects_and_filters() {
        let addr = AggregateAddress::new("t1", "tenant", "t1").unwrap();
        assert_eq!(addr.subject("evt"), "evt.t1.tenant.t1");
        assert_eq!(type_filter("x.evt", "tenant").unwrap(), "x.evt.*.tenant.*");
        assert_eq!(tenant_filter("evt", "t1").unwrap(), "evt.t1.>");
        assert!(tenant_filter("evt", "*").is_err());
        assert!(AggregateAddress::new("t1", "tenant", "a>b").is_err());
        assert!(validate_root("root", "a.evt").is_ok());
        assert!(validate_root("root", "a..evt").is_err());
    }
}
