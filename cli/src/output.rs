//! The response, printed: proto3 JSON (RFC 3339 times, enum names, lowerCamelCase names,
//! default values included so every field is there to read), YAML, or a table.
//!
//! A table shows a list response (one repeated message field beside scalars, such as
//! `ListTenantsResponse`) as one row per element with the element's scalar fields as
//! columns, and anything else as `key  value` rows with nested fields flattened
//! (`tenant.slug`).

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
};
use serde_json::Value;

use crate::fields::json_is_scalar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

impl Format {
    /// `--output`'s value; without it, a table for a person at a terminal and JSON for a
    /// program reading a pipe.
    pub fn choose(flag: Option<&str>, stdout_is_terminal: bool) -> Self {
        match flag {
            Some("table") => Self::Table,
            Some("yaml") => Self::Yaml,
            Some("json") => Self::Json,
            _ if stdout_is_terminal => Self::Table,
            _ => Self::Json,
        }
    }
}

fn options() -> SerializeOptions {
    SerializeOptions::new().skip_default_fields(false)
}

/// `message` in the proto3 JSON mapping.
pub fn to_json(message: &DynamicMessage) -> Result<Value, serde_json::Error> {
    message.serialize_with_options(serde_json::value::Serializer, &options())
}

/// `message` printed in `format`, ending with a newline.
pub fn render(message: &DynamicMessage, format: Format) -> Result<String, serde_json::Error> {
    Ok(match format {
        // Straight from the message: fields in declaration order.
        Format::Json => {
            let mut out = serde_json::Serializer::pretty(Vec::new());
            message.serialize_with_options(&mut out, &options())?;
            let mut text = String::from_utf8_lossy(&out.into_inner()).into_owned();
            text.push('\n');
            text
        }
        Format::Yaml => crate::yaml::to_string(&to_json(message)?),
        Format::Table => table(&message.descriptor(), &to_json(message)?),
    })
}

/// The repeated message field a list response is about, if `message` is one: its first
/// field, the only repeated message, beside scalars only (a page token, a count). A
/// session's memberships are a list too, but not what the response is about.
pub fn list_field(message: &MessageDescriptor) -> Option<FieldDescriptor> {
    let is_list = |f: &FieldDescriptor| f.is_list() && matches!(f.kind(), Kind::Message(_));
    let list = message.fields().next().filter(is_list)?;
    if message.fields().filter(is_list).count() > 1 {
        return None;
    }
    let others_scalar = message
        .fields()
        .filter(|f| f.number() != list.number())
        .all(|f| is_column(&f));
    others_scalar.then_some(list)
}

/// A field that fits one cell: not repeated, not a map, not a message with fields.
fn is_column(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && !field.is_map()
        && match field.kind() {
            Kind::Message(m) => json_is_scalar(&m),
            _ => true,
        }
}

/// `value` (the JSON of a `message`) as a table.
pub fn table(message: &MessageDescriptor, value: &Value) -> String {
    let Some(list) = list_field(message) else {
        if value.as_object().is_some_and(serde_json::Map::is_empty) {
            return "(empty response)\n".into();
        }
        let mut rows = Vec::new();
        flatten("", value, Some(message), &mut rows);
        return columns(
            &rows
                .into_iter()
                .map(|(k, v)| vec![k, v])
                .collect::<Vec<_>>(),
        );
    };
    let Kind::Message(element) = list.kind() else {
        return String::new();
    };
    let fields: Vec<FieldDescriptor> = element.fields().filter(is_column).collect();
    let mut grid = vec![
        fields
            .iter()
            .map(|f| f.name().to_uppercase())
            .collect::<Vec<_>>(),
    ];
    let empty = Vec::new();
    let items = value
        .get(list.json_name())
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for item in items {
        grid.push(
            fields
                .iter()
                .map(|f| item.get(f.json_name()).map(cell).unwrap_or_default())
                .collect(),
        );
    }
    let mut out = columns(&grid);
    // The other fields (a next page token) below the rows, when they say something.
    for field in message.fields().filter(|f| f.number() != list.number()) {
        if let Some(v) = value.get(field.json_name()).filter(|v| !is_empty(v)) {
            out.push_str(&format!("{}: {}\n", field.json_name(), cell(v)));
        }
    }
    out
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty() || s == "0",
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// `key  value` rows for every leaf of `value`, in the message's field order (map entries
/// and untyped JSON in key order).
fn flatten(
    prefix: &str,
    value: &Value,
    message: Option<&MessageDescriptor>,
    out: &mut Vec<(String, String)>,
) {
    let key = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let typed = message.filter(|m| !m.full_name().starts_with("google.protobuf."));
            match typed {
                Some(m) => {
                    for field in m.fields() {
                        if let Some(v) = map.get(field.json_name()) {
                            let inner = match field.kind() {
                                Kind::Message(inner) if !field.is_map() => Some(inner),
                                _ => None,
                            };
                            // A map's values may be messages: keep their type for the entries.
                            let map_value = match field.kind() {
                                Kind::Message(entry) if field.is_map() => {
                                    match entry.map_entry_value_field().kind() {
                                        Kind::Message(v) => Some(v),
                                        _ => None,
                                    }
                                }
                                _ => None,
                            };
                            if field.is_map() {
                                flatten_map(&key(field.json_name()), v, map_value.as_ref(), out);
                            } else {
                                flatten(&key(field.json_name()), v, inner.as_ref(), out);
                            }
                        }
                    }
                }
                None => {
                    for (k, v) in map {
                        flatten(&key(k), v, None, out);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && !items.iter().all(is_leaf) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, message, out);
            }
        }
        leaf => out.push((prefix.to_owned(), cell(leaf))),
    }
}

fn flatten_map(
    prefix: &str,
    value: &Value,
    values: Option<&MessageDescriptor>,
    out: &mut Vec<(String, String)>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, values, out);
            }
        }
        leaf => out.push((prefix.to_owned(), cell(leaf))),
    }
}

fn is_leaf(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// One cell: strings bare, on one line; arrays of scalars joined by commas.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        Value::Array(items) if items.iter().all(is_leaf) => {
            if items.is_empty() {
                "[]".into()
            } else {
                items.iter().map(cell).collect::<Vec<_>>().join(", ")
            }
        }
        other => other.to_string(),
    }
}

/// Rows of cells, left-aligned in columns two spaces apart.
fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(text);
            } else {
                line.push_str(text);
                line.push_str(&" ".repeat(widths[c] - text.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
