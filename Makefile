# Two commands set everything up on a fresh machine:
#   make run    create .venv, install the package, serve the demo model on http://127.0.0.1:8080
#   make test   install the test dependencies and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run lint test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,aws,azure,gcp,onnx,skops,pandas,mlflow]'
	touch $@

# checkov pins its own boto3, packaging and more, so it lives in a venv of its own; the tests find
# it at .venv-checkov/bin/checkov (or wherever CHECKOV points).
CHECKOV_VENV ?= .venv-checkov
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'
	touch $@

# KServe's own REST client (tests/core/http/test_protocols.py runs it against `serverless-ml serve`)
# lives in a venv of its own: kserve pins pandas<3 and protobuf<7, which would move the test venv
# off the pandas 3 the project is tested with. The tests find it at .venv-kserve/bin/python (or
# wherever KSERVE_PYTHON points).
KSERVE_VENV ?= .venv-kserve
$(KSERVE_VENV)/.installed:
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(KSERVE_VENV)/bin/python -m pip install --quiet 'kserve>=0.15,<1'
	touch $@

# Azurite (the Azure Blob emulator) and the Serverless Framework, pinned by package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/serverless-ml serve --host $(HOST) --port $(PORT)

# ruff (pyflakes, import order, pyupgrade, bugbear, complexity) on everything; mypy on core/ and the
# adapters, the storage backends checked against core.storage.ObjectStore (config in pyproject.toml)
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint $(VENV)/.test-installed node_modules/.installed $(CHECKOV_VENV)/.installed $(KSERVE_VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(KSERVE_VENV) node_modules .serverless-ml .pytest_cache .hypothesis .ruff_cache .mypy_cache
