//! The built binary's help: the services, their RPCs and the request fields, all from the
//! descriptors and their comments.

use std::process::Command;

fn tenantry(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .env_remove("TENANTRY_ENDPOINT")
        .env_remove("TENANTRY_TOKEN")
        .output()
        .expect("the tenantry binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The one-line description `listing` gives `name` in its command list.
fn listed<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing.lines().find_map(|line| {
        let mut words = line.trim_start().splitn(2, ' ');
        (words.next() == Some(name)).then(|| words.next().unwrap_or("").trim())
    })
}

#[test]
fn the_top_level_help_lists_the_services_beside_dev_and_login() {
    let (code, help, _) = tenantry(&["--help"]);
    assert_eq!(code, Some(0));
    for command in [
        "dev", "login", "auth", "billing", "gateway", "sync", "tenant",
    ] {
        assert!(
            listed(&help, command).is_some(),
            "{command} not in:\n{help}"
        );
    }
    assert_eq!(
        listed(&help, "tenant"),
        Some(
            "The tenant service: lifecycle, settings, feature flags and custom domains of tenants."
        )
    );
}

#[test]
fn a_service_help_lists_its_rpcs_with_their_comments() {
    let (code, help, _) = tenantry(&["auth", "--help"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        listed(&help, "add-member"),
        Some("platform_admin: adds an existing user (the first owner of a tenant, say)")
    );
    assert_eq!(listed(&help, "sign-up"), Some("public"));
    assert!(help.contains("--endpoint <URL>") && help.contains("TENANTRY_AUTH_ENDPOINT"));
    let (_, tenant, _) = tenantry(&["tenant", "--help"]);
    assert_eq!(listed(&tenant, "create-tenant"), Some("platform_admin"));
    assert_eq!(listed(&tenant, "mark-for-decommission"), Some("owner"));
}

#[test]
fn an_rpc_help_shows_each_field_with_its_type_and_comment() {
    let (code, help, _) = tenantry(&["tenant", "list-tenants", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        help.contains("Calls /tenantry.tenant.v1.TenantService/ListTenants"),
        "{help}"
    );
    assert!(help.contains("--page-size <UINT32>"), "{help}");
    assert!(help.contains("At most 500; 0 means 50. [uint32]"), "{help}");
    let (_, create, _) = tenantry(&["tenant", "create-tenant", "--help"]);
    assert!(create.contains("--type <TenantType>"), "{create}");
    assert!(
        create.contains("[values: enterprise, business, trial]"),
        "{create}"
    );
    assert!(
        create.contains("Omitted fields take defaults: UTC, USD, en, 365 days."),
        "{create}"
    );
    // The token's value never shows, even when set.
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["tenant", "create-tenant", "--help"])
        .env("TENANTRY_TOKEN", "secret-token-value")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[env: TENANTRY_TOKEN]"), "{text}");
    assert!(!text.contains("secret-token-value"));
}

#[test]
fn a_service_without_an_rpc_is_a_usage_error_that_shows_the_rpcs() {
    let (code, _, stderr) = tenantry(&["gateway"]);
    assert_eq!(code, Some(2));
    assert!(listed(&stderr, "upsert-route").is_some(), "{stderr}");
}
