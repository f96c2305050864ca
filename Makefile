# TRD Navigator — `make run` runs the main job, `make test` runs the whole suite.
# Both create .venv if missing and install the project (tests: with its dev extras).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run assess test lint typecheck unit services bench reliability schema knowledge clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

DEMO_DB ?= sqlite:///./trdnav-demo.db

# the clinic app on http://127.0.0.1:8000 with demo patients (development mode, local only)
run: $(STAMP)
	TRDNAV_DEV=1 $(BIN)/trdnav demo --database-url $(DEMO_DB)
	TRDNAV_DEV=1 $(BIN)/trdnav serve --database-url $(DEMO_DB) --host 127.0.0.1 --port 8000

# the command-line assessment of the example histories (the previous `make run`)
assess: $(STAMP)
	$(BIN)/trdnav assess examples/*.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

services:  # PostgreSQL for the storage, web and population tests, Chromium for the browser tests, Java for Spark, HarfBuzz-subset for WeasyPrint
	bash .ci/ensure-postgres
	bash .ci/ensure-browser
	bash .ci/ensure-java
	bash .ci/ensure-pdf-libs

unit: $(STAMP) services
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)  # runs every benchmark, then fails if any missed its target
	bash .ci/ensure-wrk
	status=0; \
	$(BIN)/python bench/bench_assess.py || status=1; \
	$(BIN)/python bench/bench_measurement.py || status=1; \
	$(BIN)/python bench/bench_web.py || status=1; \
	$(BIN)/python bench/bench_population.py || status=1; \
	$(BIN)/python bench/bench_cds.py || status=1; \
	exit $$status

# the long reliability runs of docs/reliability.md (the suite runs short versions of each):
# SIGKILL of the server under acknowledged writes (50 kills per database), import/restore killed
# midway, 20+20 concurrent editors, and the 10-minute soak at 30 users
reliability: $(STAMP) services
	status=0; \
	$(BIN)/python bench/bench_kills.py || status=1; \
	$(BIN)/python bench/bench_concurrency.py || status=1; \
	$(BIN)/python bench/bench_soak.py || status=1; \
	exit $$status

schema: $(STAMP)
	$(BIN)/trdnav schema > docs/history-schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# docs/knowledge/*.md (with review.md, the clinician's sign-off checklist) and the JSON Schema,
# then the verification figures
knowledge: $(STAMP)
	$(BIN)/trdnav knowledge docs --out docs/knowledge
	$(BIN)/trdnav schema > docs/history-schema.json
	$(BIN)/trdnav knowledge stats
