# Minimal container for presize: build with the Rust toolchain, run on a slim Debian.
#   docker build -t presize .
#   docker run --rm -v "$PWD:/data" presize /data/photos -o /data/out -w 800
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin presize

# libjpeg-turbo and libwebp are linked statically; the binary needs only glibc.
FROM debian:bookworm-slim
COPY --from=build /src/target/release/presize /usr/local/bin/presize
ENTRYPOINT ["presize"]
