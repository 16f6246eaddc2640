# Two commands: `make reproduce` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= smoke
ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lipnb-installed

.PHONY: reproduce test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m lipnb reproduce --profile $(PROFILE) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m lipnb bench evaluate

clean-venv:
	rm -rf $(VENV)
