#!/usr/bin/env bash
# Makes sure NATS (with JetStream), PostgreSQL and Redis answer on their default ports on this
# machine: installs the Debian packages that are missing and starts what is down. Idempotent;
# used by `just infra-up`, `just dev`, `just test` and CI.
set -euo pipefail

log() { printf 'infra: %s\n' "$*" >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    listening "$port" && { log "$name up on :$port"; return 0; }
    sleep 0.5
  done
  log "$name did not come up on :$port"; return 1
}

apt_updated=""
install() {
  if [ "$(id -u)" != 0 ]; then log "missing $*; install it (as root: apt-get install $*)"; exit 1; fi
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

nats_up() {
  listening 4222 && return 0
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || install nats-server
  local bin; bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  mkdir -p /var/lib/nats-server
  log "starting nats-server with JetStream"
  start-stop-daemon --start --oknodo --background --exec "$bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for nats 4222
}

postgres_up() {
  listening 5432 && return 0
  local fresh=""
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then install postgresql; fresh=1; fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n1)
  if [ -n "$fresh" ]; then
    # Development default: trust on loopback, like the machines this project is built on.
    local hba=/etc/postgresql/$version/main/pg_hba.conf
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting postgresql $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for postgres 5432
}

redis_up() {
  listening 6379 && return 0
  command -v redis-server >/dev/null || install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  log "starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/tenantry.log
  wait_for redis 6379
}

# The OIDC tests run a real identity provider (npm's `oidc-provider`) on Node.js.
oidc_provider_ready() {
  command -v node >/dev/null || install nodejs npm
  local dir; dir="$(dirname "$0")/../tests/oidc-provider"
  [ -d "$dir/node_modules/oidc-provider" ] && return 0
  log "installing the test OIDC provider (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# The gateway's TLS test makes its certificate with openssl; the Redis-outage test runs its
# own redis-server (installed with Redis above).
command -v openssl >/dev/null || install openssl

nats_up
postgres_up
redis_up
oidc_provider_ready
