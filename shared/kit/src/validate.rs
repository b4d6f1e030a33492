//! Small input checks shared by handlers; each error names the field.

use uuid::Uuid;

use crate::ApiError;

/// A UUID field; a `.`/`*`/`>` or anything else that is not a UUID is refused here.
pub fn uuid(field: &str, value: &str) -> Result<Uuid, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Uuid::try_parse(value).map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

/// A required text field of at most `max` characters, without control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    optional_text(field, value, max)
}

/// An optional text field of at most `max` characters, without control characters.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The longest e-mail address (RFC 5321).
pub const MAX_EMAIL: usize = 254;

/// A plausible e-mail address (RFC 5321 lengths, one `@`, a dotted domain, nothing that could
/// end a mail header); names the field.
pub fn email(field: &str, value: &str) -> Result<(), ApiError> {
    text(field, value, MAX_EMAIL)?;
    let Some((local, domain)) = value.split_once('@') else {
        return Err(ApiError::invalid(field, "must be an e-mail address"));
    };
    let ok = !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be an e-mail address"))
    }
}

/// A protobuf enum value that must be known and not `UNSPECIFIED` (0).
pub fn known_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, ApiError> {
    if value == 0 {
        return Err(ApiError::invalid(field, "is required"));
    }
    E::try_from(value).map_err(|_| ApiError::invalid(field, format!("unknown value {value}")))
}
