# Build stage: compile the release binary (migrations and templates are embedded in it), then
# split its line tables off: the image gets the stripped binary, the `debug-info` stage keeps
# the rest for gdb and perf.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY templates templates
# Cargo.toml names the benchmarks; the manifest does not parse without them.
COPY benches benches
COPY contrib/split-debuginfo contrib/split-debuginfo
RUN cargo build --release --locked --bin fortnight \
 && cp target/release/fortnight /fortnight \
 && sh contrib/split-debuginfo /fortnight /fortnight.debug

# The debug information alone, to put beside the binary when a crash needs line numbers:
#   docker build --target debug-info --output type=local,dest=. .
FROM scratch AS debug-info
COPY --from=build /fortnight.debug /fortnight.debug

# Runtime stage: the binary, CA certificates for smtps:// and webhooks, Debian's current
# time-zone rules (read at run time; rebuild the image, or update tzdata, when zones change),
# and an unprivileged user.
FROM debian:bookworm-slim AS runtime
# Unpinned on purpose: these two packages are data (certificate authorities, zone rules) whose
# newest version is the one wanted; the image is rebuilt to take their updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fortnight \
 && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin fortnight \
 && mkdir -p /data \
 && chown fortnight:fortnight /data
COPY --from=build /fortnight /usr/local/bin/fortnight
# By number, so that a runtime's "run as non-root" check can see it without /etc/passwd.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
ENV FORTNIGHT_BIND=0.0.0.0:8080
EXPOSE 8080
# The binary asks its own GET /health (slim images have no curl). A `fortnight worker`
# container serves no HTTP: give it `fortnight healthcheck --worker` (see compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["fortnight", "healthcheck"]
ENTRYPOINT ["fortnight"]
CMD ["serve"]
