# make demo   build every HiViT arch and print parameters, MACs and a forward
# make test   run the test suite
# Both install the stack into $(VENV) first when it is missing or stale.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmitpn-installed

.PHONY: install test demo

$(STAMP): setup.py requirements/build.txt requirements/mminstall.txt \
		requirements/runtime.txt requirements/optional.txt \
		requirements/tests.txt tools/misc/install_env.sh
	tools/misc/install_env.sh $(VENV)
	touch $@

install: $(STAMP)

test: install
	$(PYTHON) -m pytest tests

demo: install
	$(PYTHON) tools/analysis_tools/hivit_summary.py
