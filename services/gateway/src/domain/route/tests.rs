//! Given events, when a command, then events (or an error).

use tenantry_kit::gwt::Given;
use uuid::Uuid;

use super::*;

fn tenant() -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_000a)
}

fn given(events: impl IntoIterator<Item = RouteEvent>) -> Given<Route> {
    tenantry_kit::gwt::given(events).of(tenant(), "r")
}

fn backend(address: &str) -> pb::Backend {
    pb::Backend {
        address: address.into(),
        weight: 1,
    }
}

/// Route `r`: `/` round-robin over two backends.
fn config() -> pb::RouteUpserted {
    pb::RouteUpserted {
        route_id: "r".into(),
        path_prefix: "/".into(),
        algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
        backends: vec![backend("backend.example:80"), backend("10.0.0.2:8080")],
        ..Default::default()
    }
}

/// `config` changed by `change`.
fn with(change: impl FnOnce(&mut pb::RouteUpserted)) -> pb::RouteUpserted {
    let mut config = config();
    change(&mut config);
    config
}

fn upserted(config: pb::RouteUpserted) -> RouteEvent {
    RouteEvent::Upserted(config)
}

fn drain(address: &str) -> RouteCommand {
    RouteCommand::Drain {
        address: address.into(),
    }
}

fn undrain(address: &str) -> RouteCommand {
    RouteCommand::Undrain {
        address: address.into(),
    }
}

fn drained(address: &str) -> RouteEvent {
    RouteEvent::BackendDrained(pb::BackendDrained {
        address: address.into(),
    })
}

fn invalid(field: &'static str, reason: &str) -> DomainError {
    DomainError::invalid(field, reason)
}

#[test]
fn given_no_route_when_created_then_upserted() {
    let state = given([])
        .when(RouteCommand::Create(config()))
        .then([upserted(config())]);
    assert_eq!(state.state().config, Some(config()));
}

#[test]
fn given_no_route_when_created_on_a_deployment_then_upserted_without_backends() {
    let on_deployment = with(|c| {
        c.backends.clear();
        c.deployment_id = Uuid::now_v7().to_string();
    });
    given([])
        .when(RouteCommand::Create(on_deployment.clone()))
        .then([upserted(on_deployment)]);
}

#[test]
fn given_a_route_when_created_again_then_a_retry_is_a_no_op_and_a_change_a_conflict() {
    let state = given([upserted(config())]);
    state.when(RouteCommand::Create(config())).then_nothing();
    state
        .when(RouteCommand::Create(with(|c| {
            c.path_prefix = "/other".into()
        })))
        .then_error(DomainError::AlreadyExists("route".into()));
}

#[test]
fn given_no_route_when_updated_then_not_found() {
    given([])
        .when(RouteCommand::Update(config()))
        .then_error(DomainError::NotFound("route".into()));
}

#[test]
fn given_a_route_when_updated_then_upserted_and_the_same_settings_change_nothing() {
    let other = with(|c| c.path_prefix = "/other".into());
    let state = given([upserted(config())])
        .when(RouteCommand::Update(other.clone()))
        .then([upserted(other.clone())]);
    state.when(RouteCommand::Update(other)).then_nothing();
}

#[test]
fn given_a_route_when_removed_then_removed_and_gone() {
    let removed = given([upserted(config())])
        .when(RouteCommand::Remove)
        .then([RouteEvent::Removed(pb::RouteRemoved {
            route_id: "r".into(),
        })]);
    assert_eq!(removed.state(), &Route::default());
    removed
        .when(RouteCommand::Update(config()))
        .then_error(DomainError::NotFound("route".into()));
}

#[test]
fn given_no_route_when_removed_drained_or_undrained_then_not_found() {
    let missing = DomainError::NotFound("route".into());
    given([])
        .when(RouteCommand::Remove)
        .then_error(missing.clone());
    given([])
        .when(drain("10.0.0.2:8080"))
        .then_error(missing.clone());
    given([]).when(undrain("10.0.0.2:8080")).then_error(missing);
}

#[test]
fn given_a_route_when_a_backend_is_drained_then_drained_once_until_undrained() {
    let state = given([upserted(config())])
        .when(drain("10.0.0.2:8080"))
        .then([drained("10.0.0.2:8080")]);
    assert!(state.state().drained.contains("10.0.0.2:8080"));
    state.when(drain("10.0.0.2:8080")).then_nothing();
    let state = state
        .when(undrain("10.0.0.2:8080"))
        .then([RouteEvent::BackendUndrained(pb::BackendUndrained {
            address: "10.0.0.2:8080".into(),
        })]);
    assert!(state.state().drained.is_empty());
    state.when(undrain("10.0.0.2:8080")).then_nothing();
}

