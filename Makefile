# support_nlp — every target creates/updates .venv itself, so a fresh clone needs nothing installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint ui clean benchmark-quality

install: $(VENV)/.installed

# Re-installs whenever pyproject.toml changes. torch is pinned to the CPU build in pyproject.toml.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m support_nlp.pipeline

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest

# Clustering and classifier quality against human labels (Banking77, Bitext, twcs topics); embeddings are cached.
benchmark-quality: install
	$(BIN)/python -m support_nlp.benchmarks.quality

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

clean:
	rm -rf .support_nlp $(DAGSTER_HOME)
