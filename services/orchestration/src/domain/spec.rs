//! A deployment's spec: what is valid, checked field by field so a refusal names the field
//! (`spec.replicas`, `spec.autoscaling.min_replicas`, …) and nothing is appended.
//!
//! Defaults are filled in here too ([`normalized`]): the spec on the log is the one the
//! runtime runs, with no default left to the reader.

use std::collections::HashMap;

use tenantry_proto::events::v1 as pb;

use super::DomainError;

/// The runtimes a spec may name.
pub const RUNTIMES: [&str; 2] = ["process", "kubernetes"];
/// Most instances one deployment may ask for.
pub const MAX_REPLICAS: i32 = 50;
const MAX_ENV: usize = 64;
const MAX_ENV_VALUE: usize = 4096;
const DEFAULT_INTERVAL_MS: u32 = 1_000;
const DEFAULT_TIMEOUT_MS: u32 = 1_000;
const DEFAULT_FAILURES: u32 = 3;

/// Environment variables the platform sets itself, or that change how a program is loaded:
/// a tenant may not set them.
const RESERVED_ENV: [&str; 6] = ["PORT", "PATH", "HOME", "IFS", "SHELL", "ENV"];

fn invalid(field: &'static str, reason: impl Into<String>) -> DomainError {
    DomainError::invalid(field, reason)
}

/// A DNS-label-like token: `[a-z0-9-]`, 1..=max, not starting or ending with `-`.
fn label(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be 1-{max} of [a-z0-9-], not starting or ending with '-'"),
        ))
    }
}

/// A version or image token: `[A-Za-z0-9._-]`, 1..=128.
fn token(field: &'static str, value: &str) -> Result<(), DomainError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':'));
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "must be 1-128 of [A-Za-z0-9._/:-]"))
    }
}

/// The replica count of a spec or a scale command.
pub fn replicas(field: &'static str, value: i32) -> Result<(), DomainError> {
    if value < 0 {
        return Err(invalid(field, "must not be negative"));
    }
    if value > MAX_REPLICAS {
        return Err(invalid(field, format!("must be at most {MAX_REPLICAS}")));
    }
    Ok(())
}

/// An autoscaling setting (a disabled one is not checked further).
pub fn autoscaling(a: &pb::AutoscalingSpec) -> Result<(), DomainError> {
    if !a.enabled {
        return Ok(());
    }
    replicas("spec.autoscaling.min_replicas", a.min_replicas)?;
    replicas("spec.autoscaling.max_replicas", a.max_replicas)?;
    if a.min_replicas < 1 {
        return Err(invalid(
            "spec.autoscaling.min_replicas",
            "must be at least 1",
        ));
    }
    if a.min_replicas > a.max_replicas {
        return Err(invalid(
            "spec.autoscaling.min_replicas",
            format!(
                "must not exceed max_replicas ({} > {})",
                a.min_replicas, a.max_replicas
            ),
        ));
    }
    if !(1..=100).contains(&a.target_cpu_percent) {
        return Err(invalid(
            "spec.autoscaling.target_cpu_percent",
            "must be 1-100",
        ));
    }
    Ok(())
}

fn resources(r: &pb::DeploymentResources) -> Result<(), DomainError> {
    let fields: [(&'static str, i64); 4] = [
        ("spec.resources.cpu_request_millis", r.cpu_request_millis),
        ("spec.resources.cpu_limit_millis", r.cpu_limit_millis),
        (
            "spec.resources.memory_request_bytes",
            r.memory_request_bytes,
        ),
        ("spec.resources.memory_limit_bytes", r.memory_limit_bytes),
    ];
    for (field, value) in fields {
        if value < 0 {
            return Err(invalid(field, "must not be negative"));
        }
    }
    // 0 = no limit; a limit, when set, holds at least the request.
    if r.cpu_limit_millis > 0 && r.cpu_limit_millis < r.cpu_request_millis {
        return Err(invalid(
            "spec.resources.cpu_limit_millis",
            "must not be below cpu_request_millis",
        ));
    }
    if r.memory_limit_bytes > 0 && r.memory_limit_bytes < r.memory_request_bytes {
        return Err(invalid(
            "spec.resources.memory_limit_bytes",
            format!(
                "must not be below memory_request_bytes ({} < {})",
                r.memory_limit_bytes, r.memory_request_bytes
            ),
        ));
    }
    Ok(())
}

fn env(vars: &HashMap<String, String>) -> Result<(), DomainError> {
    if vars.len() > MAX_ENV {
        return Err(invalid("spec.env", format!("at most {MAX_ENV} variables")));
    }
    for (name, value) in vars {
        env_name("spec.env", name)?;
        env_value("spec.env", name, value)?;
    }
    Ok(())
}

/// A variable's name a tenant may set: `[A-Z_][A-Z0-9_]*`, not the platform's.
fn env_name(field: &'static str, name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !ok {
        return Err(invalid(field, format!("{name:?} must be [A-Z_][A-Z0-9_]*")));
    }
    if RESERVED_ENV.contains(&name) || name.starts_with("TENANTRY_") || name.starts_with("LD_") {
        return Err(invalid(field, format!("{name} is set by the platform")));
    }
    Ok(())
}

