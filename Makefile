# lossd -- one non-recursive Makefile for the core library, the daemon, the
# tests and the tools around them.  Every target that compiles first runs
# `deps`, which installs missing Debian packages (as root) and does nothing
# when they are present.  Variants build in their own directories:
# build/ (default), build/asan/.

B        ?= build
SAN      ?=
WERROR   ?=
CC       ?= cc
PYTHON   ?= /usr/bin/python3

WARN   := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wvla
ifneq ($(WERROR),)
WARN   += -Werror
endif
ifneq ($(SAN),)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT      := -O1 -g
else
SANFLAGS :=
OPT      := -O2 -g
endif

CFLAGS_BASE := -std=c11 $(OPT) $(WARN) $(SANFLAGS) -D_POSIX_C_SOURCE=200809L -MMD -MP
# Deferred (=) so that pkg-config runs after `deps` has installed the packages.
PKGS        := libmicrohttpd libcjson libuv
TEST_PKGS   := criterion libcurl
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) $(TEST_PKGS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS    = $(shell pkg-config --libs $(TEST_PKGS) libcjson 2>/dev/null)

DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libcjson-dev \
            libuv1-dev libcriterion-dev libcurl4-openssl-dev curl

CORE_SRC   := $(sort $(wildcard core/*.c))
SERVER_SRC := $(sort $(wildcard server/*.c))
UTIL_SRC   := $(sort $(wildcard tests/util/*.c))
TCORE_SRC  := $(sort $(wildcard tests/core/*.c))
TSERV_SRC  := $(sort $(wildcard tests/server/*.c))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
CORE_OBJ   := $(call obj,$(CORE_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC)) $(B)/obj/gen/assets.o
SERVER_LIB_OBJ := $(filter-out $(B)/obj/server/main.o,$(SERVER_OBJ))
UTIL_OBJ   := $(call obj,$(UTIL_SRC))
TCORE_OBJ  := $(call obj,$(TCORE_SRC))
TSERV_OBJ  := $(call obj,$(TSERV_SRC))

LIBCORE := $(B)/libcore.a
LOSSD   := $(if $(SERVER_SRC),$(B)/lossd)
TESTS   := $(if $(TCORE_SRC),$(B)/tests/core_tests) \
           $(if $(TSERV_SRC),$(B)/tests/server_tests)

.PHONY: all deps run test asan lint format clean vectors unit bench bench-deps
all: $(LIBCORE) $(LOSSD)

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1 \
	    || ! pkg-config --exists $(PKGS) $(TEST_PKGS); then \
	  echo "deps: installing $(DEB_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $(DEB_PKGS) >/dev/null; \
	fi

$(B)/obj/%.o: %.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Icore -Iserver -Itests/util $(CFLAGS) -c $< -o $@

# The OpenAPI document and the reference page, embedded in the daemon:
# Redocly CLI (pinned in api/package.json) bundles api/openapi.yaml to JSON
# and builds the self-contained page; api/embed.mjs turns both into C
# (server/assets.h).  npm runs only when api/node_modules is missing or
# older than the lock file.
API_NPM := api/node_modules/.package-lock.json
REDOCLY := cd api && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
           ./node_modules/.bin/redocly

$(API_NPM): api/package.json api/package-lock.json
	@command -v npm >/dev/null || { echo "api: needs node (>= 20.19) and npm"; exit 1; }
	cd api && npm ci --no-audit --no-fund
	@touch $@

$(B)/gen/openapi.json: api/openapi.yaml api/redocly.yaml $(API_NPM)
	@mkdir -p $(@D)
	$(REDOCLY) bundle openapi.yaml --ext json -o $(abspath $@)

$(B)/gen/docs.html: api/openapi.yaml api/redocly.yaml api/docs.hbs api/offline.mjs \
                   $(API_NPM)
	@mkdir -p $(@D)
	$(REDOCLY) build-docs openapi.yaml --inlineBundle --template docs.hbs \
	  -o $(abspath $@).raw
	node api/offline.mjs $(abspath $@).raw $@

$(B)/gen/assets.c: api/embed.mjs $(B)/gen/openapi.json $(B)/gen/docs.html
	node api/embed.mjs $@ $(B)/gen/openapi.json $(B)/gen/docs.html

$(B)/obj/gen/assets.o: $(B)/gen/assets.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -g0 -Iserver $(CFLAGS) -c $< -o $@

$(LIBCORE): $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(B)/lossd: $(SERVER_OBJ) $(LIBCORE)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(LIBCORE) $(PKG_LIBS) -lm -lpthread

$(B)/tests/core_tests: $(TCORE_OBJ) $(UTIL_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -lm

$(B)/tests/server_tests: $(TSERV_OBJ) $(UTIL_OBJ) $(SERVER_LIB_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(PKG_LIBS) -lm -lpthread

# One family's core tests alone, while other families are being written:
#   make unit T=softmax            (tests/core/test_softmax.c + core/softmax.c)
#   make unit T=triplet F="triplet pairs"
F ?= $(T)
unit: deps
	@mkdir -p $(B)/unit
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Icore -Itests/util -o $(B)/unit/$(T) \
	  tests/core/test_$(T).c tests/util/vec.c core/status.c core/check.c core/vecmath.c \
	  $(foreach f,$(F),core/$(f).c) $(TEST_LIBS) -lm
	LOSSD_VECTORS=$(abspath tests/vectors) ./$(B)/unit/$(T) --jobs 2

run: all
	./$(B)/lossd

# Tests find the daemon and the reference vectors through the environment.
test: all $(TESTS)
	@for t in $(TESTS); do \
	  echo "== $$t"; \
	  LOSSD_BIN=$(abspath $(LOSSD)) LOSSD_VECTORS=$(abspath tests/vectors) \
	    ./$$t --jobs 2 || exit 1; \
	done
	@$(MAKE) --no-print-directory test-api

# The API's checks (api/, tests/api/): Redocly lint of the document, the
# contract tests against a running daemon and the reference page in Debian's
# headless Chromium (installed here when missing).  Screenshots: $(B)/docs*.png.
.PHONY: test-api
test-api: $(LOSSD) $(B)/gen/openapi.json $(B)/gen/docs.html
	$(REDOCLY) lint openapi.yaml
	@command -v chromium >/dev/null || { echo "test-api: installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	LOSSD_BIN=$(abspath $(LOSSD)) LOSSD_BUILD=$(abspath $(B)) \
	  node --test --test-concurrency=1 tests/api/

asan:
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) test B=build/asan SAN=1

# ThreadSanitizer on the daemon (build/tsan/lossd) while the C suites run
# against it: every HTTP test drives its threads (polling, workers,
# suspend/resume, drain).  The test programs themselves are not built with
# TSan: Criterion cannot map its arena under it.  A race makes the daemon
# exit 66, which fails the test that stops it.
.PHONY: tsan valgrind fuzz fuzz-build
tsan: all $(TESTS)
	$(MAKE) --no-print-directory B=build/tsan SANFLAGS=-fsanitize=thread \
	  OPT="-O1 -g" build/tsan/lossd
	@for t in $(TESTS); do \
	  echo "== $$t (daemon: build/tsan/lossd)"; \
	  TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 allocator_may_return_null=1" \
	  LOSSD_BIN=$(abspath build/tsan/lossd) LOSSD_VECTORS=$(abspath tests/vectors) \
	    ./$$t --jobs 2 || exit 1; \
	done

# The HTTP integration tests with every daemon under valgrind
# (tests/server/valgrind-lossd): a leak or a memory error makes the daemon
# exit 99, which fails the test that stops it.
valgrind: all $(B)/tests/server_tests
	@command -v valgrind >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
	LOSSD_REAL_BIN=$(abspath $(LOSSD)) LOSSD_BIN=$(abspath tests/server/valgrind-lossd) \
	  LOSSD_VECTORS=$(abspath tests/vectors) \
	  ./$(B)/tests/server_tests --jobs 1 --filter 'http_*/*'

# libFuzzer (clang) with ASan and UBSan, in build/fuzz/: loss_fuzz drives
# srv_loss_run with "<loss>\n<body>" inputs, http_fuzz sends raw bytes to
# the daemon it runs on loopback, v2_fuzz drives srv_v2_infer (the Open
# Inference Protocol, binary tensors included) with "<model>\n<header
# length>\n<body>" inputs.  Seeds: tests/fuzz/corpus/ (from
# tests/fuzz/make_corpus.py and make_v2_corpus.py).  make fuzz
# FUZZ_SECONDS=600 for a long run.
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined \
            -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz-build:
	@if ! command -v clang >/dev/null || \
	    ! dpkg-query -W -f='$${Status}' libclang-rt-dev 2>/dev/null | \
	      grep -q 'ok installed'; then \
	  echo "fuzz: installing clang and its libFuzzer runtime"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
	    -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null; \
	fi
	$(MAKE) --no-print-directory B=build/fuzz CC=clang OPT="-O1 -g" \
	  SANFLAGS="$(FUZZ_SAN)" build/fuzz/fuzzers/loss_fuzz build/fuzz/fuzzers/http_fuzz \
	  build/fuzz/fuzzers/v2_fuzz

$(B)/fuzzers/%: $(B)/obj/tests/fuzz/%.o $(SERVER_LIB_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm -lpthread

fuzz: fuzz-build
	tests/fuzz/run build/fuzz $(FUZZ_SECONDS) loss http v2

# The benchmark (bench/): the HTTP floor, lossd and a FastAPI + PyTorch peer
# side by side on loopback, and the core alone; writes build/bench/report.md,
# and build/bench/v2.md for the Open Inference Protocol's binary path
# (bench/v2_bench.py).
# Never part of `make test`.
BENCH_DEBS := wrk curl python3-fastapi python3-uvicorn python3-uvloop \
              python3-httptools python3-torch gnuplot-nox

bench-deps: deps
	@missing=; for p in $(BENCH_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(B)/bench/floor: bench/floor.c $(SERVER_LIB_OBJ) $(LIBCORE) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Icore -Iserver $(CFLAGS) -o $@ $< \
	  $(SERVER_LIB_OBJ) $(LIBCORE) $(PKG_LIBS) -lm -lpthread

$(B)/bench/core_bench: bench/core_bench.c $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -Icore $(CFLAGS) -o $@ $< $(LIBCORE) -lm

BENCH_UTIL := $(B)/obj/bench/util.o

$(B)/bench/handler_bench: bench/handler_bench.c $(BENCH_UTIL) $(SERVER_LIB_OBJ) \
                          $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Icore -Iserver $(CFLAGS) -o $@ $< \
	  $(BENCH_UTIL) $(SERVER_LIB_OBJ) $(LIBCORE) $(PKG_LIBS) -lm -lpthread

PARSE_OBJ := $(BENCH_UTIL) $(B)/obj/server/arena.o \
             $(B)/obj/server/json_tree.o $(B)/obj/tests/util/json_same.o

$(B)/bench/parse_bench: bench/parse_bench.c $(PARSE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Icore -Iserver -Itests/util $(CFLAGS) \
	  -o $@ $< $(PARSE_OBJ) $(PKG_LIBS) -lm -lpthread

BENCH_BIN := $(B)/bench/floor $(B)/bench/core_bench \
             $(B)/bench/handler_bench $(B)/bench/parse_bench

# BENCH_ARGS=--quick: shorter runs, for trying the harness.
bench: bench-deps all $(BENCH_BIN)
	$(PYTHON) bench/run.py --build $(B) $(BENCH_ARGS)
	$(PYTHON) bench/v2_bench.py --build $(B) $(BENCH_ARGS)

# Regenerates tests/vectors/*.json with PyTorch (Debian's python3-torch).
vectors:
	$(PYTHON) tests/vectors/gen.py

# The C sources that .clang-format governs: `lint` fails when one of them
# differs from what `make format` writes.
FORMAT_SRC = $(wildcard core/*.[ch] server/*.[ch] tests/*/*.[ch] bench/*.[ch])

lint: deps
	@command -v cppcheck >/dev/null || apt-get install -y -qq cppcheck >/dev/null
	@command -v clang-format >/dev/null || apt-get install -y -qq clang-format >/dev/null
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	  --inline-suppr -Icore -Iserver core server
	clang-format --dry-run --Werror $(FORMAT_SRC)

format:
	@command -v clang-format >/dev/null || apt-get install -y -qq clang-format >/dev/null
	clang-format -i $(FORMAT_SRC)

# The deployment files (docker/), without a container engine: YAML lint, the
# Kubernetes objects against the API schemas (kubernetes-models) and the
# Compose file against the Compose Specification (both pinned in
# docker/validate/package.json), the kustomization rendered when kubectl is
# there, and docker/check-manifests.py for the security, probe and shutdown
# fields, which it also breaks one by one to show that it notices.
.PHONY: k8s-check image-test
K8S_NPM  := docker/validate/node_modules/.package-lock.json
K8S_YAML := $(filter-out %/kustomization.yaml,$(wildcard docker/k8s/*.yaml))

$(K8S_NPM): docker/validate/package.json docker/validate/package-lock.json
	@command -v npm >/dev/null || { echo "k8s-check: needs node and npm"; exit 1; }
	cd docker/validate && npm ci --no-audit --no-fund --silent
	@touch $@

k8s-check: $(K8S_NPM)
	@if ! command -v yamllint >/dev/null || ! $(PYTHON) -c 'import yaml' 2>/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends yamllint python3-yaml >/dev/null; \
	fi
	yamllint -c docker/yamllint.yaml docker/docker-compose.yml docker/k8s/*.yaml
	$(PYTHON) docker/check-manifests.py --self-test
	node docker/validate/validate.mjs $(K8S_YAML)
	node docker/validate/compose.mjs docker/docker-compose.yml
	@if command -v kubectl >/dev/null; then \
	  echo "kubectl kustomize docker/k8s | node docker/validate/validate.mjs"; \
	  kubectl kustomize docker/k8s | node docker/validate/validate.mjs; \
	fi

# Builds the image and checks it: one container, then 3 replicas behind
# nginx (docker/test-image.sh).  Needs docker or podman, so not in `test`.
image-test:
	docker/test-image.sh

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
