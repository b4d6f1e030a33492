//! The gateway's own settings (the shared ones are in `tenantry_kit::config`).

use std::net::SocketAddr;

#[derive(Debug, Clone, clap::Args)]
pub struct GatewayConfig {
    /// Data plane: tenants' traffic (HTTP/1.1 and h2c).
    #[arg(
        id = "gateway-listen",
        long = "gateway-listen",
        env = "TENANTRY_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// PEM certificate chain for the data plane. With `--gateway-tls-key` the data plane speaks
    /// TLS (ALPN `h2` and `http/1.1`) instead of plain HTTP/1.1 and h2c. The chain for every
    /// name without one of its own in `--gateway-tls-dir`.
    #[arg(
        id = "gateway-tls-cert",
        long = "gateway-tls-cert",
        env = "TENANTRY_GATEWAY_TLS_CERT",
        requires = "gateway-tls-key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of `--gateway-tls-cert`.
    #[arg(
        id = "gateway-tls-key",
        long = "gateway-tls-key",
        env = "TENANTRY_GATEWAY_TLS_KEY",
        requires = "gateway-tls-cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// A directory of certificates for tenants' custom domains: `<host>.crt` (PEM chain) and
    /// `<host>.key` (PEM key) each, chosen by the client's SNI (other names get
    /// `--gateway-tls-cert`). Read again every 10 s: certificates are added, renewed and
    /// removed without a restart. Turns TLS on by itself too.
    #[arg(
        id = "gateway-tls-dir",
        long = "gateway-tls-dir",
        env = "TENANTRY_GATEWAY_TLS_DIR"
    )]
    pub tls_dir: Option<std::path::PathBuf>,

    /// The gateway's gRPC port: its configuration API, health, and the public API edge.
    #[arg(
        id = "gateway-api-listen",
        long = "gateway-api-listen",
        env = "TENANTRY_GATEWAY_API_LISTEN",
        default_value = "127.0.0.1:7000"
    )]
    pub api_listen: SocketAddr,

    /// The operator port: `/metrics` (every tenant's traffic) and `/healthz`. Loopback by
    /// default: expose it to the metrics scraper only, never where tenants reach.
    #[arg(
        id = "gateway-metrics-listen",
        long = "gateway-metrics-listen",
        env = "TENANTRY_GATEWAY_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_listen: SocketAddr,

    /// Tenants answer on `<slug>.<base domain>` besides their verified custom domains.
    #[arg(
        id = "gateway-base-domain",
        long = "gateway-base-domain",
        env = "TENANTRY_GATEWAY_BASE_DOMAIN",
        default_value = "localhost"
    )]
    pub base_domain: String,

    /// From accept, a client must have sent its first request head within this many
    /// milliseconds (TLS handshake, HTTP version detection and HTTP/2 preface included), and
    /// every later HTTP/1.1 head within it too; else the connection is closed.
    #[arg(
        id = "gateway-header-timeout-ms",
        long = "gateway-header-timeout-ms",
        env = "TENANTRY_GATEWAY_HEADER_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_timeout_ms: u64,

    /// A connection with no request for this many milliseconds is closed gracefully (HTTP/2
    /// has no idle timeout of its own; HTTP/1.1 keep-alives also end at the header timeout).
    #[arg(
        id = "gateway-idle-timeout-ms",
        long = "gateway-idle-timeout-ms",
        env = "TENANTRY_GATEWAY_IDLE_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub idle_timeout_ms: u64,

    /// HTTP/2 ping interval, in milliseconds, on a quiet client connection; a client that does
    /// not answer within as long again is dropped, even with requests open. 0: no pings.
    #[arg(
        id = "gateway-h2-keepalive-ms",
        long = "gateway-h2-keepalive-ms",
        env = "TENANTRY_GATEWAY_H2_KEEPALIVE_MS",
        default_value_t = 20_000
    )]
    pub h2_keepalive_ms: u64,

    /// Open client connections on the data plane at once; more are closed at accept.
    #[arg(
        id = "gateway-max-connections",
        long = "gateway-max-connections",
        env = "TENANTRY_GATEWAY_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Open data-plane connections from one client address (IPv6: one /64) at once; more are
    /// closed at accept. Trusted proxies are exempt.
    #[arg(
        id = "gateway-max-connections-per-client",
        long = "gateway-max-connections-per-client",
        env = "TENANTRY_GATEWAY_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 256
    )]
    pub max_connections_per_client: usize,

    /// A request body must have arrived whole within this many milliseconds of its head
    /// (408 beyond).
    #[arg(
        id = "gateway-body-timeout-ms",
        long = "gateway-body-timeout-ms",
        env = "TENANTRY_GATEWAY_BODY_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub body_timeout_ms: u64,

    /// An upgraded connection (WebSocket) through which nothing passed either way for this many
    /// milliseconds is closed.
    #[arg(
        id = "gateway-tunnel-idle-timeout-ms",
        long = "gateway-tunnel-idle-timeout-ms",
        env = "TENANTRY_GATEWAY_TUNNEL_IDLE_TIMEOUT_MS",
        default_value_t = 120_000
    )]
    pub tunnel_idle_timeout_ms: u64,

    /// Comma-separated CIDR blocks of proxies in front of the gateway: only their
    /// `X-Forwarded-*`, `Forwarded`, `X-Real-IP` and `True-Client-IP` headers are passed on
    /// (anyone else's are dropped), and they are exempt from the per-client connection cap.
    /// Empty: no one.
    #[arg(
        id = "gateway-trusted-proxies",
        long = "gateway-trusted-proxies",
        env = "TENANTRY_GATEWAY_TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: tenantry_kit::client_addr::TrustedProxies,

    /// Largest request body, in bytes (413 beyond).
    #[arg(id = "gateway-max-body-bytes", long = "gateway-max-body-bytes", env = "TENANTRY_GATEWAY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: u64,

    /// Requests in flight at once; beyond it the gateway answers 503 (load shedding).
    #[arg(
        id = "gateway-max-in-flight",
        long = "gateway-max-in-flight",
        env = "TENANTRY_GATEWAY_MAX_IN_FLIGHT",
        default_value_t = 10_000
    )]
    pub max_in_flight: usize,

    /// A tenant's requests in flight at once (upgraded tunnels included) when its plan sets no
    /// share of its own; beyond it the tenant's requests get 503, and other tenants keep the
    /// rest of `max-in-flight`.
    #[arg(
        id = "gateway-tenant-max-in-flight",
        long = "gateway-tenant-max-in-flight",
        env = "TENANTRY_GATEWAY_TENANT_MAX_IN_FLIGHT",
        default_value_t = 1_000
    )]
    pub tenant_max_in_flight: u32,

    /// Longest wait, in milliseconds, for a backend's response head (504 beyond).
    #[arg(
        id = "gateway-upstream-timeout-ms",
        long = "gateway-upstream-timeout-ms",
        env = "TENANTRY_GATEWAY_UPSTREAM_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub upstream_timeout_ms: u64,

    /// The public API edge: where each `tenantry.<name>.v1` service listens, as
    /// `name=host:port` pairs; calls for them on the API port are forwarded there.
    #[arg(
        id = "gateway-services",
        long = "gateway-services",
        env = "TENANTRY_GATEWAY_SERVICES",
        default_value = "auth=127.0.0.1:7002,tenant=127.0.0.1:7001,billing=127.0.0.1:7003,orchestration=127.0.0.1:7004,sync=127.0.0.1:7005"
    )]
    pub services: String,

    /// Redis that gateway replicas share rate limits through; empty: each gateway enforces
    /// every limit alone.
    #[arg(
        id = "gateway-redis-url",
        long = "gateway-redis-url",
        env = "TENANTRY_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// `local`: decide on each replica and sync through Redis every `limit-sync-ms`;
    /// `strict`: ask Redis on every request (exact, one round trip more).
    #[arg(
        id = "gateway-rate-limit-mode",
        long = "gateway-rate-limit-mode",
        env = "TENANTRY_GATEWAY_RATE_LIMIT_MODE",
        value_enum,
        default_value_t = RateLimitMode::Local
    )]
    pub rate_limit_mode: RateLimitMode,

    /// How often, in milliseconds, a replica sends its admissions to Redis (`local` mode).
    #[arg(
        id = "gateway-limit-sync-ms",
        long = "gateway-limit-sync-ms",
        env = "TENANTRY_GATEWAY_LIMIT_SYNC_MS",
        default_value_t = 50
    )]
    pub limit_sync_ms: u64,

    /// Replicas assumed while Redis has not said how many run: when Redis is unreachable,
    /// each replica enforces 1 / replicas of every limit.
    #[arg(
        id = "gateway-replicas",
        long = "gateway-replicas",
        env = "TENANTRY_GATEWAY_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: u32,

    /// Defaults of the bounds on a tenant's routes and backends (its plan may set others).
    #[command(flatten)]
    pub config_limits: crate::api::limits::ConfigLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimitMode {
    Local,
    Strict,
}

impl GatewayConfig {
    /// The defaults on ephemeral loopback ports (tests, benchmarks).
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_cert: None,
            tls_key: None,
            tls_dir: None,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_domain: "localhost".into(),
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            h2_keepalive_ms: 20_000,
            max_connections: 10_000,
            max_connections_per_client: 256,
            body_timeout_ms: 60_000,
            tunnel_idle_timeout_ms: 120_000,
            trusted_proxies: Default::default(),
            max_body_bytes: 10 * 1024 * 1024,
            max_in_flight: 10_000,
            tenant_max_in_flight: 1_000,
            upstream_timeout_ms: 60_000,
            services: String::new(),
            redis_url: "redis://127.0.0.1:6379".into(),
            rate_limit_mode: RateLimitMode::Local,
            limit_sync_ms: 50,
            replicas: 1,
            config_limits: Default::default(),
        }
    }
}
