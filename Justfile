# Tenantry tasks. `just --list` shows them.

# Run Tenantry on this machine: infrastructure, then every service built so far, in one process.
dev: infra-up
    cargo run -p tenantry-cli -- dev

# Run every test (unit, service, integration) against the real NATS, Postgres and Redis, then
# show that the tests left no stream or schema behind.
test: infra-up
    #!/usr/bin/env bash
    set -euo pipefail
    # Each run starts from an empty test database (tests make a schema prefix each).
    psql -q -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS tenantry_test WITH (FORCE)'
    started=$(date +%s)
    status=0
    cargo test --workspace --no-fail-fast || status=$?
    cargo run -q -p tenantry-testkit --bin leftovers -- --since "$started" || status=$?
    exit $status

# Check that NATS (JetStream), Postgres and Redis run; install and start what is missing.
infra-up:
    bash scripts/infra-up.sh

# Measure the figures the issues ask for, each beside its baseline (see bench/README.md).
bench: infra-up
    cargo build --release -p tenantry-tenant -p tenantry-auth -p tenantry-orchestration -p tenantry-bench
    cargo run --release -p tenantry-bench --bin eventstore
    cargo run --release -p tenantry-bench --bin tenant_api -- --rate 2000
    cargo run --release -p tenantry-bench --bin tenant_api
    cargo run --release -p tenantry-bench --bin auth_api
    cargo bench -p tenantry-kit --bench verify
    bash bench/gateway.sh --runs 2
    cargo bench -p tenantry-gateway --bench decision
    cargo run --release -p tenantry-bench --bin gateway_snapshot
    cargo run --release -p tenantry-bench --bin gateway_quota_latency
    cargo run --release -p tenantry-bench --bin billing
    cargo run --release -p tenantry-bench --bin sync
    cargo run --release -p tenantry-bench --bin orchestration

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    # Services and libraries: no warning at all.
    cargo clippy --workspace --lib --bins -- -D warnings
    # Tests and benches may unwrap (see CONVENTIONS); nothing else is let through.
    cargo clippy --workspace --tests --benches -- -D warnings -A clippy::unwrap_used
