# `make run` sets everything up and serves the demo on SQLite; `make test` runs every CI check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8000

.PHONY: install js run test test-fast lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The real JavaScript SDKs the suite drives (tests/js, exact versions in its package-lock.json).
# npm ci runs again only when the lock file changed (npm writes node_modules/.package-lock.json).
JS_STAMP := tests/js/node_modules/.package-lock.json
$(JS_STAMP): tests/js/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd tests/js && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; \
	else echo "make js: no npm on PATH; the JavaScript SDK tests will be skipped (CI requires them)"; fi

js: $(JS_STAMP)

instance/secret_key: | $(STAMP)
	mkdir -p instance
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > $@

run: install instance/secret_key
	export DARKLAUNCH_ENV=development SECRET_KEY="$$(cat instance/secret_key)" \
	       DARKLAUNCH_BASE_URL="$${DARKLAUNCH_BASE_URL:-http://127.0.0.1:$(PORT)}"; \
	$(BIN)/darklaunch db upgrade && \
	$(BIN)/darklaunch demo --url "http://127.0.0.1:$(PORT)" && \
	exec $(BIN)/gunicorn -c gunicorn.conf.py --bind 127.0.0.1:$(PORT) 'server:create_app()'

lint: install
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench

typecheck: install
	$(BIN)/mypy

# The suite runs on SQLite, then again on PostgreSQL (TEST_DATABASE_URL, default
# postgresql+psycopg://127.0.0.1:5432/test); coverage of both runs counts toward the floor.
pytest: install js
	rm -f .coverage .coverage.*
	$(BIN)/pytest --backend sqlite --cov --cov-report= $(PYTEST_ARGS)
	$(BIN)/pytest --backend postgresql --cov --cov-append --cov-report= -m "not e2e" $(PYTEST_ARGS)
	$(BIN)/coverage report --fail-under=85

test: lint typecheck pytest

# The edit-test loop: lint, types and the SQLite run without browsers and reverse proxies
# (CI runs everything: `make test`).
test-fast: lint typecheck js
	$(BIN)/pytest --backend sqlite -m "not e2e and not proxy" $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache test-artifacts
