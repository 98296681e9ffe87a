#!/usr/bin/env bash
# test-image.sh -- builds the lossd image and checks it as a user would run
# it (`make image-test`):
#   0. `make k8s-check`: the manifests, Compose file and nginx.conf;
#   1. the image: numeric non-root user, EXPOSE 8080, exec-form ENTRYPOINT,
#      a HEALTHCHECK through `lossd --check`, every shared library resolved,
#      no compiler left in it, its size;
#   2. one container: /healthz, /readyz, one reference request and one
#      invalid request per loss, the process's user, the image's own health
#      check, and SIGTERM in the middle of a large request (answered, exit 0);
#   3. the Compose topology (3 replicas behind nginx): a few hundred requests
#      through nginx reach every replica; one replica killed (SIGKILL) under
#      load and another stopped (SIGTERM) under load lose no request; the
#      rest keep serving;
#   4. LOSSD_GRACE: a request that never finishes does not hold the shutdown
#      longer than the grace period.
# Uses docker when a Docker engine answers, else podman (set up first by
# ../shared/tools/container-env.sh when podman or its base image is
# missing), and docker compose, podman-compose or, failing both, plain
# `run` commands for the topology.  Every request goes to 127.0.0.1.
# Logs are kept in build/image-test/.  LOSSD_IMAGE names the image (default
# localhost/lossd:test); IMAGE_TEST_NO_BUILD=1 tests it without rebuilding;
# BUILD_IMAGE, NGINX_IMAGE and ENGINE override the choices above.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CLIENT=("$PY" "$ROOT/docker/test_client.py")
WORK=$ROOT/build/image-test
TAG=${LOSSD_IMAGE:-localhost/lossd:test}
RUN_ID=lossdit$$
NET=$RUN_ID-net
PASS=0
FAIL=0
CONTAINERS=()
COMPOSE=()

rm -rf "$WORK" && mkdir -p "$WORK"

