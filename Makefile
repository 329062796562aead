# Every entry point bootstraps .venv itself: a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs on this many processes (pytest-xdist); TEST_WORKERS=0 runs it in this one.
TEST_WORKERS ?= 2

.PHONY: demo serve test check bench format clean

# The last step fetches the paper exchange's historical market data from PyPI (docs/trading.md); it only
# warns when offline (the exchange then replays synthetic bars), so it never fails the build.
$(STAMP): pyproject.toml agents_examples/trading/exchange/market/install.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	-$(BIN)/python -m agents_examples.trading.exchange.market.install
	@touch $(STAMP)

# The gateway with the example network (echo agent, exchange, engine, signal agent) on PORT+1 to PORT+4;
# DURATION=SECONDS stops it cleanly after that long.
demo: $(STAMP)
	$(BIN)/python -m agents_examples.demo --host $(HOST) --port $(PORT) $(if $(DURATION),--duration $(DURATION))

serve: $(STAMP)
	$(BIN)/a2a-gateway serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff format --check a2a_gateway agents_examples benchmarks tests
	$(BIN)/ruff check a2a_gateway agents_examples benchmarks tests
	$(BIN)/mypy a2a_gateway agents_examples
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format a2a_gateway agents_examples benchmarks tests
	$(BIN)/ruff check --fix a2a_gateway agents_examples benchmarks tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks.jsonrpc_send

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache
