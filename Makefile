# corral — see README.md. Targets need root for anything that touches the system (run, test, e2e, bench, install).
SHELL := /bin/bash
.DEFAULT_GOAL := build

PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib/corral
BINDIR      ?= $(PREFIX)/bin
SYSTEMDDIR  ?= /etc/systemd/system
CONFDIR     ?= /etc/corral
NODE        ?= node
CC          ?= cc
NPM         ?= npm

# Debian packages corral needs at run time, and those the tests and benchmarks use.
# gcc + libc6-dev: the build compiles the C helpers in src/native/ (corral-io for streaming, corral-spawn for cheap process spawns).
RUN_PKGS  := runc conmon containernetworking-plugins catatonit iptables iproute2 util-linux mount attr zstd gcc libc6-dev
# golang-go + spdystream: the SPDY interop test compiles a client on Go's own spdystream, offline.
TEST_PKGS := docker-registry busybox-static apache2-utils skopeo prometheus golang-go golang-github-docker-spdystream-dev procps python3
BENCH_PKGS := containerd
# A test file whose failure leaves a timer or socket open must not hold the run forever: files exit once
# their tests end, and a test with no timeout of its own fails after 10 minutes instead of hanging CI.
TEST_FLAGS := --test-force-exit --test-timeout=600000

TS_SOURCES := $(shell find src test e2e bench cri-api -name '*.ts' -not -path 'cri-api/generated/*' 2>/dev/null) cri-api/api.proto tsconfig.json package.json
C_SOURCES  := $(wildcard src/native/*.c)

.PHONY: build run test unit e2e bench install uninstall proto clean deps deps-run deps-test deps-bench npm-deps check-root

check-root:
	@if [ "$$(id -u)" != 0 ]; then echo "make $(MAKECMDGOALS): run as root (containers, mounts and network namespaces need it)"; exit 1; fi

# Installs missing Debian packages only (apt-get update first, once, when something is missing).
define apt_install
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps-run: check-root
	$(call apt_install,$(RUN_PKGS))

deps-test: deps-run
	$(call apt_install,$(TEST_PKGS))
	@# Debian starts these services on install where it can; the tests start their own on random ports.
	@-pkill -x docker-registry 2>/dev/null; pkill -x prometheus 2>/dev/null; true

deps-bench: deps-test
	$(call apt_install,$(BENCH_PKGS))
	@-pkill -x containerd 2>/dev/null; true

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

npm-deps: node_modules/.package-lock.json

dist/.built: node_modules/.package-lock.json $(TS_SOURCES) $(C_SOURCES) scripts/gen-types.js
	rm -rf dist
	$(NPM) run --silent build
	chmod +x dist/src/cli/main.js
	install -d dist/bin
	for c in $(C_SOURCES); do $(CC) -O2 -Wall -Wextra -o dist/bin/$$(basename $$c .c) $$c || exit 1; done
	@touch $@

build: dist/.built

proto: npm-deps
	$(NODE) scripts/gen-types.js

run: deps-run build
	exec dist/src/cli/main.js

# One node --test run over unit and e2e tests, so the closing summary counts everything.
test: deps-test build
	$(NODE) --test $(TEST_FLAGS) --test-concurrency=1 dist/test/ dist/e2e/

unit: build
	$(NODE) --test $(TEST_FLAGS) dist/test/

e2e: deps-test build
	$(NODE) --test $(TEST_FLAGS) --test-concurrency=1 dist/e2e/

bench: deps-bench build
	$(NODE) dist/bench/run.js

install: deps-run build
	install -d $(LIBDIR) $(BINDIR) $(CONFDIR) $(CONFDIR)/corral.toml.d
	rm -rf $(LIBDIR)/dist $(LIBDIR)/node_modules $(LIBDIR)/cri-api
	cp -a dist package.json package-lock.json $(LIBDIR)/
	cd $(LIBDIR) && $(NPM) ci --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null
	@# The node flags come from main.js's shebang (one place), the node binary is pinned to the one found now.
	printf '#!/bin/sh\nexec %s%s %s/dist/src/cli/main.js "$$@"\n' "$$(command -v $(NODE))" "$$(head -1 dist/src/cli/main.js | sed 's/^.*node//')" "$(LIBDIR)" > $(BINDIR)/corral
	chmod 755 $(BINDIR)/corral
	[ -e $(CONFDIR)/corral.toml ] || $(BINDIR)/corral config --default > $(CONFDIR)/corral.toml
	install -d $(SYSTEMDDIR)
	install -m 644 systemd/corral.service $(SYSTEMDDIR)/corral.service
	install -d $(SYSTEMDDIR)/corral.service.d
	install -m 644 systemd/corral.service.d/10-example.conf.example $(SYSTEMDDIR)/corral.service.d/
	@systemctl daemon-reload 2>/dev/null || true
	@echo "installed: $(BINDIR)/corral, $(LIBDIR), $(CONFDIR)/corral.toml, $(SYSTEMDDIR)/corral.service"
	@echo "start it with: systemctl enable --now corral"

uninstall:
	-systemctl disable --now corral 2>/dev/null
	rm -rf $(LIBDIR) $(BINDIR)/corral $(SYSTEMDDIR)/corral.service $(SYSTEMDDIR)/corral.service.d
	@echo "left in place: $(CONFDIR) and the state under /var/lib/corral (remove with: corral wipe)"

clean:
	rm -rf dist dist-* cri-api/generated
