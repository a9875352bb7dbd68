# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps system-deps-test bench durability cluster cluster-down failover-drill screenshots db-stop lint clean

run: setup                      ## set up, start the embedded PostGIS, load Nanjing, serve on :8000
	$(BIN)/gridpatrol demo

test: setup system-deps-test    ## set up, then the whole suite against a real PostGIS it starts itself
	$(BIN)/python -m pytest

setup: system-deps $(STAMP)

system-deps:                    ## Debian's PostGIS for PostgreSQL 15, when missing
	@bash scripts/install-system-deps.sh

system-deps-test:               ## plus Debian's chromium for the browser tests
	@bash scripts/install-system-deps.sh --test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

bench: setup                    ## import, division (vs spopt max-p), edit preview, intake, patrol, leaders' map, onboarding, console, tiles, basemap, big screen and bulletin, shared patrol, map matching
	@bash scripts/install-system-deps.sh --bench
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@# postman_problems pins networkx 2.0; it runs on ours with two patches (bench/postman_references.py)
	$(BIN)/python -m pip install --quiet --no-deps 'postman_problems==0.3'
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/division_bench.py --liechtenstein
	$(BIN)/python bench/edit_bench.py
	$(BIN)/python bench/intake_bench.py
	$(BIN)/python bench/patrol_bench.py
	$(BIN)/python bench/leaders_bench.py
	$(BIN)/python bench/onboarding_bench.py
	$(BIN)/python bench/console_bench.py
	$(BIN)/python bench/tiles_bench.py
	$(BIN)/python bench/basemap_bench.py
	$(BIN)/python bench/screen_bench.py
	$(BIN)/python bench/split_bench.py
	$(BIN)/python bench/matching_bench.py

durability: setup                ## intake at 1,000/s for 5 minutes through a PostgreSQL restart: 0 lost, 0 duplicated?
	$(BIN)/python bench/durability.py

cluster: setup                  ## a local 3-node cluster (Patroni + etcd), the demo city on it, served by 2 workers
	@bash scripts/install-system-deps.sh --cluster
	$(BIN)/gridpatrol cluster up
	eval "$$($(BIN)/gridpatrol cluster env)" && $(BIN)/gridpatrol demo --no-serve --keep-db && \
	  $(BIN)/gridpatrol serve --workers 2

cluster-down:
	$(BIN)/gridpatrol cluster down

failover-drill: setup           ## the Nanjing demo on the cluster, 500 reports/s, the primary killed twice: 0 lost?
	@bash scripts/install-system-deps.sh --cluster
	$(BIN)/python bench/failover_drill.py

screenshots: setup system-deps-test   ## the map screenshot in docs/
	$(BIN)/gridpatrol screenshot --out docs/map-nanjing.png

db-stop:
	$(BIN)/gridpatrol db stop

lint: setup                     ## ruff, mypy, and the import contracts of .importlinter (docs/ARCHITECTURE.md)
	$(BIN)/ruff check gis api maps scripts tests bench
	$(BIN)/mypy gis api maps scripts
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var
