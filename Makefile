# lineage: `make demo` runs the demo on the embedded store; `make test` runs the whole suite.
# Both start from a bare machine: they create .venv, install what is missing (Python packages,
# Debian packages, the Neo4j jars from Maven Central) and start what the tests need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECK_PATHS := lineage tests $(wildcard bench)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check format system system-demo system-test neo4j-jars neo4j bench clean dist soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages: the demo needs graphviz only (rendering); the tests also need java + maven
# (the Neo4j launcher) and chromium (the dashboard's browser tests, driven by Playwright with
# the system browser)
system: system-demo system-test

system-demo:
	@command -v dot >/dev/null || { \
		echo "installing Debian packages: graphviz"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; \
	}

system-test:
	@missing=""; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

neo4j-jars:
	storage/neo4j/fetch.sh

demo: $(STAMP) system-demo
	$(BIN)/lineage demo

test: $(STAMP) system neo4j-jars
	$(BIN)/pytest

# the reliability campaigns of tests/reliability/ run long (`make test` runs their fast slice):
# each loops for its share of SOAK_SECONDS, appends its figures (kills, requests, invariants
# checked, violations) to test-artifacts/soak.jsonl, and a table of this soak's figures ends it
SOAK_SECONDS ?= 1200

soak: $(STAMP) system neo4j-jars
	@mkdir -p test-artifacts
	@since=$$(date -u +%Y-%m-%dT%H:%M:%SZ); \
	LINEAGE_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/pytest -m reliability tests/reliability \
		--timeout=$$(( $(SOAK_SECONDS) + 900 )); status=$$?; \
	$(BIN)/python tests/reliability/summary.py --since $$since || status=1; \
	exit $$status

check: $(STAMP)
	$(BIN)/ruff format --check $(CHECK_PATHS)
	$(BIN)/ruff check $(CHECK_PATHS)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format $(CHECK_PATHS)
	$(BIN)/ruff check --fix $(CHECK_PATHS)

# issue 15: lineage beside DVC, MLflow, W&B (offline) and ML Metadata on the same 1 GiB dataset
# and 100,000-run tree; each peer in a venv of its own under bench/out/peers/, pinned in
# bench/peers/requirements/ (made on the first run); the dataset is generated if missing.
# Table on stdout, figures in bench/out/peers.json. PEERS_ARGS="--rounds 5" etc.
.PHONY: bench-peers
bench-peers: $(STAMP)
	$(BIN)/python bench/peers/run.py $(PEERS_ARGS)

# a Neo4j for a developer, on 127.0.0.1:7687, data in .neo4j-data (Ctrl-C stops it)
neo4j: $(STAMP) neo4j-jars
	$(BIN)/python tests/neo4j_process.py .neo4j-data --port 7687

# the wheel, in dist/: `pip install dist/lineage_graph-*.whl` installs it into any venv
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

clean:
	rm -rf $(VENV) demo-out .lineage storage/neo4j/lib dist
