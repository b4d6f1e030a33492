//! The gateway beside nginx, with wrk, one run, same upstream, same machine:
//! 1. wrk against the upstream directly (nginx answering `200 ok`);
//! 2. wrk against nginx as a keep-alive reverse proxy with `limit_req` to that upstream, as
//!    the issue names it, and once more with the forwarding headers the gateway adds to every
//!    request (`X-Forwarded-For`/`-Host`/`-Proto`, `Forwarded`, `X-Request-Id`): the same job;
//! 3. wrk against the `tenantry-gateway` release binary (its own process) routing a tenant's
//!    host to that upstream, with the tenant's rate limit and quota state on (limits high enough
//!    never to refuse: the decisions run, nothing is throttled).
//!
//! Needs `wrk` and `nginx` (Debian packages; `bench/gateway.sh` installs them).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clap::Parser;
use tenantry_bench::{append_billing, authed, spawn_binary, world_env};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_kit::Role;
use tenantry_kit::service::Service;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as gw, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_proto::tenant::v1::{self as tenant_api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::TestEnv;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Runs of each target; the table shows each run.
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// Also run `h1_floor` (a proxy path written for HTTP/1.1, measurement only): what a
    /// proxy without hyper's machinery does with the gateway's per-request work.
    #[arg(long)]
    floor: bool,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// nginx's directives for the headers the gateway adds to each forwarded request.
const FORWARDING_HEADERS: &str = "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; \
     proxy_set_header X-Forwarded-Host $host; proxy_set_header X-Forwarded-Proto $scheme; \
     proxy_set_header Forwarded \"for=$remote_addr;host=$host;proto=$scheme\"; \
     proxy_set_header X-Request-Id $request_id;";

/// nginx as a keep-alive reverse proxy with `limit_req` on `listen` to `up`, with `extra`
/// directives in its location.
fn proxy_http(up: u16, listen: u16, extra: &str) -> String {
    format!(
        "  limit_req_zone $binary_remote_addr zone=perip:10m rate=1000000r/s;\n  upstream up {{ server 127.0.0.1:{up}; keepalive 128; }}\n  server {{ listen 127.0.0.1:{listen}; location / {{ limit_req zone=perip burst=1000000 nodelay; proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; {extra} }} }}"
    )
}

/// Ratios as `a, b, c (mean m)`.
fn summary(ratios: &[f64]) -> String {
    let list: Vec<_> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    format!("{} (mean {mean:.2})", list.join(", "))
}

/// A running nginx; stopped (master and workers) on drop.
struct Nginx {
    conf: std::path::PathBuf,
    prefix: std::path::PathBuf,
    child: tokio::process::Child,
}

/// CPU time (user, system; in clock ticks of 10 ms) used so far by process `pid` (every
/// thread) and its child processes (nginx's workers), from `/proc`.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    // The fields after the command name (which may hold spaces): state is the first, the parent
    // the second, user and system time the 12th and 13th.
    let fields = |stat: &str| -> Option<Vec<String>> {
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        Some(rest.split_whitespace().map(str::to_owned).collect())
    };
    let (mut user, mut system) = (0, 0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in dir.flatten() {
        let Some(this) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(f) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| fields(&s))
        else {
            continue;
        };
        let parent = f.get(1).and_then(|v| v.parse::<u32>().ok());
        if this == pid || parent == Some(pid) {
            let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            user += tick(11);
            system += tick(12);
        }
    }
    (user, system)
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Killing only the master would leave its workers serving the port.
        let _ = std::process::Command::new("nginx")
            .args([
                "-c",
                &self.conf.display().to_string(),
                "-p",
                &self.prefix.display().to_string(),
                "-s",
                "stop",
            ])
            .stderr(Stdio::null())
            .status();
    }
}

/// Starts nginx with `http` as its http block, in `dir`.
fn nginx(dir: &Path, name: &str, http: &str) -> anyhow::Result<Nginx> {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\nerror_log {dir}/{name}.err warn;\npid {dir}/{name}.pid;\nevents {{ worker_connections 8192; }}\nhttp {{\n  access_log off;\n{http}\n}}\n",
            dir = dir.display()
        ),
    )?;
    let child = tokio::process::Command::new("nginx")
        .args([
            "-c",
            &conf.display().to_string(),
            "-p",
            &dir.display().to_string(),
            "-g",
            "daemon off;",
        ])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Nginx {
        conf,
        prefix: dir.to_owned(),
        child,
    })
}

