# Minimal container for presize: build with the Rust toolchain, run on a slim Debian.
#   docker build -t presize .
#   docker run --rm -v "$PWD:/data" presize /data/photos -o /data/out -w 800
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm libheif-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin presize

# libjpeg-turbo and libwebp are linked statically; the binary needs glibc and libheif (AVIF,
# HEIC input; AVIF output through the libaom that libheif1 depends on).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libheif1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/presize /usr/local/bin/presize
ENTRYPOINT ["presize"]
