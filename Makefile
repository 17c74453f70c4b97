# raft-nosql — common tasks. `make help` lists them.
BIN := target/debug/raft-nosql
CONFIG ?= cluster.toml
CARGO ?= cargo

.PHONY: help build release server stop status test test-rust test-dynamodb test-dynamodb-reference verify demo run-consistency-test bench chaos clean browser-deps screenshot

# The DynamoDB compatibility suite (tests/dynamodb): a virtualenv with pinned boto3, the
# AWS CLI, pytest and moto, and dynalite from npm for the reference runs.
PYTHON ?= python3
VENV := .venv
DDB_REQS := tests/dynamodb/requirements.txt
DDB_NODE := tests/dynamodb/node_modules/.installed

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

test: browser-deps ## Run every test (unit, storage conformance, routes, real processes, the browser, the DynamoDB suite)
	$(MAKE) test-rust
	$(MAKE) test-dynamodb

test-rust: ## The Rust tests only (unit, storage conformance, routes, real processes)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi

$(VENV)/.installed: $(DDB_REQS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(DDB_REQS)
	touch $@

$(DDB_NODE): tests/dynamodb/package.json tests/dynamodb/package-lock.json
	cd tests/dynamodb && npm ci --no-audit --no-fund
	touch $@

test-dynamodb: build $(VENV)/.installed ## boto3 + AWS CLI suite against a real 3-node cluster
	cd tests/dynamodb && DDB_TARGET=raftnosql ../../$(VENV)/bin/pytest -q

test-dynamodb-reference: $(VENV)/.installed $(DDB_NODE) ## The same suite against moto's server and dynalite
	cd tests/dynamodb && DDB_TARGET=moto ../../$(VENV)/bin/pytest -q
	cd tests/dynamodb && DDB_TARGET=dynalite ../../$(VENV)/bin/pytest -q

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
