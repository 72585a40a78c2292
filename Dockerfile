# syntax=docker/dockerfile:1
# Multi-stage build: compile in the official Rust image, run in a slim Debian image as a non-root user.
# Build:  docker build -t creditlink .
# Run:    docker run -p 8080:8080 -v creditlink-data:/var/lib/creditlink \
#           -v /path/to/secrets:/etc/creditlink/secrets:ro creditlink
# The sandbox (no secrets needed): docker run -p 8080:8080 creditlink sandbox --listen 0.0.0.0:8080

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY config ./config
COPY mappings ./mappings
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
    && strip target/release/creditlink

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 creditlink \
    && useradd --system --uid 10001 --gid creditlink --home-dir /var/lib/creditlink --shell /usr/sbin/nologin creditlink \
    && mkdir -p /var/lib/creditlink /etc/creditlink/secrets \
    && chown creditlink:creditlink /var/lib/creditlink && chmod 0700 /var/lib/creditlink
COPY --from=build /src/target/release/creditlink /usr/local/bin/creditlink
COPY --chown=root:root config /etc/creditlink
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
