# Build stage: compile lossd on Debian bookworm.
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config libmicrohttpd-dev libcjson-dev libuv1-dev \
      libcriterion-dev libcurl4-openssl-dev curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make all

# Run stage: only the runtime libraries and the binary.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libuv1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/lossd /usr/local/bin/lossd
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/lossd"]
