# make demo   build every HiViT arch and print parameters, MACs and a forward
# make test   run the test suite
# make lint   flake8, isort and yapf checks
# Both install the stack into $(VENV) first when it is missing or stale.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmitpn-installed

.PHONY: install test lint demo

$(STAMP): setup.py requirements/build.txt requirements/mminstall.txt \
		requirements/runtime.txt requirements/optional.txt \
		requirements/tests.txt tools/misc/install_env.sh
	tools/misc/install_env.sh $(VENV)
	touch $@

install: $(STAMP)

test: install
	$(PYTHON) -m pytest tests

lint: install
	$(VENV)/bin/flake8 mmitpn tools tests setup.py
	$(VENV)/bin/isort --check-only --diff mmitpn tools tests setup.py
	$(VENV)/bin/yapf --diff --recursive mmitpn tools tests setup.py

demo: install
	$(PYTHON) tools/analysis_tools/hivit_summary.py
