# raft-nosql — common tasks. `make help` lists them.
BIN := target/debug/raft-nosql
CONFIG ?= cluster.toml
CARGO ?= cargo

.PHONY: help build release server stop status test verify demo run-consistency-test bench chaos clean

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
