# Build stage: compile the release binary (migrations and templates are embedded in it).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY templates templates
RUN cargo build --release --locked --bin fortnight

# Runtime stage: the binary, CA certificates for smtps://, Debian's current time-zone rules
# (read at run time; rebuild the image, or update tzdata, when zones change), and an
# unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin fortnight \
 && mkdir -p /data \
 && chown fortnight:fortnight /data
COPY --from=build /src/target/release/fortnight /usr/local/bin/fortnight
USER fortnight
WORKDIR /data
VOLUME ["/data"]
ENV FORTNIGHT_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["fortnight"]
CMD ["serve"]
