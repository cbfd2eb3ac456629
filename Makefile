# vnml valuation mesh. `make run` starts the whole mesh; `make test` runs the whole suite.
# Both create the local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTO_FILES := $(wildcard protos/vn/v1/*.proto)

.PHONY: install proto check-proto lint test test-browser test-cluster check-deploy run bench bench-cluster soak clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Regenerate the Python stubs (vn/v1) from protos/ with grpcio-tools, .pyi type stubs included.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO_FILES)
	touch vn/__init__.py vn/v1/__init__.py

## Fail when the committed stubs differ from what the protos generate.
check-proto: $(STAMP)
	@rm -rf .proto-check && mkdir -p .proto-check
	@$(PY) -m grpc_tools.protoc -I protos --python_out=.proto-check --pyi_out=.proto-check \
		--grpc_python_out=.proto-check $(PROTO_FILES)
	@for f in .proto-check/vn/v1/*; do cmp -s "$$f" "vn/v1/$$(basename $$f)" || \
		{ echo "stale generated stub: vn/v1/$$(basename $$f) (run make proto)"; rm -rf .proto-check; exit 1; }; done
	@rm -rf .proto-check && echo "generated stubs are up to date"

node_modules/.bin/buf: package.json
	npm install --no-audit --no-fund --silent
	touch $@

lint: $(STAMP) node_modules/.bin/buf check-proto
	$(BIN)/ruff check .
	$(BIN)/mypy vncommon vnapi vnvs vnas gateway vnclient pricers
	node_modules/.bin/buf lint

# The console's browser tests run in a process of their own: Playwright's sync API leaves its event loop
# marked running on the main thread, which the asyncio tests cannot share.
test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 -m "not browser"
	$(BIN)/pytest -q -p no:cacheprovider -m browser tests/browser

## Validate deploy/ (Dockerfile, compose.yaml, kustomize base and overlays) and the CI workflow, offline.
check-deploy: $(STAMP)
	bash deploy/check.sh $(BIN)

## The console in headless Chromium (Debian's chromium, installed by the test setup when missing; needs root).
## Screenshots: test-artifacts/screenshots/.
test-browser: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m browser tests/browser

## The end-to-end, idempotency and fault suites again, against a local 6-node Redis Cluster (REDIS_MODE=cluster):
## first with STREAM_SHARDS=6, then the fault suite with one shard (its checks name the unsharded streams).
## The cluster's own fault tests (tests/cluster) already run in `make test`, on a private cluster.
## (The in-process tracing tests stay on one Redis: their services do not start against the cluster fixture yet.)
test-cluster: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --redis-mode=cluster --stream-shards=6 --ignore=tests/e2e/test_tracing.py \
		tests/e2e tests/vnapi/test_idempotency.py tests/cluster/test_shards.py tests/cluster/test_tiers.py \
		tests/cluster/test_settings.py
	$(BIN)/pytest -q -p no:cacheprovider --redis-mode=cluster tests/faults

run: $(STAMP)
	$(BIN)/vn-run

bench: $(STAMP)
	$(PY) -m bench $(SCENARIO)

## Benchmarks on a local 6-node Redis Cluster (bench/cluster.py): STREAM_SHARDS 1 vs 6, vnapi instances.
bench-cluster: $(STAMP)
	$(PY) -m bench.cluster $(SCENARIO)

soak: $(STAMP)
	$(PY) -m bench.soak

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
