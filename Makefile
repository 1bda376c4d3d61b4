# magsasa.chaos — the two commands that matter are `make demo` and `make test`.
# Both build or refresh .venv first, so they work on a fresh machine: `make demo` from requirements.txt
# (what runs), `make test` and the other checks from requirements-dev.txt (that plus the tools).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
COLLECTION := collections/ansible_collections/magsasa/chaos
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections
PYTEST_ARGS ?=

.PHONY: help venv venv-dev demo demo-up demo-down test lint sanity unit integration molecule bench clean

help:
	@echo "make demo   - start the demo target, run the smoke chaos suite, print the report path"
	@echo "make test   - lint, sanity, unit, integration (real ansible-playbook runs), molecule"
	@echo "make bench  - benchmarks that print tables"

venv: $(STAMP)

venv-dev: $(DEV_STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

DEMO_MODE ?= local

demo: venv
	$(BIN)/ansible-playbook playbooks/demo_up.yml -e demo_target_mode=$(DEMO_MODE)
	bash scripts/run-demo.sh

demo-up: venv
	$(BIN)/ansible-playbook playbooks/demo_up.yml -e demo_target_mode=$(DEMO_MODE)

demo-down: venv
	$(BIN)/ansible-playbook playbooks/demo_down.yml

test: venv-dev
	$(MAKE) lint
	$(MAKE) sanity
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) molecule

# Every shell script of the project: *.sh and files whose first line is a sh/bash shebang.
SHELL_SCRIPTS = $(shell find . \( -path ./$(VENV) -o -path ./.git -o -path ./.state -o -path ./.cache -o -path ./reports \
	-o -name node_modules -o -path '*/tests/output' \) -prune -o -type f -print | \
	xargs awk 'FNR == 1 { if (FILENAME ~ /\.sh$$/ || $$0 ~ /^\043!.*[\/ ](ba)?sh$$/) print FILENAME; nextfile }')

lint: venv-dev
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production
	$(BIN)/actionlint -shellcheck $(BIN)/shellcheck .github/workflows/*.yml
	$(BIN)/zizmor --offline --no-progress --persona=auditor .github/workflows/
	$(BIN)/shellcheck $(sort $(SHELL_SCRIPTS))

sanity: venv-dev
	@# ansible-test bootstraps pip from a host this machine cannot reach; give it our stand-in.
	test -f $(HOME)/.ansible/test/cache/get_pip_24_2.py || install -D -m 0644 .ci/ansible-test-get-pip.py $(HOME)/.ansible/test/cache/get_pip_24_2.py
	@# The controller's Python: whatever the venv runs (3.11 here, 3.12 on GitHub's runners).
	cd $(COLLECTION) && $(CURDIR)/$(BIN)/ansible-test sanity --python $$($(CURDIR)/$(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') --requirements --color no

unit: venv-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider $(COLLECTION)/tests/unit $(PYTEST_ARGS)

integration: venv-dev
	$(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

molecule: venv-dev
	bash scripts/build-base-image.sh
	molecule test

bench: venv-dev
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	-$(BIN)/ansible-playbook playbooks/demo_down.yml
	rm -rf $(VENV) reports .state

.PHONY: base-image ee-context
base-image:
	bash scripts/build-base-image.sh

# The execution environment's build context (ansible-builder build needs a registry for its base image).
ee-context: venv-dev
	$(BIN)/ansible-builder create -f execution-environment.yml --context .cache/ee
