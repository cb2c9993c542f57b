# Two commands: `make demo` and `make test`. Each creates .venv if missing and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skfleet-installed

.PHONY: demo test lint format bench clean install system-packages

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use (Chromium, namespaces, buildah); installs what is missing as root.
system-packages:
	bash scripts/system-packages.sh

demo: $(STAMP)
	$(PY) -m skfleet.demo

test: $(STAMP) system-packages
	$(PY) -m ruff check src tests benchmarks images
	$(PY) -m ruff format --check src tests benchmarks images
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check --fix src tests benchmarks images
	$(PY) -m ruff format src tests benchmarks images

# The worker image, pinned to $(VENV), built with buildah (no Docker engine needed; see
# images/build.py). IMAGE_TAG defaults to skfleet-worker:<version in pyproject.toml>.
IMAGE_TAG ?=
.PHONY: image
image: $(STAMP)
	$(PY) images/build.py --python $(PY) $(if $(IMAGE_TAG),--tag $(IMAGE_TAG))

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	@echo "run e.g. $(PY) benchmarks/io_postgres.py"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
