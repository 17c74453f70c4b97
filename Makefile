# raft-nosql — common tasks. `make help` lists them.
BIN := target/debug/raft-nosql
CONFIG ?= cluster.toml
CARGO ?= cargo

.PHONY: help build release server stop status test verify demo run-consistency-test bench chaos clean browser-deps screenshot

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

build: ## Build the raft-nosql binary (debug)
	$(CARGO) build

release: ## Build an optimised binary (target/release/raft-nosql)
	$(CARGO) build --release

server: build ## Run the 3-node cluster of cluster.toml in the foreground (Ctrl+C stops it)
	$(BIN) server --config $(CONFIG)

stop: build ## Stop a cluster started with 'raft-nosql cluster start'
	$(BIN) cluster stop --config $(CONFIG)

status: build ## Show every node's state
	$(BIN) cluster status --config $(CONFIG)

test: ## Run every test (unit, storage conformance, routes, real processes)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi

browser-deps: ## Install Debian's chromium and chromedriver for the dashboard's browser test (if missing)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "chromium and chromedriver are installed"; \
	else \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium chromium-driver; \
	fi

screenshot: browser-deps ## Regenerate docs/dashboard.png (the dashboard mid-partition, from the browser test)
	mkdir -p docs
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(CARGO) nextest run --test dashboard_browser; \
	else \
		DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(CARGO) test --test dashboard_browser; \
	fi

verify: ## Formatting, lints and tests: what must be green before landing
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) test

demo: build ## Run the original project's demo against a running cluster
	./scripts/demo.sh

run-consistency-test: build ## Eventual vs session vs strong reads against a running cluster
	./scripts/test_eventual_consistency.sh

bench: ## Benchmark raft-nosql against etcd on this machine (installs etcd-server)
	./scripts/bench-vs-etcd.sh

chaos: ## Long nemesis run with a linearizability check (DURATION=seconds)
	./scripts/chaos.sh --duration $${DURATION:-300}

clean: ## Remove build output and the local cluster's data
	$(CARGO) clean
	rm -rf data
