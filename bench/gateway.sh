#!/usr/bin/env bash
# The gateway beside nginx with wrk (see bench/README.md). Installs wrk and nginx from Debian's
# packages when missing, builds the release binaries, and runs the comparison in one go.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
export PATH="$PATH:/usr/sbin"
bash scripts/infra-up.sh
cargo build --release -p tenantry-gateway -p tenantry-bench
"${CARGO_TARGET_DIR:-target}/release/gateway_vs_nginx" "$@"
