# jobq. `make run` builds and starts the server; `make test` builds and runs
# every test. Both install the Debian packages they need when missing.

CC      ?= cc
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
PKGS    := libmicrohttpd libevent libevent_openssl jansson yajl sqlite3 libpq libcurl libssl libcrypto
WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers -Werror
BASE_CFLAGS = -std=c17 -D_GNU_SOURCE -Isrc $(WARN) -DJOBQ_VERSION='"$(VERSION)"' \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
SAN     := -DJOBQ_CHECKS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRC      := $(shell find src -name '*.c' | sort)
# The dashboard's files, compiled in (src/ui/assets.h): generated from web/
# and the chart library, which npm installs into build/web (pinned by
# web/package-lock.json, never committed).
UI_GEN   := build/gen/ui_assets.c
LIB_SRC  := $(filter-out src/main.c,$(SRC)) $(UI_GEN)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

# Release build (build/) and sanitizer build for tests (build/san/).
REL_OBJ  := $(LIB_SRC:%.c=build/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=build/san/obj/%.o)

.PHONY: all run test unit integration bench bench-faktory bench-peers bench-postgres bench-cluster deps clean format-check fuzz fuzz-replay layers
all: build/jobq

# Debian packages; installed only when something is missing.
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libevent-dev libjansson-dev libyajl-dev libjemalloc-dev \
            libsqlite3-dev libpq-dev libcurl4-openssl-dev libssl-dev libcmocka-dev python3-pytest python3-requests \
            python3-prometheus-client clang libclang-rt-14-dev openssl
