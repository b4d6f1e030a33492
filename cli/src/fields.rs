//! How a request field is spelt on the command line and what its values look like.
//!
//! - scalars: `--field-name value`, typed (integers, bools, floats, strings, bytes as base64);
//! - enums: by name, full (`TENANT_TYPE_TRIAL`) or short (`trial`), any case, or by number;
//! - repeated scalars: the flag repeated, or one JSON array;
//! - messages, maps and repeated messages: JSON in the proto3 mapping (a repeated message
//!   also takes one element per flag); well-known types whose JSON is a string
//!   (`google.protobuf.Timestamp`: RFC 3339) also take that string without quotes.

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

use crate::catalog::{comment_at, kebab};

/// Options every RPC command has; a request field with one of these names is spelt
/// `--field-<name>` instead.
pub const RESERVED: &[&str] = &[
    "endpoint",
    "token",
    "idempotency-key",
    "output",
    "json",
    "help",
    "version",
];

/// The shape of a field's values on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// One typed value (scalar or enum).
    Scalar,
    /// Typed values: the flag repeated, or a JSON array.
    RepeatedScalar,
    /// A JSON value (message, map, repeated message).
    Json,
}

/// A request field and its flag.
#[derive(Debug, Clone)]
pub struct FieldFlag {
    pub field: FieldDescriptor,
    /// The flag without its dashes: `tenant-id`.
    pub long: String,
}

impl FieldFlag {
    pub fn shape(&self) -> Shape {
        shape(&self.field)
    }

    /// `--tenant-id`, as errors name it.
    pub fn flag(&self) -> String {
        format!("--{}", self.long)
    }
}

/// The flags of every field of `message`, in declaration order.
pub fn flags(message: &MessageDescriptor) -> Vec<FieldFlag> {
    message
        .fields()
        .map(|field| {
            let name = kebab(field.name());
            let long = if RESERVED.contains(&name.as_str()) {
                format!("field-{name}")
            } else {
                name
            };
            FieldFlag { field, long }
        })
        .collect()
}

pub fn shape(field: &FieldDescriptor) -> Shape {
    if field.is_map() {
        return Shape::Json;
    }
    let scalar = !matches!(field.kind(), Kind::Message(_));
    match (field.is_list(), scalar) {
        (false, true) => Shape::Scalar,
        (true, true) => Shape::RepeatedScalar,
        (_, false) => Shape::Json,
    }
}

/// Well-known message types whose proto3 JSON form is a string.
pub fn json_is_string(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
    )
}

/// Well-known message types whose proto3 JSON form is a string, number or bool: one
/// table cell.
pub fn json_is_scalar(message: &MessageDescriptor) -> bool {
    json_is_string(message)
        || matches!(
            message.full_name(),
            "google.protobuf.Int32Value"
                | "google.protobuf.UInt32Value"
                | "google.protobuf.FloatValue"
                | "google.protobuf.DoubleValue"
                | "google.protobuf.BoolValue"
        )
}

/// The placeholder in usage lines: `<UINT32>`, `<TenantType>`, `<JSON>`.
pub fn value_name(field: &FieldDescriptor) -> String {
    if field.is_map() {
        return "JSON".into();
    }
    match field.kind() {
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => "RFC3339".into(),
        Kind::Message(m) if m.full_name() == "google.protobuf.Duration" => "DURATION".into(),
        Kind::Message(_) => "JSON".into(),
        Kind::Enum(e) => e.name().to_owned(),
        Kind::Bytes => "BASE64".into(),
        kind => scalar_name(&kind).to_uppercase(),
    }
}

/// The field's type as help shows it: `uint32`, `repeated string`,
/// `tenantry.events.v1.TenantSettings (JSON)`, `map<string, bool> (JSON object)`.
pub fn type_label(field: &FieldDescriptor) -> String {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        return format!(
            "map<{}, {}> (JSON object)",
            kind_label(&entry.map_entry_key_field().kind()),
            kind_label(&entry.map_entry_value_field().kind())
        );
    }
    let base = kind_label(&field.kind());
    let base = match field.kind() {
        Kind::Message(m) if json_is_string(&m) => match m.full_name() {
            "google.protobuf.Timestamp" => format!("{base} (RFC 3339)"),
            "google.protobuf.Duration" => format!("{base} (e.g. 1.5s)"),
            _ => base,
        },
        Kind::Message(_) => format!("{base} (JSON)"),
        Kind::Bytes => "bytes (base64)".into(),
        _ => base,
    };
    if field.is_list() {
        match shape(field) {
            Shape::Json => format!("repeated {base}: a JSON array, or one element per flag"),
            _ => format!("repeated {base}: repeat the flag, or a JSON array"),
        }
    } else {
        base
    }
}

fn kind_label(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => scalar_name(other).to_owned(),
    }
}

/// The proto name of a scalar kind.
pub fn scalar_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(_) => "message",
        Kind::Enum(_) => "enum",
    }
}

/// The field's help: its comment, its type, and an enum's values or a message's fields.
pub fn help(field: &FieldDescriptor) -> String {
    let mut text = comment_at(&field.parent_file(), field.path())
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    if !text.is_empty() {
        text.push(' ');
    }
    text.push('[');
    text.push_str(&type_label(field));
    text.push(']');
    match field.kind() {
        Kind::Enum(e) => {
            text.push_str(" [values: ");
            text.push_str(&short_names(&e).join(", "));
            text.push(']');
        }
        Kind::Message(m) if !field.is_map() && !json_is_string(&m) => {
            let names: Vec<String> = m.fields().map(|f| f.json_name().to_owned()).collect();
            text.push_str(&format!(" [fields: {}]", names.join(", ")));
        }
        _ => {}
    }
    text
}

/// The prefix an enum's value names share: `TENANT_TYPE_` for `TenantType`.
fn enum_prefix(e: &EnumDescriptor) -> String {
    let mut prefix = String::new();
    let mut prev: Option<char> = None;
    for c in e.name().chars() {
        if c.is_uppercase() && prev.is_some_and(|p| !p.is_uppercase()) {
            prefix.push('_');
        }
        prefix.extend(c.to_uppercase());
        prev = Some(c);
    }
    prefix.push('_');
    prefix
}

/// An enum value's short name: `trial` for `TENANT_TYPE_TRIAL`.
pub fn short_name(e: &EnumDescriptor, full: &str) -> String {
    let prefix = enum_prefix(e);
    full.strip_prefix(&prefix)
        .filter(|rest| !rest.is_empty())
        .unwrap_or(full)
        .to_lowercase()
}

/// The short names help lists (not the `…_UNSPECIFIED` zero value, still accepted).
pub fn short_names(e: &EnumDescriptor) -> Vec<String> {
    e.values()
        .filter(|v| !(v.number() == 0 && v.name().ends_with("_UNSPECIFIED")))
        .map(|v| short_name(e, v.name()))
        .collect()
}

/// The enum value `raw` names: the full name, the short name (any case), or the number.
pub fn enum_number(e: &EnumDescriptor, raw: &str) -> Option<i32> {
    let wanted = raw.trim();
    if let Ok(number) = wanted.parse::<i32>() {
        return e.get_value(number).map(|v| v.number());
    }
    e.values()
        .find(|v| {
            v.name().eq_ignore_ascii_case(wanted)
                || short_name(e, v.name()).eq_ignore_ascii_case(wanted)
        })
        .map(|v| v.number())
}
