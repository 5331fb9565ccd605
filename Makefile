# support_nlp — every target creates/updates .venv itself, so a fresh clone needs nothing installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The stack test's servers and browser (support_nlp_tests/test_stack.py), from Debian's packages. Chromium only
# recommends a font, and without one the UI screenshot has no legible text. The plots draw Japanese and other CJK
# category names with fonts-wqy-microhei (support_nlp/plots.py).
SYSTEM_PACKAGES := postgresql chromium chromium-driver docker-compose fonts-liberation fonts-wqy-microhei
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
MATERIALIZE := $(BIN)/dagster asset materialize -m support_nlp.definitions
# `make materialize-day` materializes DAY; `make retrain` learns from FIRST_DAY..LAST_DAY (the bundled sample's).
DAY ?= 2017-11-01
FIRST_DAY ?= 2017-10-01
LAST_DAY ?= 2017-12-03

.PHONY: install lock system-deps run test check lint ui validate materialize-day retrain image benchmark-quality benchmark-performance clean

install: $(VENV)/.installed

# Re-installs whenever pyproject.toml or the lock changes. constraints.txt pins every package, the ones that change
# the vectors (torch, transformers, tokenizers, onnxruntime, huggingface_hub) included; `make lock` rewrites it.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# After changing a dependency in pyproject.toml: resolve it, then record the whole environment as the lock.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	{ echo '# The lock: every package of `pip install -e .[dev]`, written by `make lock`; `make install` installs with it.'; \
	  $(BIN)/pip list --format=freeze --exclude-editable | sed -e 's/+cpu$$//'; } > constraints.txt
	touch $(VENV)/.installed

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

# The laptop instance (deploy/laptop-dagster.yaml), its SQLite tables created once under a lock before any run opens
# them: two `make run` on a fresh home would otherwise both create them and one would fail.
$(DAGSTER_HOME)/dagster.yaml: deploy/laptop-dagster.yaml | $(VENV)/.installed
	mkdir -p $(DAGSTER_HOME)
	flock $(DAGSTER_HOME)/.create.lock $(BIN)/python -m support_nlp.local_instance $(DAGSTER_HOME) $<
	touch $@

run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m support_nlp.pipeline

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The full suite: every tier, real servers and browser included; a missing system binary fails the run.
test: lint system-deps $(DAGSTER_HOME)/dagster.yaml
	SUPPORT_NLP_REQUIRE_SYSTEM_BINARIES=1 $(BIN)/pytest

# The quick loop: lint and the unit and in-process integration tests, without the stack, the subprocess end-to-end
# runs and the benchmarks; a missing system binary is a skip that says what to install.
check: lint $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest -m 'not stack and not e2e and not benchmark'

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

# Both loaders of the code location: dagster's (workspace.yaml, the stack) and dg's ([tool.dg] in pyproject.toml).
validate: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -m support_nlp.definitions
	$(BIN)/dg check defs

materialize-day: install $(DAGSTER_HOME)/dagster.yaml
	$(MATERIALIZE) --select known_brands,raw_tweets,clean_text,embeddings --partition $(DAY)

# Features over the days as one run, then categories and classifier over every materialized day, predictions
# over the days, and the trends and report (category_report.html under the storage's reports/).
retrain: install $(DAGSTER_HOME)/dagster.yaml
	$(MATERIALIZE) --select known_brands,raw_tweets,clean_text,embeddings --partition-range $(FIRST_DAY)...$(LAST_DAY)
	$(MATERIALIZE) --select cluster_labels,classifier,deployed_model
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
