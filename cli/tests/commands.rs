//! The commands generated from descriptors: names, help from the proto comments, where
//! calls go, and RPCs the CLI refuses.

mod common;

use clap::CommandFactory as _;
use tenantry_cli::call::{CallError, Target};
use tenantry_cli::catalog::kebab;
use tenantry_cli::output::Format;
use tenantry_cli::{Catalog, CliError, commands};

#[test]
fn every_service_package_is_a_command_and_every_method_an_rpc() {
    let catalog = Catalog::builtin().unwrap();
    let names: Vec<&str> = catalog.services.iter().map(|s| s.name.as_str()).collect();
    for name in ["auth", "billing", "gateway", "tenant"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let tenant = catalog.service("tenant").unwrap();
    let create = tenant.rpc("create-tenant").unwrap();
    assert_eq!(
        create.path(),
        "/tenantry.tenant.v1.TenantService/CreateTenant"
    );
    assert!(catalog.service("auth").unwrap().rpc("add-member").is_some());
    assert!(
        catalog
            .service("gateway")
            .unwrap()
            .rpc("upsert-route")
            .is_some()
    );
    assert_eq!(
        catalog
            .service("billing")
            .unwrap()
            .rpc("change-plan")
            .unwrap()
            .path(),
        "/tenantry.billing.v1.BillingService/ChangePlan"
    );
    // Every method of every Tenantry service in the descriptor set, once each.
    let pool = prost_reflect::DescriptorPool::decode(tenantry_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods: Vec<String> = pool
        .services()
        .filter(|s| s.package_name().starts_with("tenantry."))
        .flat_map(|s| {
            s.methods()
                .map(|m| format!("/{}/{}", s.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut paths: Vec<String> = catalog
        .services
        .iter()
        .flat_map(|s| s.rpcs.iter().map(|r| r.path()))
        .collect();
    methods.sort();
    paths.sort();
    assert_eq!(paths, methods);
    assert!(paths.len() >= 50, "{paths:?}");
}

#[test]
fn method_names_become_kebab_case() {
    assert_eq!(kebab("CreateTenant"), "create-tenant");
    assert_eq!(kebab("GetAPIKey"), "get-api-key");
    assert_eq!(kebab("RotateSigningKey"), "rotate-signing-key");
    assert_eq!(kebab("ListV2Things"), "list-v2-things");
}

#[test]
fn a_method_name_two_services_share_is_qualified_by_service() {
    let demo = common::demo();
    let names: Vec<&str> = demo.rpcs.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(names, ["do-everything", "demo-list", "watch", "other-list"]);
}

#[test]
fn help_shows_the_comments_types_and_enum_values() {
    let demo = common::demo();
    let mut service = commands::service_command(&demo);
    let about = service.get_about().unwrap().to_string();
    assert_eq!(about, "The demo service: every kind of field.");
    let listing = service.render_long_help().to_string();
    assert!(
        listing.contains("do-everything") && listing.contains("member: does everything at once"),
        "{listing}"
    );
    let rpc = service.find_subcommand_mut("do-everything").unwrap();
    let help = rpc.render_long_help().to_string();
    for expected in [
        "member: does everything at once",
        "Calls /tenantry.demo.v1.DemoService/DoEverything",
        "--count <INT32>",
        "How many, at most 10. [int32]",
        "--color <Color>",
        "[values: red, dark_blue]",
        "--blob <BASE64>",
        "--at <RFC3339>",
        "--scores <JSON>",
        "map<string, int32> (JSON object)",
        "--inner <JSON>",
        "[fields: label, size]",
        "repeated string: repeat the flag, or a JSON array",
        "--field-token <STRING>",
        "--json <REQUEST>",
        "--endpoint <URL>",
        "TENANTRY_DEMO_ENDPOINT",
    ] {
        assert!(help.contains(expected), "{expected:?} not in:\n{help}");
    }
}

#[test]
fn the_real_commands_are_well_formed() {
    let catalog = Catalog::builtin().unwrap();
    let root = commands::add_services(clap::Command::new("tenantry"), &catalog);
    root.debug_assert();
    let demo = commands::add_services(clap::Command::new("tenantry"), &common::catalog());
    demo.debug_assert();
    // A derive-built root takes them too (as the binary does).
    #[derive(clap::Parser)]
    struct Root;
    commands::add_services(Root::command(), &catalog).debug_assert();
}

fn target(args: &[&str], env: &[(&str, &str)]) -> Result<Target, CallError> {
    let mut all = vec!["do-everything"];
    all.extend_from_slice(args);
    let (_, matches) = common::parse(&all).unwrap();
    Target::from_matches(&matches, &common::demo(), |name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

#[test]
fn calls_go_to_the_flag_then_the_service_variable_then_the_edge() {
    assert_eq!(target(&[], &[]).unwrap().endpoint, "http://127.0.0.1:7000");
    let service = [("TENANTRY_DEMO_ENDPOINT", "127.0.0.1:7009")];
    assert_eq!(
        target(&[], &service).unwrap().endpoint,
        "http://127.0.0.1:7009"
    );
    assert_eq!(
        target(&["--endpoint", "http://10.0.0.1:7000"], &service)
            .unwrap()
            .endpoint,
        "http://10.0.0.1:7000"
    );
    let with = target(&["--token", "t0k", "--idempotency-key", "k-1"], &[]).unwrap();
    assert_eq!(with.token.as_deref(), Some("t0k"));
    assert_eq!(with.idempotency_key.as_deref(), Some("k-1"));
}

#[test]
fn a_tls_endpoint_is_refused_with_a_reason() {
    let e = target(&["--endpoint", "https://api.example.com"], &[]).unwrap_err();
    let e = CliError::from(e);
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("--endpoint: https://api.example.com: TLS"),
        "{e}"
    );
}

#[test]
fn output_is_a_table_on_a_terminal_and_json_in_a_pipe() {
    assert_eq!(Format::choose(None, true), Format::Table);
    assert_eq!(Format::choose(None, false), Format::Json);
    assert_eq!(Format::choose(Some("yaml"), true), Format::Yaml);
    assert_eq!(Format::choose(Some("json"), true), Format::Json);
    assert_eq!(Format::choose(Some("table"), false), Format::Table);
}

#[tokio::test]
async fn a_streaming_rpc_is_refused_before_any_call() {
    let demo = common::demo();
    let matches = commands::service_command(&demo)
        // Nothing listens there: the refusal must come first.
        .try_get_matches_from(["demo", "watch", "--endpoint", "http://127.0.0.1:9"])
        .unwrap();
    let e = tenantry_cli::run(&demo, &matches).await.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("/tenantry.demo.v1.DemoService/Watch is a streaming RPC"),
        "{e}"
    );
}

#[tokio::test]
async fn a_bad_flag_value_is_a_usage_error_naming_it() {
    let demo = common::demo();
    let matches = commands::service_command(&demo)
        .try_get_matches_from(["demo", "do-everything", "--count", "many"])
        .unwrap();
    let e = tenantry_cli::run(&demo, &matches).await.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().starts_with("error: --count: "), "{e}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_not_a_status() {
    let demo = common::demo();
    let matches = commands::service_command(&demo)
        .try_get_matches_from(["demo", "do-everything", "--endpoint", "http://127.0.0.1:9"])
        .unwrap();
    let e = tenantry_cli::run(&demo, &matches).await.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        e.to_string()
            .starts_with("error: cannot reach http://127.0.0.1:9"),
        "{e}"
    );
}
