# Two entry points for a fresh clone with only python3 and make: `make run` and `make test`.
# Everything is installed in one pip resolver pass against constraints.txt (the lock file),
# because aiobotocore pins botocore narrowly and piecemeal installs resolve badly.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
TOOLS_VENV ?= .venv-tools
CHECKOV    := $(TOOLS_VENV)/bin/checkov

.PHONY: run test deps lint unit tools lock clean
.DEFAULT_GOAL := run

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files so a second `make` does not reinstall; they depend on what they install from.
$(VENV)/.run-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/firehose-loadgen run $(ARGS)

# checkov pins a botocore far older than aiobotocore allows, so it gets its own virtualenv,
# locked by deploy/checkov-constraints.txt.
$(CHECKOV): deploy/checkov-constraints.txt
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip --disable-pip-version-check -q install -c deploy/checkov-constraints.txt checkov
	touch $@

tools: $(CHECKOV)

# Debian packages the tests start for real (prometheus, chromium, podman...): installed with
# apt-get when root or through passwordless sudo, else one line says what to install.
deps:
	bash .ci/system-deps.sh

lint: $(VENV)/.test-installed
	$(BIN)/ruff check producer tests deploy
	$(BIN)/ruff format --check producer tests deploy
	$(BIN)/mypy
	$(BIN)/mypy --strict deploy/lambda/transform.py deploy/sync_inline_code.py

unit: deps $(VENV)/.test-installed $(CHECKOV)
	CHECKOV=$(abspath $(CHECKOV)) $(BIN)/pytest $(PYTEST_ARGS)

test: deps lint unit

# Regenerate the lock file from a clean resolve of everything (run and test extras).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip -q install '.[test]'
	.lock-venv/bin/python -m pip freeze --exclude firehose-loadgen | sort -f > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(TOOLS_VENV) loadgen-output .mypy_cache .ruff_cache .pytest_cache
