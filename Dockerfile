# syntax=docker/dockerfile:1
# Multi-stage build: compile in the official Rust image, run in a slim Debian image as a non-root user.
# Build:  docker build -t creditlink .
# Run:    docker run -p 8080:8080 --ulimit nofile=65536:65536 -v creditlink-data:/var/lib/creditlink \
#           -v /path/to/secrets:/etc/creditlink/secrets:ro creditlink
# The admin API ([admin] listen, 127.0.0.1:8081 by default) stays inside the container unless you set
# CREDITLINK__ADMIN__LISTEN=0.0.0.0:8081 and publish it (-p 127.0.0.1:8081:8081): it is meant for operators,
# not for the banks' network. The file-descriptor limit bounds how many connections the daemon can hold
# ([server] max_connections should stay well below it).
# The image is a production build (`--no-default-features`): it has no simulator, so `creditlink sandbox` and
# `creditlink sim salesforce` exit 64 in it, and it carries no demo credentials. Run the sandbox from a
# default-features build (`cargo run -- sandbox`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole tree: Cargo reads every workspace member's manifest (crates/) and checks every declared target
# (tests/, benches/) even though this build compiles neither the simulator nor the tests. BuildKit caches the
# registry and target dir between builds.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features \
    && cp target/release/creditlink /usr/local/bin/creditlink \
    && strip /usr/local/bin/creditlink

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 creditlink \
    && useradd --system --uid 10001 --gid creditlink --home-dir /var/lib/creditlink --shell /usr/sbin/nologin creditlink \
    && mkdir -p /var/lib/creditlink /etc/creditlink/secrets \
    && chown creditlink:creditlink /var/lib/creditlink && chmod 0700 /var/lib/creditlink
COPY --from=build /usr/local/bin/creditlink /usr/local/bin/creditlink
COPY --chown=root:root config/creditlink.toml /etc/creditlink/creditlink.toml
COPY --chown=root:root mappings /etc/creditlink/mappings
USER creditlink:creditlink
WORKDIR /var/lib/creditlink
ENV CREDITLINK__STORE__DATA_DIR=/var/lib/creditlink \
    CREDITLINK__SERVER__LISTEN=0.0.0.0:8080 \
    CREDITLINK__MAPPINGS__DIR=/etc/creditlink/mappings
EXPOSE 8080
VOLUME ["/var/lib/creditlink"]
# Probes: point the orchestrator at GET /livez (liveness) and GET /readyz (readiness) on port 8080.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/creditlink"]
CMD ["run", "--config", "/etc/creditlink/creditlink.toml"]
