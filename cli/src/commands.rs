//! The clap commands generated from the catalog: one per service, one per RPC under it, a
//! flag per request field, and the connection options every RPC shares.

use clap::{Arg, ArgAction, ArgGroup, Command};
use prost_reflect::Kind;

use crate::catalog::{Catalog, Rpc, ServiceGroup, comment_at, summary};
use crate::fields::{self, FieldFlag, Shape};

/// Where calls go unless told otherwise: the gateway's public API edge, which forwards
/// every `tenantry.*` service and serves the gateway's own configuration API.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7000";

/// The option holding the whole request as JSON.
pub const JSON: &str = "json";
pub const ENDPOINT: &str = "endpoint";
pub const TOKEN: &str = "token";
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const OUTPUT: &str = "output";

/// clap's builder keeps `&'static str` names (its `string` feature would rebuild clap and
/// everything above it in the workspace): the commands are built once per process, so their
/// few kilobytes of names live as long as it anyway.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// `root` with a subcommand for every service of `catalog`.
pub fn add_services(mut root: Command, catalog: &Catalog) -> Command {
    for service in &catalog.services {
        root = root.subcommand(service_command(service));
    }
    root
}

/// `tenantry <service>`: its RPCs, and the connection options they share.
pub fn service_command(service: &ServiceGroup) -> Command {
    let about = service
        .comment
        .as_deref()
        .map(summary)
        .unwrap_or_else(|| format!("The {} service", service.name));
    let mut long = service.comment.clone().unwrap_or_else(|| about.clone());
    long.push_str(&format!(
        "\n\nEvery RPC of package {} (generated from its descriptors): \
         `tenantry {} <rpc> --help` shows an RPC's request fields.",
        service.package, service.name
    ));
    let mut command = Command::new(leak(service.name.clone()))
        .about(about)
        .long_about(long)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .args(connection_args(service));
    for rpc in &service.rpcs {
        command = command.subcommand(rpc_command(rpc));
    }
    command
}

fn connection_args(service: &ServiceGroup) -> [Arg; 4] {
    let variable = service.endpoint_variable();
    [
        Arg::new(ENDPOINT)
            .long(ENDPOINT)
            .value_name("URL")
            .env("TENANTRY_ENDPOINT")
            .global(true)
            .help_heading("Connection")
            .help(format!(
                "Where to call [default: {DEFAULT_ENDPOINT}, the gateway's public API edge]; \
                 {variable} sends this service's calls elsewhere (e.g. straight to the service)"
            )),
        Arg::new(TOKEN)
            .long(TOKEN)
            .value_name("TOKEN")
            .env("TENANTRY_TOKEN")
            .hide_env_values(true)
            .global(true)
            .help_heading("Connection")
            .help("Bearer token: an access token (`tenantry login` prints one) or an API key (tk_…)"),
        Arg::new(IDEMPOTENCY_KEY)
            .long(IDEMPOTENCY_KEY)
            .value_name("KEY")
            .global(true)
            .help_heading("Connection")
            .help("Sent as `idempotency-key` metadata: a retried command with the same key has one effect"),
        Arg::new(OUTPUT)
            .long(OUTPUT)
            .short('o')
            .value_name("FORMAT")
            .value_parser(["table", "json", "yaml"])
            .global(true)
            .help_heading("Connection")
            .help("How to print the response [default: a table on a terminal, proto3 JSON otherwise]"),
    ]
}

/// `tenantry <service> <rpc>`: a flag per request field, `--json` for the whole request.
pub fn rpc_command(rpc: &Rpc) -> Command {
    let input = rpc.method.input();
    let output = rpc.method.output();
    let comment = rpc.comment();
    let about = match (&comment, rpc.is_streaming()) {
        (_, true) => format!("{} (streaming: not callable from tenantry)", rpc.path()),
        (Some(c), false) => summary(c),
        (None, false) => rpc.path(),
    };
    let mut long = String::new();
    if let Some(c) = &comment {
        long.push_str(c);
        long.push_str("\n\n");
    }
    long.push_str(&format!(
        "Calls {} with a {} and prints the {}.",
        rpc.path(),
        input.full_name(),
        output.full_name()
    ));
    for (what, message) in [("Request", &input), ("Response", &output)] {
        if let Some(c) = comment_at(&message.parent_file(), message.path()) {
            long.push_str(&format!("\n{what}: {}", summary(&c)));
        }
    }
    if let Some(c) = comment_at(
        &rpc.method.parent_file(),
        rpc.method.parent_service().path(),
    ) {
        long.push_str(&format!(
            "\n{}: {}",
            rpc.method.parent_service().name(),
            summary(&c)
        ));
    }
    let mut command = Command::new(leak(rpc.command.clone()))
        .about(about)
        .long_about(long)
        .allow_negative_numbers(true)
        .arg(
            Arg::new(JSON)
                .long(JSON)
                .value_name("REQUEST")
                .help(format!(
                    "The whole {} as proto3 JSON, or `-` to read it from stdin; \
                     field flags override its fields",
                    input.name()
                )),
        )
        .next_help_heading("Request fields");
    let flags = fields::flags(&input);
    for flag in &flags {
        command = command.arg(field_arg(flag));
    }
    // Setting two fields of one oneof would silently keep only the last.
    for oneof in input.oneofs().filter(|o| !o.is_synthetic()) {
        let members: Vec<&'static str> = flags
            .iter()
            .filter(|f| {
                f.field
                    .containing_oneof()
                    .is_some_and(|o| o.name() == oneof.name())
            })
            .map(|f| leak(f.long.clone()))
            .collect();
        command = command.group(
            ArgGroup::new(leak(format!("oneof {}", oneof.name())))
                .args(members)
                .multiple(false),
        );
    }
    command
}

fn field_arg(flag: &FieldFlag) -> Arg {
    let long = leak(flag.long.clone());
    let arg = Arg::new(long)
        .long(long)
        .value_name(leak(fields::value_name(&flag.field)))
        .value_parser(clap::value_parser!(String))
        .help(fields::help(&flag.field));
    match flag.shape() {
        // `--verified` alone means true; `--verified false` too is accepted.
        Shape::Scalar if matches!(flag.field.kind(), Kind::Bool) => arg
            .num_args(0..=1)
            .default_missing_value("true")
            .action(ArgAction::Set),
        Shape::Scalar => arg.action(ArgAction::Set),
        Shape::RepeatedScalar => arg.action(ArgAction::Append),
        Shape::Json if flag.field.is_list() || flag.field.is_map() => arg.action(ArgAction::Append),
        Shape::Json => arg.action(ArgAction::Set),
    }
}
