//! Responses printed as proto3 JSON, YAML and tables.

mod common;

use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::json;
use tenantry_cli::output::{self, Format, list_field};
use tenantry_cli::{request, yaml};

fn message(pool: &DescriptorPool, name: &str, json: serde_json::Value) -> DynamicMessage {
    let descriptor = pool.get_message_by_name(name).unwrap();
    request::from_json(&descriptor, &json.to_string()).unwrap()
}

fn tenant_response() -> DynamicMessage {
    let pool = common::pool();
    message(
        &pool,
        "tenantry.tenant.v1.GetTenantResponse",
        json!({"tenant": {
            "tenantId": "0190f0c2-0000-7000-8000-000000000001", "name": "Acme Corp",
            "slug": "acme", "type": "TENANT_TYPE_TRIAL", "status": "TENANT_STATUS_ACTIVE",
            "featureFlags": {"beta": true},
            "domains": [{"name": "acme.example", "verified": false, "verificationToken": "v1"}],
            "createdAt": "2026-03-01T09:00:00Z", "version": "7"}}),
    )
}

#[test]
fn json_follows_the_proto3_mapping_with_every_field() {
    let text = output::render(&tenant_response(), Format::Json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tenant = &value["tenant"];
    assert_eq!(tenant["createdAt"], "2026-03-01T09:00:00Z");
    assert_eq!(tenant["type"], "TENANT_TYPE_TRIAL");
    assert_eq!(tenant["version"], "7");
    // Defaults are printed: a reader need not know proto3 omits them.
    assert_eq!(tenant["trialExpired"], false);
    assert_eq!(tenant["suspensionReason"], "");
    // Unset messages stay unset (no 1970 timestamps).
    assert!(tenant.get("updatedAt").is_none(), "{text}");
    // In the proto's field order, not sorted.
    let order: Vec<usize> = ["tenantId", "name", "slug", "type", "createdAt", "version"]
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn a_single_message_is_a_table_of_flattened_keys() {
    let text = output::render(&tenant_response(), Format::Table).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let row = |key: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("tenant.slug"), "acme");
    assert_eq!(row("tenant.name"), "Acme Corp");
    assert_eq!(row("tenant.type"), "TENANT_TYPE_TRIAL");
    assert_eq!(row("tenant.featureFlags.beta"), "true");
    assert_eq!(row("tenant.domains[0].name"), "acme.example");
    assert_eq!(row("tenant.createdAt"), "2026-03-01T09:00:00Z");
    // Values line up in one column.
    let column = lines[0].find("0190f0c2").unwrap();
    assert_eq!(lines[2].find("acme").unwrap(), column, "{text}");
    // Field order: the id before the slug.
    assert!(text.find("tenant.tenantId").unwrap() < text.find("tenant.slug").unwrap());
}

#[test]
fn a_list_is_a_table_of_rows_with_the_scalar_fields_as_columns() {
    let pool = common::pool();
    let list = message(
        &pool,
        "tenantry.tenant.v1.ListTenantsResponse",
        json!({"tenants": [
                {"tenantId": "t-1", "name": "Acme", "slug": "acme", "type": "TENANT_TYPE_TRIAL",
                 "createdAt": "2026-03-01T09:00:00Z", "featureFlags": {"x": true}},
                {"tenantId": "t-2", "name": "Globex Corporation", "slug": "globex"}],
               "nextPageToken": "page-2"}),
    );
    let text = output::render(&list, Format::Table).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        &header[..4],
        ["TENANT_ID", "NAME", "SLUG", "TYPE"],
        "{text}"
    );
    assert!(header.contains(&"CREATED_AT"));
    // Maps, lists and messages are not columns.
    assert!(!header.contains(&"FEATURE_FLAGS") && !header.contains(&"SETTINGS"));
    assert!(lines[1].starts_with("t-1"), "{text}");
    assert!(lines[1].contains("2026-03-01T09:00:00Z"));
    let slug = lines[0].find("SLUG").unwrap();
    assert_eq!(&lines[2][slug..slug + 6], "globex", "{text}");
    assert_eq!(lines[3], "nextPageToken: page-2");
}

#[test]
fn list_responses_are_told_from_other_responses() {
    let pool = common::pool();
    let is_list = |name: &str| list_field(&pool.get_message_by_name(name).unwrap()).is_some();
    assert!(is_list("tenantry.tenant.v1.ListTenantsResponse"));
    assert!(is_list("tenantry.auth.v1.ListMembersResponse"));
    assert!(is_list("tenantry.gateway.v1.ListRoutesResponse"));
    // A session has a list of memberships, but it is not what the response is about.
    assert!(!is_list("tenantry.auth.v1.SessionResponse"));
    assert!(!is_list("tenantry.tenant.v1.GetTenantResponse"));
}

#[test]
fn an_empty_response_says_so() {
    let pool = common::pool();
    let empty = message(&pool, "tenantry.auth.v1.LogoutResponse", json!({}));
    assert_eq!(
        output::render(&empty, Format::Table).unwrap(),
        "(empty response)\n"
    );
    assert_eq!(output::render(&empty, Format::Yaml).unwrap(), "{}\n");
    assert_eq!(output::render(&empty, Format::Json).unwrap(), "{}\n");
}

#[test]
fn yaml_nests_blocks_and_quotes_what_would_read_back_otherwise() {
    let value = json!({
        "tenant": {"slug": "acme", "version": "7", "createdAt": "2026-03-01T09:00:00Z",
                   "verified": false, "note": "a: b", "empty": "", "flag": "yes",
                   "multi": "line one\nline two", "url": "http://x.example/a#b"},
        "domains": [{"name": "acme.example", "tags": ["a", "b"]}, {"name": "b.example"}],
        "nested": [[1, 2], []],
        "none": {},
    });
    let expected = r#"domains:
- name: acme.example
  tags:
  - a
  - b
- name: b.example
nested:
- - 1
  - 2
- []
none: {}
tenant:
  createdAt: "2026-03-01T09:00:00Z"
  empty: ""
  flag: "yes"
  multi: "line one\nline two"
  note: "a: b"
  slug: acme
  url: http://x.example/a#b
  verified: false
  version: "7"
"#;
    assert_eq!(yaml::to_string(&value), expected);
}

#[test]
fn yaml_quotes_strings_that_look_like_other_types() {
    for plain in ["acme", "TENANT_TYPE_TRIAL", "tk_abc123", "Acme Corp", "a-b"] {
        assert_eq!(yaml::string(plain), plain);
    }
    for quoted in [
        "",
        "true",
        "False",
        "null",
        "~",
        "no",
        "123",
        "1.5",
        "-1",
        "2026-03-01",
        " lead",
        "trail ",
        "#comment",
        "- item",
        "key:",
        "*alias",
        "!tag",
        "{x}",
        "@at",
        "`tick",
    ] {
        assert!(
            yaml::string(quoted).starts_with('"'),
            "{quoted:?} must be quoted"
        );
    }
}

#[test]
fn yaml_of_a_response_uses_enum_names_and_rfc3339() {
    let text = output::render(&tenant_response(), Format::Yaml).unwrap();
    assert!(text.starts_with("tenant:\n"), "{text}");
    assert!(text.contains("\n  type: TENANT_TYPE_TRIAL\n"), "{text}");
    assert!(
        text.contains("\n  createdAt: \"2026-03-01T09:00:00Z\"\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  featureFlags:\n    beta: true\n"),
        "{text}"
    );
}
