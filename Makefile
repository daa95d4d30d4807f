# Everything runs from the project's own virtual environment, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DLT_PYTHON := benchmarks/.venv-dlt/bin/python
# Some machines set PYTHONDONTWRITEBYTECODE; every Airflow subprocess would then recompile Airflow from source.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv browser topology-packages test lint unit demo e2e topology soak soak-celery bench docs dist screenshots audit clean compat compat-lock catalogue

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv setuptools  # venv's own setuptools 65.5.0 has PYSEC-2022-43012
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	touch $(STAMP)

# Debian's Chromium for the browser tests (needs root and apt); without it they are skipped, saying why.
browser:
	@test -x /usr/bin/chromium || apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
		|| echo "chromium could not be installed: the browser tests will be skipped"

# The production topology needs root, iproute2, PostgreSQL's server binaries, redis-server and a C compiler (for
# its clock-skew host), all on the machine; without them the topology tests are skipped, saying why.
topology-packages:
	@command -v cc >/dev/null || apt-get install -y -q gcc >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q gcc >/dev/null 2>&1) \
		|| echo "no C compiler could be installed: the topology tests will be skipped"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Then the production topology (tests/topology, one deployment for all of it): exports, the 2-minute Celery soak
# and the network faults, with each run's figures (tasks per host, calls, refreshes, token trouble) in the output.
test: lint browser topology-packages
	$(BIN)/pytest -m "not topology"
	$(BIN)/pytest -rP tests/topology

unit: venv  # unit tests only: no emulator, no Airflow DB, seconds
	$(BIN)/pytest tests/unit -q

# The older Airflow lines (2.11, 3.0, 3.1, 3.2), each from its lock in compat/ (see compat/README.md).
# make compat COMPAT_LINES="2.11 3.1" runs a selection.
compat: venv
	compat/run.sh $(COMPAT_LINES)

# Re-resolve the locks (after a dependency change in pyproject.toml).
compat-lock: venv
	compat/lock.sh

e2e: venv
	$(BIN)/pytest -m e2e

# The production topology alone: CeleryExecutor on PostgreSQL and Redis, three worker hosts in network namespaces.
topology: venv topology-packages
	$(BIN)/pytest -m topology

# Export benchmark against HttpOperator and dlt (dlt in its own environment); writes docs/performance.md.
# Not part of `make test`. Options: make bench BENCH_ARGS='--quick' (smoke run), see benchmarks/README.md.
bench: venv $(DLT_PYTHON)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

$(DLT_PYTHON):
	$(PYTHON) -m venv benchmarks/.venv-dlt
	$(DLT_PYTHON) -m pip install --quiet "dlt[filesystem]==1.31.0"

# The long soak: 16 workers on a 5-second token, 10 minutes of calls in waves of 200 s (make test runs it for 75 s).
soak: venv
	SAGE200_SOAK_SECONDS=600 $(BIN)/pytest -s tests/e2e/test_soak.py

# The long soak on the production topology: 10 minutes of calls from three Celery worker hosts, in waves of fresh
# task processes of 200 s as `make soak` (make test: one 2-minute wave).
soak-celery: venv topology-packages
	SAGE200_CELERY_SOAK_SECONDS=600 $(BIN)/pytest -s tests/topology/test_soak_celery.py

docs: venv
	$(BIN)/mkdocs build --strict --site-dir .site

# The wheel and sdist that would be published, checked as PyPI would (the e2e deployment installs this wheel).
dist: venv
	rm -rf dist
	$(BIN)/uv build --quiet --python $(BIN)/python --out-dir dist
	$(BIN)/twine check --strict dist/*

# Refresh the screenshots in docs/images from the browser tests.
screenshots: venv browser
	SAGE200_SCREENSHOT_DIR=docs/images $(BIN)/pytest -m e2e tests/e2e/test_browser.py

demo: venv
	$(BIN)/python scripts/demo.py

# Regenerate the resource catalogue (airflow_provider_sage200/catalogue_data.py and the table in docs/reference.md)
# from Sage's OpenAPI description in ../shared/sage200-openapi/ (a test fails while they disagree).
catalogue: venv
	$(BIN)/python scripts/generate_catalogue.py

# Known vulnerabilities in the installed dependencies (needs PyPI's JSON API; not part of `make test`).
audit: venv
	scripts/audit.sh

clean:
	rm -rf $(VENV) dist compat/.envs .demo .site .pytest_cache .ruff_cache benchmarks/.venv-dlt benchmarks/results
