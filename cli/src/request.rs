//! The request message from parsed flags: `--json` first (the whole request), then each
//! field flag given, which replaces that field. Every error names the flag it comes from.

use std::io::Read;

use base64::Engine as _;
use clap::ArgMatches;
use prost::bytes::Bytes;
use prost_reflect::{DynamicMessage, EnumDescriptor, Kind, MessageDescriptor, Value};

use crate::commands::JSON;
use crate::fields::{self, FieldFlag, Shape};

/// A request that cannot be built: the flag and why.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct RequestError {
    /// `--page-size`, `--json`.
    pub flag: String,
    pub reason: String,
}

impl RequestError {
    fn new(flag: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            flag: flag.into(),
            reason: reason.into(),
        }
    }
}

/// The `input` message from an RPC command's matches (`--json -` reads stdin).
pub fn build(
    input: &MessageDescriptor,
    matches: &ArgMatches,
) -> Result<DynamicMessage, RequestError> {
    let json = matches.try_get_one::<String>(JSON).ok().flatten();
    let mut message = match json.map(String::as_str) {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| RequestError::new("--json", format!("reading stdin: {e}")))?;
            from_json(input, &text)?
        }
        Some(text) => from_json(input, text)?,
        None => DynamicMessage::new(input.clone()),
    };
    for flag in fields::flags(input) {
        let raw: Vec<String> = match matches.try_get_many::<String>(&flag.long) {
            Ok(Some(values)) => values.cloned().collect(),
            _ => continue,
        };
        let value = field_value(&flag, &raw)?;
        message.set_field(&flag.field, value);
    }
    Ok(message)
}

/// The whole request from proto3 JSON (`--json`); unknown fields are errors.
pub fn from_json(input: &MessageDescriptor, text: &str) -> Result<DynamicMessage, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let message = DynamicMessage::deserialize(input.clone(), &mut deserializer)
        .and_then(|m| deserializer.end().map(|()| m))
        .map_err(|e| RequestError::new("--json", e.to_string()))?;
    Ok(message)
}

/// The value of `flag`'s field from the flag's occurrences (at least one).
pub fn field_value(flag: &FieldFlag, raw: &[String]) -> Result<Value, RequestError> {
    let err = |reason: String| RequestError::new(flag.flag(), reason);
    match flag.shape() {
        Shape::Scalar => {
            let last = raw.last().map(String::as_str).unwrap_or_default();
            scalar(&flag.field.kind(), last).map_err(err)
        }
        Shape::RepeatedScalar => {
            let mut items = Vec::new();
            for one in raw {
                for item in split_array(one) {
                    items.push(scalar(&flag.field.kind(), &item).map_err(err)?);
                }
            }
            Ok(Value::List(items))
        }
        Shape::Json => json_field(flag, raw).map_err(err),
    }
}

/// One occurrence of a repeated scalar flag: a JSON array's elements, or the value itself.
fn split_array(raw: &str) -> Vec<String> {
    if raw.trim_start().starts_with('[')
        && let Ok(serde_json::Value::Array(items)) = serde_json::from_str(raw)
    {
        return items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
    }
    vec![raw.to_owned()]
}

/// A scalar or enum value of `kind` from its command-line text.
pub fn scalar(kind: &Kind, raw: &str) -> Result<Value, String> {
    fn parse<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        raw.trim()
            .parse::<T>()
            .map_err(|e| format!("{raw:?} is not {what} ({e})"))
    }
    Ok(match kind {
        Kind::Double => Value::F64(parse(raw, "a number")?),
        Kind::Float => Value::F32(parse(raw, "a number")?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(parse(raw, "a 32-bit signed integer")?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(parse(raw, "a 64-bit signed integer")?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(parse(raw, "a 32-bit unsigned integer")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(parse(raw, "a 64-bit unsigned integer")?),
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{raw:?} is not a bool (true or false)")),
        },
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bytes => Value::Bytes(Bytes::from(base64(raw)?)),
        Kind::Enum(e) => Value::EnumNumber(enum_value(e, raw)?),
        Kind::Message(m) => {
            return Err(format!("{} takes JSON, not a single value", m.full_name()));
        }
    })
}

/// Standard or URL-safe base64, padded or not (both are proto3 JSON's bytes).
fn base64(raw: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let raw = raw.trim();
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(raw).ok())
        .ok_or_else(|| format!("{raw:?} is not base64"))
}

fn enum_value(e: &EnumDescriptor, raw: &str) -> Result<i32, String> {
    fields::enum_number(e, raw).ok_or_else(|| {
        format!(
            "{raw:?} is not a {}; one of: {}",
            e.name(),
            fields::short_names(e).join(", ")
        )
    })
}

/// A message, map or repeated message field from JSON, through the proto3 JSON mapping: the
/// occurrences are combined into `{"<field>": <value>}` and read as the containing message.
fn json_field(flag: &FieldFlag, raw: &[String]) -> Result<Value, String> {
    let field = &flag.field;
    let parse = |text: &str| -> Result<serde_json::Value, String> {
        serde_json::from_str(text).or_else(|e| match field.kind() {
            // A timestamp, duration…: its JSON is a string, which may come unquoted.
            Kind::Message(m) if !field.is_map() && fields::json_is_string(&m) => {
                Ok(serde_json::Value::String(text.to_owned()))
            }
            _ => Err(format!("not valid JSON ({e})")),
        })
    };
    let combined = if field.is_map() {
        let mut entries = serde_json::Map::new();
        for text in raw {
            match parse(text)? {
                serde_json::Value::Object(more) => entries.extend(more),
                other => return Err(format!("expected a JSON object, got {other}")),
            }
        }
        serde_json::Value::Object(entries)
    } else if field.is_list() {
        let mut items = Vec::new();
        for text in raw {
            match parse(text)? {
                serde_json::Value::Array(more) => items.extend(more),
                one => items.push(one),
            }
        }
        serde_json::Value::Array(items)
    } else {
        parse(raw.last().map(String::as_str).unwrap_or_default())?
    };
    let mut wrapper = serde_json::Map::new();
    wrapper.insert(field.json_name().to_owned(), combined);
    let holder = DynamicMessage::deserialize(
        field.parent_message().clone(),
        serde_json::Value::Object(wrapper),
    )
    .map_err(|e| e.to_string())?;
    Ok(holder.get_field(field).into_owned())
}
