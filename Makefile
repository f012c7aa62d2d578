# idsync.entra — every entry point a person or CI needs. Each target bootstraps what it uses.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTIONS := $(CURDIR)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/idsync/entra
EMULATOR_PORT ?= 8443
EMULATOR_DIR ?= $(CURDIR)/.emulator
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv install build demo test unit conformance integration sanity lint emulator emulator-vars clean

help:
	@echo "make demo         run the main job against the bundled tenant emulator"
	@echo "make test         run the whole test suite (unit, conformance, integration, sanity)"
	@echo "make emulator     run the tenant emulator in the foreground on port $(EMULATOR_PORT) (AUTO_APPROVE=1 approves device codes)"
	@echo "make lint         ansible-lint, production profile, on the whole repository"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The repository root is the collection; link it where ansible looks for collections so edits are live.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

install: venv $(COLLECTION_LINK)

# Build the distributable artifact (galaxy.yml validation + build_ignore) into build/.
build: venv
	mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build .

demo: install
	$(BIN)/python tools/demo.py

unit: install
	$(BIN)/python -m pytest tests/unit -q

conformance: install
	$(BIN)/python -m pytest tests/conformance -q

integration: install
	$(BIN)/python -m pytest tests/integration -q

sanity: install build
	tests/sanity/run.sh

# ansible-lint's production profile (the bar for certified collections), offline; settings in .ansible-lint.
lint: install
	$(BIN)/ansible-lint

# Two workers: the integration tests are mostly ansible-playbook start-up, which a second core halves.
PYTEST_WORKERS ?= 2

test: install build
	$(BIN)/python -m pytest tests/unit tests/conformance tests/integration -q -p no:cacheprovider -n $(PYTEST_WORKERS) --durations=15
	tests/sanity/run.sh
	$(BIN)/ansible-lint

# AUTO_APPROVE=1 approves every device code at once as the emulator's admin, so device code sign-in needs no browser.
AUTO_APPROVE ?=
emulator: install
	$(BIN)/python tests/emulator serve --port $(EMULATOR_PORT) --state-dir $(EMULATOR_DIR) \
	  $(if $(filter 1 yes true,$(AUTO_APPROVE)),--auto-approve)

# The variables that point the roles at the running emulator (make -s emulator-vars > ~/idsync/emulator.yml).
emulator-vars:
	@EMULATOR_DIR=$(EMULATOR_DIR) $(BIN)/python tools/emulator_vars.py

clean:
	rm -rf build collections tests/output .pytest_cache