fn env_value(field: &'static str, name: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > MAX_ENV_VALUE || value.contains('\0') {
        return Err(invalid(
            field,
            format!("{name}: at most {MAX_ENV_VALUE} bytes, no NUL"),
        ));
    }
    Ok(())
}

/// Secret variables as a request gives them (in the clear, before sealing): named like
/// `spec.env`'s and not among them, within the same count; `removable` allows "" (an
/// update's "remove this one"), else a value is required.
pub fn secrets(
    secrets: &HashMap<String, String>,
    spec: &pb::DeploymentSpec,
    removable: bool,
) -> Result<(), DomainError> {
    if !spec.secret_env.is_empty() {
        return Err(invalid(
            "spec.secret_env",
            "is sealed by the service: give the values in `secrets`",
        ));
    }
    if spec.env.len() + secrets.len() > MAX_ENV {
        return Err(invalid(
            "secrets",
            format!("at most {MAX_ENV} variables with spec.env"),
        ));
    }
    for (name, value) in secrets {
        env_name("secrets", name)?;
        if spec.env.contains_key(name) {
            return Err(invalid("secrets", format!("{name} is also in spec.env")));
        }
        if value.is_empty() && !removable {
            return Err(invalid("secrets", format!("{name}: a value is required")));
        }
        env_value("secrets", name, value)?;
    }
    Ok(())
}

/// The sealed variables a spec carries: names as [`secrets`] allows, distinct from
/// `spec.env`, each with a ciphertext.
fn secret_env(spec: &pb::DeploymentSpec) -> Result<(), DomainError> {
    if spec.env.len() + spec.secret_env.len() > MAX_ENV {
        return Err(invalid(
            "spec.secret_env",
            format!("at most {MAX_ENV} variables with spec.env"),
        ));
    }
    for (name, sealed) in &spec.secret_env {
        env_name("spec.secret_env", name)?;
        if spec.env.contains_key(name) || sealed.ciphertext.is_empty() {
            return Err(invalid(
                "spec.secret_env",
                format!("{name}: not a sealed value distinct from spec.env"),
            ));
        }
    }
    Ok(())
}

fn health(h: &pb::HealthProbe) -> Result<(), DomainError> {
    let path_ok = h.path.starts_with('/')
        && h.path.len() <= 256
        && h.path.bytes().all(|b| b.is_ascii_graphic());
    if !path_ok {
        return Err(invalid(
            "spec.health.path",
            "must start with '/', at most 256 visible ASCII characters",
        ));
    }
    if !(100..=60_000).contains(&h.interval_ms) {
        return Err(invalid("spec.health.interval_ms", "must be 100-60000"));
    }
    if !(50..=30_000).contains(&h.timeout_ms) {
        return Err(invalid("spec.health.timeout_ms", "must be 50-30000"));
    }
    if !(1..=20).contains(&h.failure_threshold) {
        return Err(invalid("spec.health.failure_threshold", "must be 1-20"));
    }
    Ok(())
}

/// The spec with its defaults filled in (health probe, autoscaling), as it goes on the log.
pub fn normalized(mut spec: pb::DeploymentSpec) -> pb::DeploymentSpec {
    let h = spec.health.get_or_insert_with(Default::default);
    if h.path.is_empty() {
        h.path = "/".into();
    }
    if h.interval_ms == 0 {
        h.interval_ms = DEFAULT_INTERVAL_MS;
    }
    if h.timeout_ms == 0 {
        h.timeout_ms = DEFAULT_TIMEOUT_MS;
    }
    if h.failure_threshold == 0 {
        h.failure_threshold = DEFAULT_FAILURES;
    }
    spec.resources.get_or_insert_with(Default::default);
    spec.autoscaling.get_or_insert_with(Default::default);
    spec
}

/// Checks a (normalized) spec; the error names the first field at fault.
pub fn validate(spec: &pb::DeploymentSpec) -> Result<(), DomainError> {
    label("spec.name", &spec.name, 63)?;
    if !RUNTIMES.contains(&spec.runtime.as_str()) {
        return Err(invalid(
            "spec.runtime",
            format!(
                "unknown runtime {:?}; one of {}",
                spec.runtime,
                RUNTIMES.join(", ")
            ),
        ));
    }
    token("spec.image", &spec.image)?;
    token("spec.version", &spec.version)?;
    replicas("spec.replicas", spec.replicas)?;
    if let Some(r) = &spec.resources {
        resources(r)?;
    }
    env(&spec.env)?;
    secret_env(spec)?;
    if spec.port > 65_535 {
        return Err(invalid("spec.port", "must be 0-65535"));
    }
    if let Some(h) = &spec.health {
        health(h)?;
    }
    if let Some(a) = &spec.autoscaling {
        autoscaling(a)?;
        if a.enabled && !(a.min_replicas..=a.max_replicas).contains(&spec.replicas) {
            return Err(invalid(
                "spec.replicas",
                "must be within the autoscaling range",
            ));
        }
    }
    Ok(())
}
