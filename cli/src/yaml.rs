//! A small YAML emitter for JSON values (block style, two-space indents), so `--output yaml`
//! needs no YAML crate. A string is quoted (as a JSON string, which is valid YAML) whenever
//! a YAML reader could take it for something else: a number, a bool, null, a date, or text
//! with YAML's indicators.

use serde_json::Value;

/// `value` as a YAML document, ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => object(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => array(items, 0, &mut out),
        leaf => {
            out.push_str(&scalar(leaf));
            out.push('\n');
        }
    }
    out
}

fn object(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of an array element follows its `- ` on the same line.
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(key));
        out.push(':');
        nested(value, indent, out);
    }
}

fn array(items: &[Value], indent: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => object(map, indent + 2, out),
            Value::Array(inner) if !inner.is_empty() => array(inner, indent + 2, out),
            leaf => {
                out.push_str(&scalar(leaf));
                out.push('\n');
            }
        }
    }
}

/// What follows `key:`: a scalar on the same line, or a block below it.
fn nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            object(map, indent + 2, out);
        }
        // A sequence under a key may sit at the key's indentation (the usual style).
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            array(items, indent, out);
        }
        leaf => {
            out.push(' ');
            out.push_str(&scalar(leaf));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// `s` bare when it can only be read back as that string, else double-quoted.
pub fn string(s: &str) -> String {
    if needs_quotes(s) {
        // A JSON string is a YAML double-quoted scalar: same escapes.
        serde_json::Value::String(s.to_owned()).to_string()
    } else {
        s.to_owned()
    }
}

fn needs_quotes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n",
    ];
    let Some(first) = s.chars().next() else {
        return true;
    };
    WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
        // Numbers, dates, times and versions all start like this.
        || first.is_ascii_digit()
        || "-+.?:,[]{}#&*!|>'\"%@`=<".contains(first)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(|c| c.is_control() || c == '\u{feff}')
}
