# support_nlp — every target creates/updates .venv itself, so a fresh clone needs nothing installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The stack test's servers and browser (support_nlp_tests/test_stack.py), from Debian's packages. Chromium only
# recommends a font, and without one the UI screenshot has no legible text.
SYSTEM_PACKAGES := postgresql chromium chromium-driver docker-compose fonts-liberation
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
MATERIALIZE := $(BIN)/dagster asset materialize -m support_nlp.definitions
# `make materialize-day` materializes DAY; `make retrain` learns from FIRST_DAY..LAST_DAY (the bundled sample's).
DAY ?= 2017-11-01
FIRST_DAY ?= 2017-10-01
LAST_DAY ?= 2017-12-03

.PHONY: install system-deps run test lint ui validate materialize-day retrain image benchmark-quality benchmark-performance clean

install: $(VENV)/.installed

# Re-installs whenever pyproject.toml changes. torch is pinned to the CPU build in pyproject.toml.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Installs only the packages that are missing, so it costs nothing once they are there.
system-deps:
	@missing=$$(for package in $(SYSTEM_PACKAGES); do \
		dpkg-query --show --showformat='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(DAGSTER_HOME)/dagster.yaml: deploy/laptop-dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m support_nlp.pipeline

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint system-deps $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

validate: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -m support_nlp.definitions

materialize-day: install $(DAGSTER_HOME)/dagster.yaml
	$(MATERIALIZE) --select raw_tweets,clean_text,embeddings --partition $(DAY)

# Features over the days as one run, then categories and classifier over every materialized day, predictions
# over the days, and the trends and report (category_report.html under the storage's reports/).
retrain: install $(DAGSTER_HOME)/dagster.yaml
	$(MATERIALIZE) --select raw_tweets,clean_text,embeddings --partition-range $(FIRST_DAY)...$(LAST_DAY)
	$(MATERIALIZE) --select cluster_labels,classifier
	$(MATERIALIZE) --select predictions --partition-range $(FIRST_DAY)...$(LAST_DAY)
	$(MATERIALIZE) --select category_trends,category_report

# Clustering and classifier quality against human labels (Banking77, Bitext, twcs topics); embeddings are cached.
benchmark-quality: install
	$(BIN)/python -m support_nlp.benchmarks.quality

# Rows/s, CPU-seconds and peak RSS per stage against the plain baseline, 20k rows (docs/performance.md);
# `$(BIN)/python -m support_nlp.benchmarks.performance` without --quick runs 20k, 200k and 1.6M rows.
benchmark-performance: install
	$(BIN)/python -m support_nlp.benchmarks.performance --quick

# One image for the code location, webserver, daemon and runs (Dockerfile; docker-compose.yaml runs it).
image:
	docker build -t support_nlp:latest .

clean:
	rm -rf .support_nlp $(DAGSTER_HOME)