# Only the tests need a browser: `make test` adds it.
TEST_DEB_PKGS := chromium postgresql
deps:
	@missing=""; for p in $(DEB_PKGS) $(EXTRA_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

WEB_NODE  := build/web
WEB_FILES := $(sort $(wildcard web/*.js web/*.css))
UPLOT     := $(WEB_NODE)/node_modules/uplot/dist
$(WEB_NODE)/.installed: web/package.json web/package-lock.json
	@mkdir -p $(WEB_NODE)
	cp $^ $(WEB_NODE)/
	cd $(WEB_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(UI_GEN): tools/ui_embed.py web/index.html $(WEB_FILES) $(WEB_NODE)/.installed
	@echo "GEN $@"; /usr/bin/python3 tools/ui_embed.py $@ web/index.html $(WEB_FILES) \
	  $(UPLOT)/uPlot.iife.min.js $(UPLOT)/uPlot.min.css

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"; $(CC) $(BASE_CFLAGS) -O2 -g -MMD -MP -c $< -o $@

build/san/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC(san) $<"; $(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -MMD -MP -c $< -o $@

# The release build allocates with jemalloc (docs/architecture.md, "Why
# jemalloc"); the sanitizer build keeps glibc's, which ASan replaces.
build/jobq: $(REL_OBJ) build/obj/src/main.o
	@echo "LD $@"; $(CC) -o $@ $^ $(LIBS) -ljemalloc

# The same with glibc's malloc, for bench/alloc_choice.sh.
build/bench/jobq-glibc: $(REL_OBJ) build/obj/src/main.o
	@mkdir -p $(dir $@)
	@echo "LD $@"; $(CC) -o $@ $^ $(LIBS)

build/san/jobq: $(SAN_OBJ) build/san/obj/src/main.o
	@echo "LD $@"; $(CC) $(SAN) -o $@ $^ $(LIBS)

build/san/test_%: tests/unit/test_%.c $(SAN_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "LD $@"; $(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -o $@ $(filter-out %.h,$^) $(LIBS) -lcmocka

build/bench/loadgen: bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(LIBS)

build/bench/pwdhash_cost: bench/pwdhash_cost.c src/faktory/auth.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $^ $(LIBS)

build/bench/fwpgen: bench/fwpgen.c bench/gen.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(LIBS)

build/bench/pgqueue: bench/pgqueue.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(LIBS)

build/bench/peergen: bench/peergen.c bench/gen.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(LIBS)

# libFuzzer harnesses (fuzz/), built with clang and the same sanitizers.
# `make fuzz` explores for FUZZ_SECONDS each, keeping what it finds in
# build/fuzz/corpus/; `make fuzz-replay` (part of `make test`) runs every
# committed input of fuzz/corpus/ once.
FUZZERS      := request stored_doc config policy fwp journal json
FUZZ_SECONDS ?= 60
FUZZ_CC      := clang
FUZZ_SAN     := -DJOBQ_CHECKS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJ     := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_BINS    := $(FUZZERS:%=build/fuzz/fuzz_%)
.SECONDARY: $(FUZZ_OBJ)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC(fuzz) $<"; $(FUZZ_CC) $(BASE_CFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_OBJ)
	@echo "LD $@"; $(FUZZ_CC) $(BASE_CFLAGS) -Ifuzz -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LIBS)

fuzz: deps
	$(MAKE) -j$$(nproc) $(FUZZ_BINS)
	@set -e; for f in $(FUZZERS); do mkdir -p build/fuzz/corpus/$$f; \
	  echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus/$$f fuzz/corpus/$$f 2>&1 | \
	    grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|cov:|ERROR|SUMMARY" | tail -4; \
	done

fuzz-replay: $(FUZZ_BINS)
	@set -e; for f in $(FUZZERS); do \
	  n=$$(ls fuzz/corpus/$$f | wc -l); echo "== fuzz_$$f: replaying $$n inputs"; \
	  build/fuzz/fuzz_$$f -runs=0 fuzz/corpus/$$f > build/fuzz/replay_$$f.log 2>&1 || \
	    { tail -40 build/fuzz/replay_$$f.log; exit 1; }; \
	done

run: deps
	$(MAKE) -j$$(nproc) build/jobq
	./build/jobq serve

UNIT_BINS := $(UNIT_SRC:tests/unit/test_%.c=build/san/test_%)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# Test-only npm packages (the Faktory worker library the interop tests
# drive), pinned by tests/integration/faktory/package-lock.json and
# installed into build/node, never committed.
NODE_DIR := build/node
$(NODE_DIR)/.installed: tests/integration/faktory/package.json tests/integration/faktory/package-lock.json
	@mkdir -p $(NODE_DIR)
	cp $^ $(NODE_DIR)/
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The same for the browser tests' driver (playwright-core, which drives
# Debian's chromium: installed by deps, no browser download).
BROWSER_NODE := build/browser
$(BROWSER_NODE)/.installed: tests/browser/package.json tests/browser/package-lock.json
	@mkdir -p $(BROWSER_NODE)
	cp $^ $(BROWSER_NODE)/
	cd $(BROWSER_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The API suite runs three times: on SQLite (everything), then on
# PostgreSQL (JOBQ_TEST_STORE=postgres: every server gets a new database of
# a cluster the tests start, tests/integration/pg.py), skipping what is
# SQLite's own, then with every server a node in cluster mode on its own
# database (postgres-cluster), skipping what a node does differently by
# design (marked cluster_differs, each with why).
PG_SUITE := $(addprefix tests/integration/,test_jobs_api.py test_lease_api.py test_bad_input.py \
            test_protection.py test_search.py test_bulk.py test_restart.py test_retention.py \
            test_faktory.py test_faktory_protocol.py test_events.py test_session.py \
            test_commands.py test_metrics.py test_cli.py test_hardening.py test_memory_cache.py \
            test_logs.py test_runners.py test_spill.py)
integration: build/san/jobq build/jobq $(NODE_DIR)/.installed $(BROWSER_NODE)/.installed
	JOBQ_BIN=$(CURDIR)/build/san/jobq JOBQ_NODE_PATH=$(CURDIR)/$(NODE_DIR)/node_modules \
	  JOBQ_BROWSER_NODE_PATH=$(CURDIR)/$(BROWSER_NODE)/node_modules \
	  /usr/bin/python3 -m pytest -q tests/integration
	JOBQ_TEST_STORE=postgres JOBQ_BIN=$(CURDIR)/build/san/jobq \
	  JOBQ_NODE_PATH=$(CURDIR)/$(NODE_DIR)/node_modules \
	  /usr/bin/python3 -m pytest -q $(PG_SUITE)
	JOBQ_TEST_STORE=postgres-cluster JOBQ_BIN=$(CURDIR)/build/san/jobq \
	  JOBQ_NODE_PATH=$(CURDIR)/$(NODE_DIR)/node_modules \
	  /usr/bin/python3 -m pytest -q $(PG_SUITE)

# Which module may include which: the table in docs/architecture.md.
layers:
	/usr/bin/python3 tests/layers.py

test:
	$(MAKE) deps EXTRA_DEB_PKGS="$(TEST_DEB_PKGS)"
	$(MAKE) layers
	$(MAKE) -j$$(nproc) unit
	$(MAKE) -j$$(nproc) fuzz-replay
	$(MAKE) integration

bench: deps
	$(MAKE) build/jobq build/bench/loadgen
	bench/run.sh

# The Faktory protocol against HTTP, in one run (docs/performance.md).
bench-faktory: deps
	$(MAKE) build/jobq build/bench/loadgen build/bench/fwpgen
	/usr/bin/python3 bench/faktory.py

# jobq on a throwaway PostgreSQL cluster, beside a plain SKIP LOCKED queue
# (docs/performance.md); postgresql is installed when missing.
bench-postgres: deps
	$(MAKE) deps EXTRA_DEB_PKGS=postgresql
	$(MAKE) build/jobq build/bench/loadgen build/bench/fwpgen build/bench/pgqueue
	/usr/bin/python3 bench/postgres.py

# Cluster mode: one node alone, one and three in cluster mode, the SKIP
# LOCKED yardstick, with PostgreSQL's statements, WAL and CPU per job.
bench-cluster: deps
	$(MAKE) deps EXTRA_DEB_PKGS=postgresql
	$(MAKE) build/jobq build/bench/loadgen build/bench/fwpgen build/bench/pgqueue
	/usr/bin/python3 bench/cluster.py

# jobq against beanstalkd and Redis from Debian (installed when missing),
# same client style, alternating, medians of 3 (docs/performance.md).
bench-peers: deps
	@command -v beanstalkd >/dev/null && command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq beanstalkd redis-server; }
	$(MAKE) build/jobq build/bench/loadgen build/bench/fwpgen build/bench/peergen
	/usr/bin/python3 bench/peers.py

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
