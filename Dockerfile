# bouncer's container image: `docker build -t ghcr.io/bouncer-dev/bouncer:0.1.0 .`
# (the tag the Helm chart defaults to). The build stage compiles the policies
# (host/build.rs builds every crate in policies/ for wasm32-unknown-unknown and
# embeds the components) and the binary; the runtime stage is distroless, with
# no shell and no package manager, running as an unprivileged user.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# The toolchain file names the wasm target; install it in its own layer.
COPY rust-toolchain.toml ./
RUN rustup show active-toolchain && rustup target add wasm32-unknown-unknown
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p bouncer \
    && install -D -m 0755 target/release/bouncer /out/bouncer

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bouncer /usr/local/bin/bouncer
# Same UID/GID as the chart's securityContext (distroless "nonroot").
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/bouncer"]
CMD ["serve"]
