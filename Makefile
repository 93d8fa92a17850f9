# Two entry points for newcomers: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run serve test lint bench clean

run: $(STAMP)
	$(VENV)/bin/canopy demo

serve: $(STAMP)
	$(VENV)/bin/canopy serve

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/eventlog.py --quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .canopy examples/.canopy