/// wrk's requests/s and p50/p99 in ms.
async fn wrk(args: &Args, url: &str, host: Option<&str>) -> anyhow::Result<(f64, f64, f64, u64)> {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.args([
        "-t",
        &args.threads.to_string(),
        "-c",
        &args.connections.to_string(),
        "-d",
        &format!("{}s", args.seconds),
        "--latency",
    ]);
    if let Some(h) = host {
        cmd.args(["-H", &format!("Host: {h}")]);
    }
    let out = cmd.arg(url).output().await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
    };
    let ms = |v: String| -> f64 {
        if let Some(us) = v.strip_suffix("us") {
            us.parse::<f64>().unwrap_or(f64::NAN) / 1000.0
        } else if let Some(m) = v.strip_suffix("ms") {
            m.parse().unwrap_or(f64::NAN)
        } else if let Some(s) = v.strip_suffix('s') {
            s.parse::<f64>().unwrap_or(f64::NAN) * 1000.0
        } else {
            f64::NAN
        }
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let p50 = field("50%").map(ms).unwrap_or(f64::NAN);
    let p99 = field("99%").map(ms).unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(rps.is_finite(), "wrk said: {text}");
    Ok((rps, p50, p99, errors))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("{}-nginx", env.id));
    std::fs::create_dir_all(&dir)?;

    // The upstream, and nginx in front of it.
    let up = free_port()?;
    let upstream = nginx(
        &dir,
        "upstream",
        &format!("  server {{ listen 127.0.0.1:{up}; location / {{ return 200 \"ok\\n\"; }} }}"),
    )?;
    let proxy = free_port()?;
    let nginx_proxy = nginx(&dir, "proxy", &proxy_http(up, proxy, ""))?;
    // The same proxy sending what the gateway sends: the backend parses the same request.
    let forwarding = free_port()?;
    let nginx_forwarding = nginx(
        &dir,
        "forwarding",
        &proxy_http(up, forwarding, FORWARDING_HEADERS),
    )?;

    // A tenant, its plan and quota state, and the gateway routing it to the upstream.
    let mut common = env.common();
    // The upstream listens on loopback, which the outbound policy refuses unless allowed.
    common.egress_allow = "127.0.0.0/8".parse()?;
    let tenant_svc = env
        .start_with(
            &common,
            tenantry_tenant::TenantService::new(tenantry_tenant::TenantConfig::ephemeral()),
        )
        .await;
    let slug = format!("b{}", &Uuid::new_v4().simple().to_string()[..8]);
    let created = TenantServiceClient::new(tenantry_testkit::channel(tenant_svc.addr).await)
        .create_tenant(authed(
            tenant_api::CreateTenantRequest {
                name: slug.clone(),
                slug: slug.clone(),
                r#type: pb::TenantType::Business as i32,
                settings: None,
            },
            &env.admin_token(),
        ))
        .await?
        .into_inner();
    let tenant = created.tenant.expect("tenant").tenant_id;
    let store = env.event_store().await;
    let plan = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: "bench".into(),
        requests_per_second: 1_000_000,
        burst: 1_000_000,
        monthly_requests: u64::MAX,
        monthly_bytes: u64::MAX,
        quota_behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
        throttle_rps: 0,
        ..Default::default()
    });
    append_billing(&store, &tenant, plan).await?;
    let data_port = free_port()?;
    let (api_addr, gateway) = spawn_binary(
        "tenantry-gateway",
        "TENANTRY_GATEWAY_API_LISTEN",
        &[
            world_env(&common),
            vec![
                ("TENANTRY_JWKS", common.jwks.clone()),
                ("TENANTRY_GATEWAY_LISTEN", format!("127.0.0.1:{data_port}")),
                // Not the default 9464: a `tenantry dev` may be running.
                ("TENANTRY_GATEWAY_METRICS_LISTEN", "127.0.0.1:0".into()),
            ],
        ]
        .concat(),
    )
    .await?;
    let member = env.token(Some(Uuid::parse_str(&tenant)?), Role::Member);
    let api = tenantry_testkit::channel(api_addr).await;
    GatewayConfigServiceClient::new(api)
        .upsert_route(authed(
            gw::UpsertRouteRequest {
                route: Some(gw::Route {
                    path_prefix: "/".into(),
                    algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
                    backends: vec![pb::Backend {
                        address: format!("127.0.0.1:{up}"),
                        weight: 1,
                    }],
                    ..Default::default()
                }),
            },
            &member,
        ))
        .await?;
    let host = format!("{slug}.localhost");
    // Until the gateway has applied the route.
    for _ in 0..100 {
        let ok = wrk_probe(data_port, &host).await;
        if ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let floor = if args.floor {
        let upstream = [("H1_FLOOR_UPSTREAM", format!("127.0.0.1:{up}"))];
        Some(spawn_binary("h1_floor", "H1_FLOOR_LISTEN", &upstream).await?)
    } else {
        None
    };

    println!(
        "wrk -t{} -c{} -d{}s, 2-core machine shared by wrk, proxy and upstream",
        args.threads, args.connections, args.seconds
    );
    println!(
        "  {:<46} {:>10} {:>9} {:>9} {:>8} {:>22}",
        "target", "req/s", "p50 ms", "p99 ms", "non-2xx", "CPU µs/req (user+sys)"
    );
    let pid = |child: &tokio::process::Child| child.id().unwrap_or(0);
    let (upstream_pid, proxy_pid, forwarding_pid, gateway_pid) = (
        pid(&upstream.child),
        pid(&nginx_proxy.child),
        pid(&nginx_forwarding.child),
        pid(&gateway),
    );
    // Per run: the gateway's requests/s over each nginx's.
    let (mut over_plain, mut over_forwarding, mut floor_over_plain) =
        (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let mut rates = [0.0; 5];
        let floor_target = floor.as_ref().map(|(addr, child)| {
            (
                "h1_floor (measurement only, no hyper)",
                format!("http://{addr}/"),
                Some(host.as_str()),
                pid(child),
            )
        });
        for (target, (name, url, host, measured)) in [
            (
                "upstream directly (nginx return 200)",
                format!("http://127.0.0.1:{up}/"),
                None,
                upstream_pid,
            ),
            (
                "nginx reverse proxy + limit_req",
                format!("http://127.0.0.1:{proxy}/"),
                None,
                proxy_pid,
            ),
            (
                "nginx + limit_req + forwarding headers",
                format!("http://127.0.0.1:{forwarding}/"),
                None,
                forwarding_pid,
            ),
            (
                "tenantry gateway (route + limit + quota)",
                format!("http://127.0.0.1:{data_port}/"),
                Some(host.as_str()),
                gateway_pid,
            ),
        ]
        .into_iter()
        .chain(floor_target)
        .enumerate()
        {
            let before = cpu_ticks(measured);
            let (rps, p50, p99, errors) = wrk(&args, &url, host).await?;
            // The target's own CPU time per request (the proxy's, not its upstream's).
            let after = cpu_ticks(measured);
            let per_request = |ticks: u64| ticks as f64 * 10_000.0 / (rps * args.seconds as f64);
            let (user, system) = (
                per_request(after.0 - before.0),
                per_request(after.1 - before.1),
            );
            let cpu = format!("{:.1} ({user:.1}+{system:.1})", user + system);
            println!(
                "  {name:<46} {rps:>10.0} {p50:>9.2} {p99:>9.2} {errors:>8} {cpu:>22}   (run {run})"
            );
            rates[target] = rps;
        }
        over_plain.push(rates[3] / rates[1]);
        over_forwarding.push(rates[3] / rates[2]);
        if floor.is_some() {
            floor_over_plain.push(rates[4] / rates[1]);
        }
    }
    println!(
        "gateway / nginx + limit_req: {}; / nginx with forwarding headers: {}",
        summary(&over_plain),
        summary(&over_forwarding)
    );
    if floor.is_some() {
        println!(
            "h1_floor / nginx + limit_req: {}",
            summary(&floor_over_plain)
        );
    }
    drop(tenant_svc);
    env.cleanup().await;
    Ok(())
}

/// One request through the gateway: does the route answer yet?
async fn wrk_probe(port: u16, host: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let _ = tcp
        .write_all(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out).await;
    out.starts_with("HTTP/1.1 200")
}
