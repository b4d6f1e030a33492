//! The built `tenantry` binary against the tenant, auth, billing, orchestration, sync and
//! gateway services started in-process on the real NATS, Postgres and Redis.
//!
//! Every RPC of every service in the descriptor set is called through the CLI, so a new
//! service or RPC is covered the day it is added (a service this test does not start fails
//! it, by name). Each call must reach its service's handler: exit 0, or a status the server
//! answered — never a CLI, codec or routing failure. A few calls carry real arguments and
//! check what comes back in each output format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use tenantry_auth::{AuthConfig, AuthService};
use tenantry_billing::{BillingConfig, BillingService};
use tenantry_cli::Catalog;
use tenantry_gateway::{GatewayConfig, GatewayService};
use tenantry_kit::service::Service;
use tenantry_orchestration::{OrchestrationConfig, OrchestrationService};
use tenantry_sync::{SyncConfig, SyncService};
use tenantry_tenant::{TenantConfig, TenantService};
use tenantry_testkit::TestEnv;
use uuid::Uuid;

/// Statuses that say the call never reached a handler (or broke on the way back: the CLI's
/// codec reports a response it cannot decode as INTERNAL). A platform admin satisfies every
/// declared role, so PERMISSION_DENIED means the access policy did not know the RPC's path.
/// UNAUTHENTICATED is a handler's answer too (a public RPC given no refresh token): that
/// the token itself is sent and accepted is checked for each service on its own.
const NOT_A_HANDLER_ANSWER: &[&str] = &[
    "UNIMPLEMENTED",
    "UNKNOWN",
    "INTERNAL",
    "UNAVAILABLE",
    "PERMISSION_DENIED",
];

const CODES: &[&str] = &[
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The services of one test, the gateway's edge forwarding to the others.
struct World {
    /// Each service's own address, by its name on the command line.
    services: BTreeMap<&'static str, SocketAddr>,
    edge: SocketAddr,
    token: String,
    _key_dir: KeyDir,
    /// Last: dropping it stops the services and deletes the streams and schemas.
    env: TestEnv,
}

/// The auth service's master key, deleted with the test.
struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ADMIN_EMAIL: &str = "root@tenantry.test";

/// The services as `tenantry dev` runs them: auth with a bootstrap platform admin, the
/// others verifying its tokens through its JWKS (the auth service trusts only the keys it
/// signs with, so a test key's token would not do for its RPCs), and that admin's token
/// from `tenantry login`.
async fn start() -> World {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("{}-cli", env.id));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("master.key");
    std::fs::write(&key, "B2kq3G8p0xZl9Yb2gV7m1Q5sR4tU6wXyZaBcDeFgHiI=").unwrap();
    let password = dir.join("admin.password");
    std::fs::write(&password, "bootstrap-admin-passphrase\n").unwrap();
    let mut auth = AuthConfig::ephemeral(key);
    auth.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
    auth.bootstrap_admin_password_file = Some(password.clone());
    let auth = env.start(AuthService::new(auth)).await;
    let mut common = env.common();
    common.jwks = format!("http://{}/.well-known/jwks.json", auth.addr);
    let tenant = env
        .start_with(&common, TenantService::new(TenantConfig::ephemeral()))
        .await;
    let billing = env
        .start_with(&common, BillingService::new(BillingConfig::ephemeral()))
        .await;
    // Its state directory is under the world's own, deleted with it.
    let orchestration = env
        .start_with(
            &common,
            OrchestrationService::new(OrchestrationConfig::ephemeral(
                std::env::temp_dir().join(&env.id).join("orchestration"),
                vec![],
            )),
        )
        .await;
    let sync_key = dir.join("sync-master.key");
    std::fs::write(&sync_key, "c3luYy1tYXN0ZXIta2V5LWZvci10aGUtY2xpLXRlc3Q=").unwrap();
    let sync = env
        .start_with(&common, SyncService::new(SyncConfig::ephemeral(sync_key)))
        .await;
    let mut gateway = GatewayConfig::ephemeral();
    gateway.services = format!(
        "tenant={},auth={},billing={},orchestration={},sync={}",
        tenant.addr, auth.addr, billing.addr, orchestration.addr, sync.addr
    );
    let gateway = env.start_with(&common, GatewayService::new(gateway)).await;
    let mut world = World {
        services: BTreeMap::from([
            ("auth", auth.addr),
            ("tenant", tenant.addr),
            ("billing", billing.addr),
            ("orchestration", orchestration.addr),
            ("sync", sync.addr),
            ("gateway", gateway.addr),
        ]),
        edge: gateway.addr,
        token: String::new(),
        _key_dir: KeyDir(dir),
        env,
    };
    let password = password.display().to_string();
    let login = world
        .cli(
            Via::Direct,
            &[
                "login",
                "--email",
                ADMIN_EMAIL,
                "--password-file",
                &password,
            ],
            None,
        )
        .await;
    assert_eq!(login.code, Some(0), "tenantry login: {}", login.stderr);
    world.token = login.stdout.trim().to_owned();
    assert!(!world.token.is_empty());
    world
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The status code of an RPC error (`INVALID_ARGUMENT: …` on stderr).
    fn status(&self) -> Option<&str> {
        let (code, _) = self.stderr.lines().next()?.split_once(": ")?;
        CODES.contains(&code).then_some(code)
    }
}

