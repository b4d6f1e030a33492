# syntax=docker/dockerfile:1
#
# Tenantry image: the auth service (`tenantry-auth`, port 7002), the tenant service
# (`tenantry-tenant`, port 7001), the billing service (`tenantry-billing`, port 7003), the gateway
# (`tenantry-gateway`: data plane 8080, configuration API 7000) and the CLI (`tenantry`). One
# image, one binary per container: choose it with the command (the default is the tenant
# service). Build from the workspace root (BuildKit is required for the cache mounts):
#
#   docker build -t tenantry .

# ---- build ----------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /app
COPY . .
# The registry and target directories are cache mounts, so they survive between builds but are
# not part of the image layer: the binaries are copied out to /out within the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/app/target \
    cargo build --release --locked -p tenantry-auth -p tenantry-tenant -p tenantry-gateway \
       -p tenantry-billing -p tenantry-orchestration -p tenantry-sync -p tenantry-cli \
    && mkdir -p /out \
    && cp target/release/tenantry-auth target/release/tenantry-tenant \
       target/release/tenantry-gateway target/release/tenantry-billing \
       target/release/tenantry-orchestration target/release/tenantry-sync target/release/tenantry \
       /out/

# ---- runtime --------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tenantry \
    && useradd --system --uid 10001 --gid tenantry --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin tenantry
COPY --from=build /out/tenantry-auth /out/tenantry-tenant /out/tenantry-gateway \
     /out/tenantry-billing /out/tenantry-orchestration /out/tenantry-sync /out/tenantry \
     /usr/local/bin/
# Numeric, so Kubernetes' runAsNonRoot can verify it without looking the name up.
USER 10001:10001
EXPOSE 7000 7001 7002 7003 7004 7005 8080
CMD ["tenantry-tenant"]
