//! Command-line arguments → the request message: every field kind, enum names, `--json`
//! with flags over it, and errors that name the offending flag.

mod common;

use common::{json_of, parse, request};
use serde_json::json;

#[test]
fn scalars_are_typed() {
    let message = request(&[
        "--count",
        "-3",
        "--big",
        "9007199254740993",
        "--small",
        "7",
        "--huge",
        "18446744073709551615",
        "--signed",
        "-12",
        "--ratio",
        "0.25",
        "--weight",
        "1.5",
        "--display-name",
        "Acme Corp",
        "--blob",
        "aGVsbG8=",
    ])
    .unwrap();
    assert_eq!(
        json_of(&message),
        json!({
            "count": -3, "big": "9007199254740993", "small": 7, "huge": "18446744073709551615",
            "signed": -12, "ratio": 0.25, "weight": 1.5, "displayName": "Acme Corp",
            "blob": "aGVsbG8="
        })
    );
}

#[test]
fn bools_take_a_value_or_none() {
    assert_eq!(
        json_of(&request(&["--enabled"]).unwrap()),
        json!({"enabled": true})
    );
    assert_eq!(
        json_of(&request(&["--enabled", "TRUE"]).unwrap()),
        json!({"enabled": true})
    );
    // false is proto3's default: set, it is simply not sent.
    assert_eq!(json_of(&request(&["--enabled=false"]).unwrap()), json!({}));
}

#[test]
fn bytes_take_url_safe_and_unpadded_base64() {
    assert_eq!(
        json_of(&request(&["--blob=-_8"]).unwrap()),
        json!({"blob": "+/8="})
    );
}

#[test]
fn enums_take_full_short_and_any_case_names() {
    for name in [
        "COLOR_DARK_BLUE",
        "dark_blue",
        "Dark_Blue",
        "color_dark_blue",
        "2",
    ] {
        assert_eq!(
            json_of(&request(&["--color", name]).unwrap()),
            json!({"color": "COLOR_DARK_BLUE"}),
            "{name}"
        );
    }
}

#[test]
fn a_wrong_enum_name_lists_the_values() {
    let e = request(&["--color", "green"]).unwrap_err();
    assert_eq!(e.flag, "--color");
    assert_eq!(
        e.to_string(),
        r#"--color: "green" is not a Color; one of: red, dark_blue"#
    );
}

#[test]
fn repeated_scalars_repeat_the_flag_or_take_a_json_array() {
    let message = request(&[
        "--tags",
        "a",
        "--tags",
        r#"["b","c"]"#,
        "--sizes",
        "[1, 2]",
        "--sizes",
        "3",
        "--colors",
        "red",
        "--colors",
        r#"["COLOR_DARK_BLUE"]"#,
    ])
    .unwrap();
    assert_eq!(
        json_of(&message),
        json!({"tags": ["a", "b", "c"], "colors": ["COLOR_RED", "COLOR_DARK_BLUE"],
               "sizes": [1, 2, 3]})
    );
}

#[test]
fn messages_maps_and_repeated_messages_take_json() {
    let message = request(&[
        "--inner",
        r#"{"label": "x", "size": 2}"#,
        "--scores",
        r#"{"a": 1}"#,
        "--scores",
        r#"{"b": 2}"#,
        "--items",
        r#"[{"label": "one"}]"#,
        "--items",
        r#"{"label": "two"}"#,
    ])
    .unwrap();
    assert_eq!(
        json_of(&message),
        json!({"inner": {"label": "x", "size": 2}, "scores": {"a": 1, "b": 2},
               "items": [{"label": "one"}, {"label": "two"}]})
    );
}

#[test]
fn a_timestamp_takes_rfc3339_with_or_without_quotes() {
    for value in ["2026-03-01T09:00:00Z", r#""2026-03-01T09:00:00Z""#] {
        assert_eq!(
            json_of(&request(&["--at", value]).unwrap()),
            json!({"at": "2026-03-01T09:00:00Z"})
        );
    }
}

#[test]
fn json_gives_the_whole_request_and_flags_override_its_fields() {
    let message = request(&[
        "--json",
        r#"{"count": 1, "displayName": "from json", "tags": ["j"], "inner": {"label": "j"}}"#,
        "--display-name",
        "from flag",
        "--tags",
        "f",
    ])
    .unwrap();
    assert_eq!(
        json_of(&message),
        json!({"count": 1, "displayName": "from flag", "tags": ["f"], "inner": {"label": "j"}})
    );
}

#[test]
fn json_takes_proto_field_names_too() {
    let message = request(&["--json", r#"{"display_name": "x", "color": "COLOR_RED"}"#]).unwrap();
    assert_eq!(
        json_of(&message),
        json!({"displayName": "x", "color": "COLOR_RED"})
    );
}

#[test]
fn a_field_named_like_an_option_gets_a_field_prefix() {
    let message = request(&["--field-token", "abc", "--token", "bearer-secret"]).unwrap();
    assert_eq!(json_of(&message), json!({"token": "abc"}));
}

#[test]
fn errors_name_the_offending_flag() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--count", "ten"],
            "--count",
            "is not a 32-bit signed integer",
        ),
        (&["--count", "3000000000"], "--count", "too large"),
        (
            &["--small", "-1"],
            "--small",
            "is not a 32-bit unsigned integer",
        ),
        (&["--ratio", "half"], "--ratio", "is not a number"),
        (&["--enabled", "maybe"], "--enabled", "is not a bool"),
        (&["--blob", "not base64!"], "--blob", "is not base64"),
        (&["--inner", "{label: x}"], "--inner", "not valid JSON"),
        (&["--inner", r#"{"colour": 1}"#], "--inner", "colour"),
        (&["--scores", "[1]"], "--scores", "expected a JSON object"),
        (
            &["--scores", r#"{"a": "many"}"#],
            "--scores",
            "invalid digit",
        ),
        (&["--at", "yesterday"], "--at", "invalid rfc3339 timestamp"),
        (
            &["--sizes", "1", "--sizes", "x"],
            "--sizes",
            r#""x" is not"#,
        ),
        (&["--json", r#"{"nope": 1}"#], "--json", "nope"),
        (&["--json", "{"], "--json", "EOF"),
    ];
    for (args, flag, reason) in cases {
        let e = request(args).unwrap_err();
        assert_eq!(&e.flag, flag, "{args:?}: {e}");
        assert!(e.to_string().starts_with(&format!("{flag}: ")), "{e}");
        assert!(e.reason.contains(reason), "{args:?}: {e}");
    }
}

#[test]
fn two_fields_of_one_oneof_are_a_usage_error() {
    let e = parse(&["do-everything", "--left", "a", "--right", "b"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    let text = e.to_string();
    assert!(
        text.contains("--left") && text.contains("--right"),
        "{text}"
    );
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let e = parse(&["do-everything", "--colour", "red"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
}
