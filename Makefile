# make setup | demo | test | clean.  See BUILD.md.
PYTHON ?= python3.11
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs

.PHONY: setup demo test clean

setup: $(STAMP)

# Re-runs only when a lock file or pyproject.toml changed (or .venv is missing).
$(STAMP): requirements.txt requirements-tff.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (TFF 0.87 needs <3.12); found " + sys.version.split()[0]'
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-tff.txt
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(VPY) -c 'import tensorflow_federated, dp_accounting, nibabel'
	touch $(STAMP)

demo: setup
	bash experiments/demo.sh $(DEMO_DIR)

test: setup
	$(VPY) -m pytest tests

clean:
	rm -rf $(VENV) .pytest_cache