#[test]
fn given_a_route_when_a_backend_it_does_not_list_is_drained_then_not_found() {
    let state = given([upserted(config())]);
    let missing = DomainError::NotFound("backend 10.0.0.9:80".into());
    state.when(drain("10.0.0.9:80")).then_error(missing.clone());
    state.when(undrain("10.0.0.9:80")).then_error(missing);
}

#[test]
fn given_a_drained_backend_when_the_route_drops_it_then_its_drain_is_forgotten() {
    let kept = with(|c| c.backends.truncate(1));
    let state = given([upserted(config()), drained("10.0.0.2:8080")])
        .when(RouteCommand::Update(kept.clone()))
        .then([upserted(kept)]);
    assert!(state.state().drained.is_empty());
    // Listed again later, it is not drained.
    let state = state
        .when(RouteCommand::Update(config()))
        .then([upserted(config())]);
    assert!(state.state().drained.is_empty());
}

/// Settings that break one rule each, and the error naming the field.
fn refusals() -> Vec<(&'static str, pb::RouteUpserted, DomainError)> {
    let not_a_host = |host: &str| DomainError::Invalid {
        field: "route.hosts",
        reason: format!("[0] {host:?} is not a host name"),
    };
    let not_host_port = |i: usize, address: &str| DomainError::Invalid {
        field: "route.backends",
        reason: format!("[{i}] {address:?} is not host:port"),
    };
    let path = "must start with / (at most 1024 characters)";
    let header = "a header name is required for header_hash";
    let health = "path must start with / and interval_ms be at least 100";
    let long_host = format!("{}.example", "a".repeat(246));
    vec![
        (
            "too many hosts",
            with(|c| c.hosts = (0..=MAX_HOSTS).map(|i| format!("h{i}.example")).collect()),
            invalid("route.hosts", &format!("at most {MAX_HOSTS}")),
        ),
        (
            "empty host",
            with(|c| c.hosts = vec![String::new()]),
            not_a_host(""),
        ),
        (
            "host with a space",
            with(|c| c.hosts = vec!["app acme.com".into()]),
            not_a_host("app acme.com"),
        ),
        (
            "host with a port",
            with(|c| c.hosts = vec!["acme.com:443".into()]),
            not_a_host("acme.com:443"),
        ),
        (
            "host over 253 characters",
            with(|c| c.hosts = vec![long_host.clone()]),
            not_a_host(&long_host),
        ),
        (
            "empty path",
            with(|c| c.path_prefix = String::new()),
            invalid("route.path_prefix", path),
        ),
        (
            "relative path",
            with(|c| c.path_prefix = "api".into()),
            invalid("route.path_prefix", path),
        ),
        (
            "path over 1024 characters",
            with(|c| c.path_prefix = format!("/{}", "a".repeat(1024))),
            invalid("route.path_prefix", path),
        ),
        (
            "path with a space",
            with(|c| c.path_prefix = "/a b".into()),
            invalid("route.path_prefix", "must not contain spaces"),
        ),
        (
            "path with a control character",
            with(|c| c.path_prefix = "/a\u{7f}".into()),
            invalid("route.path_prefix", "must not contain spaces"),
        ),
        (
            "no algorithm",
            with(|c| c.algorithm = pb::BalanceAlgorithm::Unspecified as i32),
            invalid("route.algorithm", "is required"),
        ),
        (
            "unknown algorithm",
            with(|c| c.algorithm = 99),
            invalid("route.algorithm", "is required"),
        ),
        (
            "header hash without a header",
            with(|c| c.algorithm = pb::BalanceAlgorithm::HeaderHash as i32),
            invalid("route.hash_header", header),
        ),
        (
            "header hash on a name that is no header",
            with(|c| {
                c.algorithm = pb::BalanceAlgorithm::HeaderHash as i32;
                c.hash_header = "x user".into();
            }),
            invalid("route.hash_header", header),
        ),
        (
            "no backends",
            with(|c| c.backends.clear()),
            invalid(
                "route.backends",
                &format!("must list 1 to {MAX_BACKENDS} backends (or set route.deployment_id)"),
            ),
        ),
        (
            "too many backends",
            with(|c| {
                c.backends = (0..=MAX_BACKENDS)
                    .map(|i| backend(&format!("10.0.1.{i}:80")))
                    .collect();
            }),
            invalid(
                "route.backends",
                &format!("must list 1 to {MAX_BACKENDS} backends (or set route.deployment_id)"),
            ),
        ),
        (
            "a deployment id that is not one",
            with(|c| {
                c.backends.clear();
                c.deployment_id = "web".into();
            }),
            invalid("route.deployment_id", "must be a deployment id"),
        ),
        (
            "a deployment and backends",
            with(|c| c.deployment_id = Uuid::now_v7().to_string()),
            invalid(
                "route.backends",
                "must be empty when route.deployment_id is set",
            ),
        ),
        (
            "unknown upstream protocol",
            with(|c| c.upstream_protocol = 99),
            invalid("route.upstream_protocol", "unknown protocol"),
        ),
        (
            "backend without a port",
            with(|c| c.backends[1] = backend("backend.example")),
            not_host_port(1, "backend.example"),
        ),
        (
            "backend without a host",
            with(|c| c.backends[1] = backend(":80")),
            not_host_port(1, ":80"),
        ),
        (
            "backend on port 0",
            with(|c| c.backends[1] = backend("backend.example:0")),
            not_host_port(1, "backend.example:0"),
        ),
        (
            "backend port out of range",
            with(|c| c.backends[1] = backend("backend.example:65536")),
            not_host_port(1, "backend.example:65536"),
        ),
        (
            "backend with a path",
            with(|c| c.backends[1] = backend("backend.example/x:80")),
            not_host_port(1, "backend.example/x:80"),
        ),
        (
            "IPv6 backend without brackets",
            with(|c| c.backends[1] = backend("2001:db8::1:80")),
            not_host_port(1, "2001:db8::1:80"),
        ),
        (
            "backend listed twice",
            with(|c| c.backends[1] = backend("backend.example:80")),
            DomainError::Invalid {
                field: "route.backends",
                reason: "[1] backend.example:80 is listed twice".into(),
            },
        ),
        (
            "backend weight over 1000",
            with(|c| c.backends[0].weight = 1001),
            DomainError::Invalid {
                field: "route.backends",
                reason: "[0] weight must be at most 1000".into(),
            },
        ),
        (
            "relative health check path",
            with(|c| {
                c.health_check = Some(pb::HealthCheck {
                    path: "healthz".into(),
                    interval_ms: 1000,
                    ..Default::default()
                });
            }),
            invalid("route.health_check", health),
        ),
        (
            "health check more often than every 100 ms",
            with(|c| {
                c.health_check = Some(pb::HealthCheck {
                    path: "/healthz".into(),
                    interval_ms: 99,
                    ..Default::default()
                });
            }),
            invalid("route.health_check", health),
        ),
    ]
}

