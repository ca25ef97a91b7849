# porthole: `make demo` to see a tunnel work, `make test` to check everything.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c

DENO_VERSION := 2.9.6
# Debian packages the tests use: real clients (curl, nc, ssh), servers (nginx, sshd), proxies
# (squid, microsocks) and what builds a locked-down network (iproute2, nftables).
APT_PACKAGES := curl systemd chromium nginx-light haproxy netcat-openbsd openssh-server openssh-client squid \
  microsocks iproute2 nftables
# Debian packages the benchmarks use (iperf3: bulk throughput); `make bench` installs them.
BENCH_PACKAGES := iperf3
# A deno on PATH wins; otherwise the pinned one is installed from npm into .tools/.
DENO := $(shell command -v deno 2>/dev/null || echo .tools/node_modules/.bin/deno)
export NO_COLOR := 1
# Same as lib/launch.ts V8_FLAGS (why: see there).
V8_FLAGS := --v8-flags=--max-semi-space-size=1,--optimize-for-size,--expose-gc

.PHONY: demo test check bench build release deps clean

demo: $(DENO)
	$(DENO) run -q -P=demo scripts/demo.ts

test: $(DENO) deps check
	@mkdir -p .tools; status=0; $(DENO) test -A tests/ 2>&1 | tee .tools/test.log || status=$$?; \
	sed -nE 's/.*\| ([0-9]+) passed \| ([0-9]+) failed.*/\1 passed, \2 failed/p' .tools/test.log | tail -n 1; \
	exit $$status

check: $(DENO)
	$(DENO) fmt --check
	$(DENO) lint
	$(DENO) check relay.ts agent.ts scripts/ tests/ bench/
	$(DENO) check --doc-only lib/

# Not part of CI; ONLY="9 10" runs those measures alone. -A: it reads relay's and agent's /proc files (CPU time, RSS, fd limits).
bench: $(DENO)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_PACKAGES)"
	$(DENO) run -q -A bench/bench.ts $(ONLY)

# Single binaries with only the permissions each needs, for this machine. deno compile
# downloads its runtime, so this needs the internet; tests never depend on it.
build: $(DENO)
	$(DENO) compile -P=relay $(V8_FLAGS) --output dist/relay relay.ts
	$(DENO) compile -P=agent $(V8_FLAGS) --output dist/agent agent.ts

# The same for every platform deno compile targets, named with the version (deno.json's, which
# `--version` prints): dist/porthole-relay-0.1.0-aarch64-unknown-linux-gnu, ….exe on Windows.
VERSION := $(shell sed -nE 's/^  "version": "([^"]+)".*/\1/p' deno.json)
RELEASE_TARGETS := x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin \
  aarch64-apple-darwin x86_64-pc-windows-msvc
release: $(DENO)
	for target in $(RELEASE_TARGETS); do for program in relay agent; do \
	  $(DENO) compile -P=$$program $(V8_FLAGS) --target $$target \
	    --output dist/porthole-$$program-$(VERSION)-$$target $$program.ts; \
	done; done

.tools/node_modules/.bin/deno:
	npm install --prefix .tools --no-save --no-audit --no-fund --prefer-offline deno@$(DENO_VERSION)

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

clean:
	rm -rf dist .tools
