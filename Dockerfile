# lossd container image.
#
#   docker build -t lossd .            (or: podman build --format docker -t lossd .)
#   docker run --rm -p 8080:8080 lossd
#
# Two stages.  The build stage is Debian bookworm with Node.js 22 (the
# official node:22-bookworm image): it installs the -dev packages and
# Chromium, builds lossd (Redocly CLI, from api/package.json, turns the
# OpenAPI document and the reference page into C that is compiled in) and
# runs the whole `make test`, so an image is only produced from a tree whose
# tests pass.  The run stage is debian:bookworm-slim with the three runtime
# libraries and the binary, running as an unprivileged numeric user,
# configured only through LOSSD_* environment variables (see the README's
# configuration table).
#
# BUILD_IMAGE may name another bookworm image with Node.js >= 20.19 on PATH.

ARG BUILD_IMAGE=node:22-bookworm

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       build-essential pkg-config libmicrohttpd-dev libcjson-dev libuv1-dev \
       libcriterion-dev libcurl4-openssl-dev curl ca-certificates chromium \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make all WERROR=1 \
    && make test \
    && strip --strip-unneeded -o /lossd build/lossd

FROM debian:bookworm-slim
# The shared libraries build/lossd links (ldd): libmicrohttpd, libcjson and
# libuv; libc and libm are in the base image.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libmicrohttpd12 libcjson1 libuv1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY --from=build /lossd /usr/local/bin/lossd
ENV LOSSD_HOST=0.0.0.0 \
    LOSSD_PORT=8080 \
    LOSSD_LOG_FORMAT=json
# A numeric user, so that Kubernetes' runAsNonRoot can verify it; nothing in
# the image needs to be writable.
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
# The binary checks itself: no curl or shell in the health check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/lossd", "--check", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/lossd"]