#[derive(Clone, Copy)]
enum Via {
    /// Each service straight at its own address (`TENANTRY_<SERVICE>_ENDPOINT`).
    Direct,
    /// Everything through the gateway's public API edge (`TENANTRY_ENDPOINT`).
    Edge,
}

impl World {
    /// Runs `tenantry <args>` with the platform admin's token.
    async fn cli(&self, via: Via, args: &[&str], stdin: Option<&str>) -> Run {
        self.cli_as(&self.token, via, args, stdin).await
    }

    /// Runs `tenantry <args>` with `token` (empty: none).
    async fn cli_as(&self, token: &str, via: Via, args: &[&str], stdin: Option<&str>) -> Run {
        use tokio::io::AsyncWriteExt as _;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantry"));
        command
            .args(args)
            .env("TENANTRY_TOKEN", token)
            .env("TENANTRY_ENDPOINT", format!("http://{}", self.edge))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (name, addr) in &self.services {
            let variable = format!("TENANTRY_{}_ENDPOINT", name.to_uppercase());
            match via {
                Via::Direct => command.env(variable, format!("http://{addr}")),
                Via::Edge => command.env_remove(variable),
            };
        }
        let mut child = command.spawn().expect("the tenantry binary runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[tokio::test]
async fn every_rpc_of_every_service_reaches_its_handler() {
    let world = start().await;
    let catalog = Catalog::builtin().unwrap();
    let mut failures = Vec::new();
    let mut calls = 0;
    // Every outcome, shown when something fails.
    let mut outcomes = Vec::new();
    for service in &catalog.services {
        assert!(
            world.services.contains_key(service.name.as_str()),
            "the {} service is in the descriptor set but this test does not start it",
            service.name
        );
        // RPCs that got past authentication with the token (or need none).
        let mut past_authentication = Vec::new();
        for rpc in &service.rpcs {
            calls += 1;
            let run = world
                .cli(Via::Direct, &[&service.name, &rpc.command], None)
                .await;
            let what = format!("tenantry {} {}", service.name, rpc.command);
            outcomes.push(format!("{what}: {:?} {}", run.code, run.stderr.trim()));
            if run.status() != Some("UNAUTHENTICATED") {
                past_authentication.push(rpc.command.as_str());
            }
            match (run.code, run.status()) {
                (Some(0), _) => {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&run.stdout) {
                        failures.push(format!("{what}: stdout is not JSON ({e})"));
                    }
                }
                (Some(1), Some(code)) if !NOT_A_HANDLER_ANSWER.contains(&code) => {}
                (code, _) => failures.push(format!("{what}: exit {code:?}: {}", run.stderr)),
            }
        }
        // The token is sent and accepted: some RPC that got past authentication with it is
        // refused without it.
        let mut evidence = None;
        for rpc in past_authentication {
            let run = world
                .cli_as("", Via::Direct, &[&service.name, rpc], None)
                .await;
            if run.status() == Some("UNAUTHENTICATED") {
                evidence = Some(rpc);
                break;
            }
        }
        if evidence.is_none() {
            failures.push(format!(
                "no RPC of the {} service shows the token sent and accepted",
                service.name
            ));
        }
    }
    assert!(calls >= 50, "only {calls} RPCs in the descriptor set");
    assert!(
        failures.is_empty(),
        "{}\n\nevery call:\n{}",
        failures.join("\n"),
        outcomes.join("\n")
    );
    world.env.cleanup().await;
}

#[tokio::test]
async fn a_tenant_created_through_the_edge_reads_back_in_every_format() {
    let world = start().await;
    let slug = format!("acme-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let create = |key: Option<&'static str>| {
        let mut args = vec![
            "tenant",
            "create-tenant",
            "--name",
            "Acme Corp",
            "--slug",
            &slug,
            "--type",
            "trial",
        ];
        if let Some(key) = key {
            args.extend(["--idempotency-key", key]);
        }
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = create(Some("create-acme"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Through the gateway's edge, as the CLI's default endpoint goes; JSON in a pipe.
    let created = world.cli(Via::Edge, &args, None).await.json();
    let tenant = &created["tenant"];
    assert_eq!(tenant["slug"], slug.as_str());
    assert_eq!(tenant["name"], "Acme Corp");
    assert_eq!(tenant["type"], "TENANT_TYPE_TRIAL");
    assert_eq!(tenant["status"], "TENANT_STATUS_ACTIVE");
    assert!(
        chrono::DateTime::parse_from_rfc3339(tenant["createdAt"].as_str().unwrap()).is_ok(),
        "{tenant}"
    );
    let id = tenant["tenantId"].as_str().unwrap().to_owned();
    let position = created["position"].as_str().unwrap().to_owned();

    // The same idempotency key: the same tenant; none: a second command, the slug is taken.
    let again = world.cli(Via::Edge, &args, None).await.json();
    assert_eq!(again["tenant"]["tenantId"], id.as_str());
    let plain = create(None);
    let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
    let taken = world.cli(Via::Direct, &plain, None).await;
    assert_eq!(taken.code, Some(1), "{}", taken.stderr);
    assert_eq!(taken.status(), Some("ALREADY_EXISTS"), "{}", taken.stderr);

    let get = [
        "tenant",
        "get-tenant",
        "--tenant-id",
        &id,
        "--min-position",
        &position,
        "--output",
        "yaml",
    ];
    let yaml = world.cli(Via::Direct, &get, None).await;
    assert_eq!(yaml.code, Some(0), "{}", yaml.stderr);
    assert!(yaml.stdout.starts_with("tenant:\n"), "{}", yaml.stdout);
    assert!(
        yaml.stdout.contains(&format!("\n  slug: {slug}\n")),
        "{}",
        yaml.stdout
    );
    assert!(yaml.stdout.contains("\n  type: TENANT_TYPE_TRIAL\n"));

    let list = [
        "tenant",
        "list-tenants",
        "--min-position",
        &position,
        "--page-size",
        "500",
        "--output",
        "table",
    ];
    let table = world.cli(Via::Edge, &list, None).await;
    assert_eq!(table.code, Some(0), "{}", table.stderr);
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..3],
        ["TENANT_ID", "NAME", "SLUG"],
        "{}",
        table.stdout
    );
    let row = lines
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{}", table.stdout));
    assert!(
        row.contains(&slug) && row.contains("TENANT_TYPE_TRIAL"),
        "{row}"
    );

    // A map and a repeated scalar by flags; nested settings by --json.
    let flags = [
        "tenant",
        "set-feature-flags",
        "--tenant-id",
        &id,
        "--set",
        r#"{"beta": true, "old": true}"#,
    ];
    assert_eq!(world.cli(Via::Direct, &flags, None).await.code, Some(0));
    let unset = [
        "tenant",
        "set-feature-flags",
        "--tenant-id",
        &id,
        "--unset",
        "old",
    ];
    assert_eq!(world.cli(Via::Direct, &unset, None).await.code, Some(0));
    let settings = format!(r#"{{"tenantId": "{id}", "settings": {{"currency": "BRL"}}}}"#);
    let updated = world
        .cli(
            Via::Edge,
            &["tenant", "update-settings", "--json", &settings],
            None,
        )
        .await
        .json();
    let position = updated["position"].as_str().unwrap();
    // The whole request from stdin.
    let request = format!(r#"{{"tenantId": "{id}", "minPosition": "{position}"}}"#);
    let got = world
        .cli(
            Via::Direct,
            &["tenant", "get-tenant", "--json", "-"],
            Some(&request),
        )
        .await
        .json();
    assert_eq!(got["tenant"]["settings"]["currency"], "BRL", "{got}");
    assert_eq!(
        got["tenant"]["featureFlags"],
        serde_json::json!({"beta": true}),
        "{got}"
    );
    world.env.cleanup().await;
}

#[tokio::test]
async fn errors_exit_1_for_the_server_and_2_for_the_command_line() {
    let world = start().await;
    let bad_id = world
        .cli(
            Via::Direct,
            &["tenant", "get-tenant", "--tenant-id", "not-a-uuid"],
            None,
        )
        .await;
    assert_eq!(bad_id.code, Some(1), "{}", bad_id.stderr);
    assert_eq!(
        bad_id.status(),
        Some("INVALID_ARGUMENT"),
        "{}",
        bad_id.stderr
    );
    assert!(bad_id.stdout.is_empty());

    let usage = world
        .cli(
            Via::Direct,
            &["tenant", "list-tenants", "--page-size", "lots"],
            None,
        )
        .await;
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
    assert!(
        usage.stderr.starts_with("error: --page-size: "),
        "{}",
        usage.stderr
    );

    // No token: the service refuses (the edge lets token-less calls through to it).
    let refused = world
        .cli_as("", Via::Edge, &["tenant", "list-tenants"], None)
        .await;
    assert_eq!(
        refused.status(),
        Some("UNAUTHENTICATED"),
        "{}",
        refused.stderr
    );
    world.env.cleanup().await;
}

#[tokio::test]
async fn billing_is_reached_through_the_edge() {
    let world = start().await;
    // A tenant without a subscription: NOT_FOUND is the billing handler's own answer, so the
    // edge forwarded the call to it.
    let unknown = Uuid::now_v7().to_string();
    let run = world
        .cli(
            Via::Edge,
            &["billing", "get-subscription", "--tenant-id", &unknown],
            None,
        )
        .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.status(), Some("NOT_FOUND"), "{}", run.stderr);
    world.env.cleanup().await;
}