say() { printf '== %s\n' "$*"; }
ok() { PASS=$((PASS + 1)); printf 'ok   %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$*"; }
# check DESCRIPTION COMMAND...: runs COMMAND, its output to the log.
check() {
    local what=$1 log
    shift
    log=$WORK/$(printf '%s' "$what" | tr -c 'A-Za-z0-9' '_' | cut -c1-60).log
    if "$@" >"$log" 2>&1; then ok "$what"; else bad "$what (see $log)"; sed 's/^/     /' "$log" | tail -5; fi
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS [STATUS]: polls until URL answers STATUS (200).
wait_http() {
    local url=$1 limit=$2 want=${3:-200} i code
    for ((i = 0; i < limit * 5; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [ "$code" = "$want" ] && return 0
        sleep 0.2
    done
    echo "$url answered $code, want $want" >&2
    return 1
}

http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }

pick_engine() {
    if [ -n "${ENGINE:-}" ]; then
        :
    elif command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        if ! command -v podman >/dev/null ||
           ! podman image exists docker.io/library/debian:bookworm-slim; then
            local env_sh=$ROOT/../shared/tools/container-env.sh
            if [ -f "$env_sh" ]; then sh "$env_sh"; fi
        fi
        command -v podman >/dev/null || { echo "no docker engine and no podman" >&2; exit 1; }
        ENGINE=podman
        export BUILDAH_ISOLATION=chroot
    fi
    PODMAN=0
    "$ENGINE" --version 2>/dev/null | grep -qi podman && PODMAN=1
    say "engine: $ENGINE ($("$ENGINE" --version | head -1))"
}

cleanup() {
    local c
    set +e
    if [ ${#COMPOSE[@]} -gt 0 ]; then
        "${COMPOSE[@]}" logs >"$WORK/compose.log" 2>&1
        "${COMPOSE[@]}" down -t 5 >>"$WORK/compose-down.log" 2>&1
    fi
    for c in "${CONTAINERS[@]}"; do
        "$ENGINE" rm -f -t 2 "$c" >/dev/null 2>&1 || "$ENGINE" rm -f "$c" >/dev/null 2>&1
    done
    "$ENGINE" network rm "$NET" "${RUN_ID}_default" "$RUN_ID-topo" >/dev/null 2>&1
    rm -f "$WORK/go"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. image
# The build stage's image: node:22-bookworm, pulled by the engine, unless
# BUILD_IMAGE names another.  Where nothing can be pulled (podman without a
# registry), a local bookworm image with this machine's Node.js (>= 20.19)
# stands in for it, and the build reuses api/node_modules, which `make all`
# installs here first, since npm cannot download inside the build.
build_base() {
    local ctx=$WORK/node-base node
    BUILD_ARGS=()
    if [ -n "${BUILD_IMAGE:-}" ]; then
        BUILD_ARGS=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")
        return
    fi
    if [ "$PODMAN" = 0 ] || "$ENGINE" image exists docker.io/library/node:22-bookworm; then
        return
    fi
    node=$(command -v node) || { bad "no node:22-bookworm image and no Node.js here"; exit 1; }
    say "standing in for node:22-bookworm: debian:bookworm with Node.js $(node --version)"
    make -s all >"$WORK/host-make.log" 2>&1 || { bad "make all on the host (see $WORK/host-make.log)"; exit 1; }
    mkdir -p "$ctx"
    cp "$(readlink -f "$node")" "$ctx/node"
    rm -rf "$ctx/npm" && cp -a "$(npm root -g)/npm" "$ctx/npm"
    "$ENGINE" build --format docker -t localhost/lossd-node-base:test -f - "$ctx" \
        >"$WORK/node-base.log" 2>&1 <<'EOF'
FROM debian:bookworm
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
EOF
    BUILD_ARGS=(--build-arg BUILD_IMAGE=localhost/lossd-node-base:test)
}

build_image() {
    local fmt=()
    if [ -n "${IMAGE_TEST_NO_BUILD:-}" ]; then
        say "using the existing image $TAG (IMAGE_TEST_NO_BUILD)"
        return
    fi
    build_base
    [ "$PODMAN" = 1 ] && fmt=(--format docker)   # OCI images drop HEALTHCHECK
    say "building $TAG (the build stage runs make test)"
    if ! "$ENGINE" build "${fmt[@]}" "${BUILD_ARGS[@]}" -t "$TAG" . >"$WORK/build.log" 2>&1; then
        tail -30 "$WORK/build.log"
        bad "image builds and its tests pass (see $WORK/build.log)"
        exit 1
    fi
    ok "image builds and its tests pass"
}

check_image() {
    "$ENGINE" image inspect "$TAG" >"$WORK/inspect.json"
    check "image metadata: user, port, entrypoint, health check" \
        "${CLIENT[@]}" inspect <"$WORK/inspect.json"
    grep -h '^image size' "$WORK"/image_metadata*.log || true
    check "every shared library of lossd is in the image" \
        sh -c "! $ENGINE run --rm --entrypoint /usr/bin/ldd $TAG /usr/local/bin/lossd | grep 'not found'"
    check "no compiler or make in the run stage" \
        sh -c "! $ENGINE run --rm --entrypoint /bin/sh $TAG -c 'command -v cc gcc make'"
}

# ------------------------------------------------------- 2. one container
# run_one NAME PORT [ENV...]: a container as the README runs it, read-only,
# with no capabilities.
run_one() {
    local name=$1 port=$2 envs=() e
    shift 2
    for e in "$@"; do envs+=(-e "$e"); done
    CONTAINERS+=("$name")
    "$ENGINE" run -d --name "$name" --network "$NET" -p "127.0.0.1:$port:8080" \
        --read-only --cap-drop ALL --security-opt no-new-privileges \
        "${envs[@]}" "$TAG" >>"$WORK/run.log" 2>&1
}

proc_uid() {
    "$ENGINE" exec "$1" sh -c 'id -u; grep ^Uid: /proc/1/status'
}

single_container() {
    local name=$RUN_ID-one port
    port=$(free_port)
    say "one container on 127.0.0.1:$port"
    run_one "$name" "$port"
    check "/healthz answers 200" wait_http "http://127.0.0.1:$port/healthz" 20
    check "/readyz answers 200" wait_http "http://127.0.0.1:$port/readyz" 5
    check "one request per loss matches the reference vectors" \
        "${CLIENT[@]}" families "http://127.0.0.1:$port" "$ROOT/tests/vectors"
    grep -h '^families' "$WORK"/one_request_per_loss*.log || true
    proc_uid "$name" >"$WORK/uid.log" 2>&1 || true
    check "the daemon runs as uid 10001, not root" \
        grep -qE '^Uid:[[:space:]]+10001[[:space:]]+10001' "$WORK/uid.log"
    sigterm_during_request "$name" "$port"
}

# Half of an 8 MB request is sent, the container gets SIGTERM, then the rest
# is sent: the request must still be answered, and the daemon exit 0.
sigterm_during_request() {
    local name=$1 port=$2 cpid code
    rm -f "$WORK/go"
    "${CLIENT[@]}" slow "http://127.0.0.1:$port" "$WORK/go" >"$WORK/slow.log" 2>&1 &
    cpid=$!
    for _ in $(seq 100); do grep -q half-sent "$WORK/slow.log" && break; sleep 0.1; done
    "$ENGINE" kill -s TERM "$name" >/dev/null
    sleep 1
    check "/readyz answers 503 while draining" \
        sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$port/readyz)\" != 200 ]"
    touch "$WORK/go"
    if wait "$cpid"; then ok "SIGTERM during a large request: it is still answered ($(tail -1 "$WORK/slow.log"))"
    else bad "SIGTERM during a large request: $(tail -1 "$WORK/slow.log")"; fi
    code=$("$ENGINE" wait "$name" 2>/dev/null | tail -1)
    if [ "$code" = 0 ]; then ok "the daemon exits 0 after SIGTERM"; else bad "the daemon exited $code after SIGTERM"; fi
    "$ENGINE" logs "$name" >"$WORK/one.log" 2>&1 || true
}

# ------------------------------------------------------------ 3. topology
nginx_image() {
    if [ -n "${NGINX_IMAGE:-}" ]; then return; fi
    if [ "$ENGINE" = docker ]; then NGINX_IMAGE=nginx:1.27; return; fi
    # No registry here: an nginx image from Debian's package stands in for
    # the official one; docker/nginx.conf works in both.
    NGINX_IMAGE=localhost/lossd-nginx:test
    "$ENGINE" build --format docker -t "$NGINX_IMAGE" -f - "$WORK" >"$WORK/nginx-build.log" 2>&1 <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
}

compose_up() {
    local file=$ROOT/docker/docker-compose.yml
    export LOSSD_IMAGE=$TAG NGINX_IMAGE LOSSD_HTTP_PORT=$HTTP_PORT
    if [ "$ENGINE" = docker ] && docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose -f "$file" -p "$RUN_ID")
        "${COMPOSE[@]}" up -d --no-build --scale lossd=3 >"$WORK/compose-up.log" 2>&1
    elif [ "$ENGINE" = podman ] && { command -v podman-compose >/dev/null ||
            { command -v apt-get >/dev/null && apt-get install -y -qq podman-compose >/dev/null 2>&1; }; }; then
        # podman-compose starts deploy.replicas (3) copies of lossd.
        COMPOSE=(podman-compose -f "$file" -p "$RUN_ID")
        "${COMPOSE[@]}" up -d --no-build >"$WORK/compose-up.log" 2>&1
    else
        plain_up
    fi
}

# The same topology without Compose: a network in which "lossd" resolves to
# the three replicas, and nginx with docker/nginx.conf.
plain_up() {
    local i
    "$ENGINE" network create "$RUN_ID-topo" >/dev/null
    for i in 1 2 3; do
        CONTAINERS+=("${RUN_ID}_lossd_$i")
        "$ENGINE" run -d --name "${RUN_ID}_lossd_$i" --network "$RUN_ID-topo" \
            --network-alias lossd --restart unless-stopped --read-only --cap-drop ALL \
            --label com.docker.compose.project="$RUN_ID" --label com.docker.compose.service=lossd \
            -e LOSSD_GRACE=25 "$TAG" >/dev/null
    done
    CONTAINERS+=("${RUN_ID}_nginx_1")
    "$ENGINE" run -d --name "${RUN_ID}_nginx_1" --network "$RUN_ID-topo" \
        -p "$HTTP_PORT:80" --restart unless-stopped \
        --label com.docker.compose.project="$RUN_ID" --label com.docker.compose.service=nginx \
        -v "$ROOT/docker/nginx.conf:/etc/nginx/nginx.conf:ro" "$NGINX_IMAGE" >/dev/null
}

service_containers() {
    "$ENGINE" ps -a --filter "label=com.docker.compose.project=$RUN_ID" \
        --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | sort
}

container_ip() {
    "$ENGINE" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'
}

# phase_log NAME: the nginx log lines written since the previous call.
NGINX_LINES=0
phase_log() {
    "$ENGINE" logs "$NGINX_CTR" >"$WORK/nginx-all.log" 2>/dev/null || true
    tail -n +"$((NGINX_LINES + 1))" "$WORK/nginx-all.log" >"$WORK/nginx-$1.log"
    NGINX_LINES=$(wc -l <"$WORK/nginx-all.log")
}

# tally PHASE [REPLICA...]: requests per replica in PHASE's nginx log; fails
# unless each REPLICA named (default: all) served some.
tally() {
    local phase=$1 args=() r
    shift
    phase_log "$phase"
    [ $# -gt 0 ] || set -- "${REPLICAS[@]}"
    for r in "$@"; do args+=("$r=${REPLICA_IP[$r]}"); done
    "${CLIENT[@]}" tally "$WORK/nginx-$phase.log" "${args[@]}" >"$WORK/tally-$phase.log" 2>&1
    local rc=$?
    sed "s/^tally:/$phase:/" "$WORK/tally-$phase.log"
    return $rc
}

topology() {
    local base r pid lpid
    HTTP_PORT=$(free_port)
    base=http://127.0.0.1:$HTTP_PORT
    say "compose topology: 3 replicas behind nginx on 127.0.0.1:$HTTP_PORT"
    nginx_image
    if ! compose_up; then
        bad "the topology comes up (see $WORK/compose-up.log)"
        tail -20 "$WORK/compose-up.log"
        return
    fi
    mapfile -t REPLICAS < <(service_containers lossd)
    NGINX_CTR=$(service_containers nginx | head -1)
    declare -gA REPLICA_IP=()
    for r in "${REPLICAS[@]}"; do REPLICA_IP[$r]=$(container_ip "$r"); done
    echo "replicas: $(for r in "${REPLICAS[@]}"; do printf '%s=%s ' "$r" "${REPLICA_IP[$r]}"; done)"
    if [ ${#REPLICAS[@]} -eq 3 ]; then ok "3 lossd replicas run"; else bad "${#REPLICAS[@]} lossd replicas, want 3"; return; fi
    check "nginx answers /healthz" wait_http "$base/healthz" 30
    phase_log start

    check "300 requests through nginx: all answered 200, correct" \
        "${CLIENT[@]}" load "$base" 300 6 "$WORK/load-balance.json"
    if tally balance; then ok "every replica served some of them (round-robin)"
    else bad "a replica served none of them"; fi

    # A replica dies (SIGKILL) while requests are in flight on it.
    "${CLIENT[@]}" load "$base" 400 6 "$WORK/load-kill.json" >"$WORK/load-kill.log" 2>&1 &
    lpid=$!
    sleep 1
    r=${REPLICAS[1]}
    pid=$("$ENGINE" inspect -f '{{.State.Pid}}' "$r")
    if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -d "/proc/$pid" ]; then kill -KILL "$pid"
    else "$ENGINE" kill -s KILL "$r" >/dev/null; fi
    echo "killed $r (SIGKILL) at $(date -u +%T.%N | cut -c1-12)"
    if wait "$lpid"; then ok "400 requests while $r is killed: none lost ($(tail -1 "$WORK/load-kill.log"))"
    else bad "400 requests while $r is killed: $(tail -1 "$WORK/load-kill.log")"; fi
    tally kill || true
    check "$r is restarted by its restart policy" restarted "$r"
    # nginx leaves a failed replica alone for fail_timeout (10 s), then
    # sends it requests again.
    sleep 11
    check "150 requests: all answered 200, correct" \
        "${CLIENT[@]}" load "$base" 150 6 "$WORK/load-rejoin.json"
    if tally rejoin; then ok "the restarted $r is back in the rotation"
    else bad "the restarted $r served none of them"; fi

    # Another replica is stopped (SIGTERM, drain) under load.
    "${CLIENT[@]}" load "$base" 300 6 "$WORK/load-stop.json" >"$WORK/load-stop.log" 2>&1 &
    lpid=$!
    sleep 1
    r=${REPLICAS[0]}
    "$ENGINE" stop -t 30 "$r" >/dev/null
    echo "stopped $r (SIGTERM) at $(date -u +%T.%N | cut -c1-12)"
    if wait "$lpid"; then ok "300 requests while $r stops: none lost ($(tail -1 "$WORK/load-stop.log"))"
    else bad "300 requests while $r stops: $(tail -1 "$WORK/load-stop.log")"; fi
    check "$r exited 0 after draining" \
        sh -c "[ \"\$($ENGINE inspect -f '{{.State.ExitCode}}' $r)\" = 0 ]"
    tally stop || true

    check "the remaining replicas keep serving: 100 more requests" \
        "${CLIENT[@]}" load "$base" 100 6 "$WORK/load-after.json"
    if tally after "${REPLICAS[1]}" "${REPLICAS[2]}"; then ok "both remaining replicas served them"
    else bad "a remaining replica served none of them"; fi
}

# restarted NAME: NAME runs again within 30 s and answers its health check.
restarted() {
    local i
    for i in $(seq 60); do
        if [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$1")" = true ]; then
            echo "running again after ${i}x0.5 s, restarts: $("$ENGINE" inspect -f '{{.RestartCount}}' "$1" 2>/dev/null)"
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# ------------------------------------------- 4. flags added for deployment
health_check() {
    local name=$RUN_ID-health port i status=
    port=$(free_port)
    run_one "$name" "$port"
    wait_http "http://127.0.0.1:$port/healthz" 20 || true
    if [ "$PODMAN" = 1 ]; then
        check "the image's HEALTHCHECK (lossd --check) passes" "$ENGINE" healthcheck run "$name"
    else
        for i in $(seq 40); do
            status=$("$ENGINE" inspect -f '{{.State.Health.Status}}' "$name")
            [ "$status" = healthy ] && break
            sleep 0.5
        done
        check "the image's HEALTHCHECK (lossd --check) passes" [ "$status" = healthy ]
    fi
    check "lossd --check fails on a port where nothing listens" \
        sh -c "! $ENGINE exec $name /usr/local/bin/lossd --check http://127.0.0.1:9/healthz"
    check "lossd --check fails on a non-200 answer" \
        sh -c "! $ENGINE exec $name /usr/local/bin/lossd --check http://127.0.0.1:8080/nowhere"
}

# LOSSD_GRACE=2: a request whose body never finishes arriving must not keep
# the daemon past the grace period after SIGTERM; lossd says so in its log
# ("grace_expired") and exits 1, since a request was cut.
grace() {
    local name=$RUN_ID-grace port cpid t0 t1 code took
    port=$(free_port)
    run_one "$name" "$port" LOSSD_GRACE=2
    wait_http "http://127.0.0.1:$port/healthz" 20 || true
    "${CLIENT[@]}" stall "http://127.0.0.1:$port" >"$WORK/stall.log" 2>&1 &
    cpid=$!
    for _ in $(seq 100); do grep -q half-sent "$WORK/stall.log" && break; sleep 0.1; done
    t0=$(date +%s.%N)
    "$ENGINE" kill -s TERM "$name" >/dev/null
    code=$("$ENGINE" wait "$name" 2>/dev/null | tail -1)
    t1=$(date +%s.%N)
    kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    "$ENGINE" logs "$name" >"$WORK/grace.log" 2>&1 || true
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    check "LOSSD_GRACE=2: a stalled request holds the shutdown about 2 s (took $took s, exit $code)" \
        awk -v t="$took" -v c="$code" 'BEGIN { exit !(c == "1" && t >= 1.5 && t < 5) }'
    check "the log says the grace period expired" grep -q grace_expired "$WORK/grace.log"
}

say "make k8s-check"
check "the deployment files pass make k8s-check" make -s k8s-check
pick_engine
"$ENGINE" network create "$NET" >/dev/null
build_image
check_image
single_container
topology
health_check
grace
say "image-test: $PASS passed, $FAIL failed"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