#[test]
fn given_no_route_when_created_with_bad_settings_then_each_is_refused_naming_its_field() {
    for (case, settings, expected) in refusals() {
        let refused = given([])
            .when(RouteCommand::Create(settings))
            .then_rejected();
        assert_eq!(refused, expected, "{case}");
    }
}

#[test]
fn given_a_route_when_updated_with_bad_settings_then_refused_before_anything_else() {
    let state = given([upserted(config())]);
    for (case, settings, expected) in refusals() {
        let refused = state.when(RouteCommand::Update(settings)).then_rejected();
        assert_eq!(refused, expected, "{case}");
    }
}

#[test]
fn given_no_route_when_created_at_every_limit_then_upserted() {
    let at_limits = with(|c| {
        c.hosts = (0..MAX_HOSTS)
            .map(|i| format!("h{i}.acme-corp.com"))
            .collect();
        c.path_prefix = format!("/{}", "a".repeat(1023));
        c.algorithm = pb::BalanceAlgorithm::HeaderHash as i32;
        c.hash_header = "x-user-id".into();
        c.backends = (0..MAX_BACKENDS - 2)
            .map(|i| backend(&format!("10.0.1.{i}:80")))
            .chain([
                backend("[2001:db8::1]:443"),
                backend("svc-2.internal:65535"),
            ])
            .collect();
        c.backends[0].weight = 1000;
        c.health_check = Some(pb::HealthCheck {
            path: "/healthz".into(),
            interval_ms: 100,
            ..Default::default()
        });
        c.upstream_protocol = pb::UpstreamProtocol::H2c as i32;
    });
    given([])
        .when(RouteCommand::Create(at_limits.clone()))
        .then([upserted(at_limits)]);
}

#[test]
fn given_no_route_when_created_with_an_empty_health_check_path_then_no_check_is_asked_for() {
    // An empty path turns the active check off, so its interval is not looked at.
    let unchecked = with(|c| {
        c.health_check = Some(pb::HealthCheck {
            path: String::new(),
            interval_ms: 0,
            ..Default::default()
        });
    });
    given([])
        .when(RouteCommand::Create(unchecked.clone()))
        .then([upserted(unchecked)]);
}
