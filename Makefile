# The README's two set-up commands are `make demo` and `make test`; both create the virtual
# environment on first use. Nothing here needs a server, Docker or internet beyond the package index.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# pip on some machines warns about missing local mirrors on every package; keep the output readable
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: install demo data pipeline test lint clean airflow celery bench check-sources backfill prereqs-demo prereqs-test

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing Python packages into $(VENV) (first time: about a minute)"
	@$(BIN)/python -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q -r requirements-dev.txt -e . 2>&1 | $(QUIET_PIP)
	@touch $(STAMP)

install: $(STAMP)

## Debian packages (deploy/system-packages.txt) and, for the tests, the database servers: installed
## or started when run as root, else one message with the command to run, before anything else runs
prereqs-demo:
	@bash deploy/system-prereqs.sh demo

prereqs-test:
	@bash deploy/system-prereqs.sh test

## make demo: generate the demo CRM and helpdesk data, run both DAGs, print where the outputs are
demo: prereqs-demo install data pipeline

data: install
	$(BIN)/python -m crm_kpis.tools.demo

pipeline: install
	$(BIN)/python -m crm_kpis.tools.demo.run

## make test: the whole test suite (unit, SQL on SQLite, DAG integrity, end-to-end with SMTP)
test: prereqs-test install
	$(BIN)/python -m pytest

## make check-sources: the sources against the source contract (connections crm_db, helpdesk_db; a synced
## one through its adapter: HELPDESK_URL=… HELPDESK_ADAPTER=fivetran_zendesk HELPDESK_SCHEMA=zendesk)
check-sources: install
	$(BIN)/python -m crm_kpis.sources check $(if $(CRM_URL),--crm-url $(CRM_URL),) $(if $(HELPDESK_URL),--helpdesk-url $(HELPDESK_URL),) \
		$(if $(CRM_ADAPTER),--crm-adapter $(CRM_ADAPTER),) $(if $(HELPDESK_ADAPTER),--helpdesk-adapter $(HELPDESK_ADAPTER),) \
		$(if $(CRM_SCHEMA),--crm-schema $(CRM_SCHEMA),) $(if $(HELPDESK_SCHEMA),--helpdesk-schema $(HELPDESK_SCHEMA),)

## make backfill MONTHS=2025-11..2026-10 (or DAYS=2026-10-01..2026-10-31) [ARGS="--dry-run"]: periods, any timezone
backfill: install
	$(BIN)/python -m crm_kpis.tools.backfill $(if $(MONTHS),--months $(MONTHS),) $(if $(DAYS),--days $(DAYS),) $(ARGS)

## make airflow: the Airflow UI on the embedded default (http://127.0.0.1:8080); Ctrl-C stops it
airflow: install
	$(BIN)/python -m crm_kpis.tools.local_airflow $(if $(PORT),--port $(PORT),)

## make celery [WORKERS=2]: Airflow's distributed setup as processes: scheduler, dag-processor, triggerer,
## API server (http://127.0.0.1:8080) and Celery workers, Redis broker, PostgreSQL metadata; Ctrl-C stops it
WORKERS ?= 2
celery: install
	$(BIN)/python -m crm_kpis.tools.distributed --workers $(WORKERS) $(if $(PORT),--port $(PORT),)

## make bench: the benchmark on the local PostgreSQL and MariaDB (SCALE=300 is company scale; data is kept)
SCALE ?= 300
bench: install
	$(BIN)/python -m crm_kpis.tools.bench --scale $(SCALE) $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check dags plugins include tests
	$(BIN)/lint-imports --no-logo

clean:
	rm -rf var .pytest_cache
