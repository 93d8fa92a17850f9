# Two entry points for newcomers: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run serve test typecheck extension-test lint bench clean

run: $(STAMP)
	$(VENV)/bin/canopy demo

serve: $(STAMP)
	$(VENV)/bin/canopy serve

# Test workers: most tests wait on subprocesses (servers, pod workers, adapters), so more
# workers than cores pay; each worker has its own temporary folders, ports and schemas.
TEST_WORKERS ?= 4

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) typecheck
	$(VENV)/bin/pytest -n $(TEST_WORKERS)
	$(MAKE) extension-test

# mypy reads its settings from pyproject.toml. It cannot follow the editable install from
# `canopy.server` to server/, so it finds the packages through a tree of links, one per
# top-level folder, under .venv/typecheck/canopy (a namespace package: no __init__.py). The
# links' prefix is cut from its report so that every error names the file in the repository.
TYPECHECK := $(VENV)/typecheck
PACKAGE_DIRS := schemas bridge server dap lsp

typecheck: $(STAMP)
	@mkdir -p $(TYPECHECK)/canopy
	@for dir in $(PACKAGE_DIRS); do ln -sfn ../../../$$dir $(TYPECHECK)/canopy/$$dir; done
	@status=0; $(VENV)/bin/mypy > $(TYPECHECK)/report.txt || status=$$?; \
		sed 's|^$(TYPECHECK)/canopy/||' $(TYPECHECK)/report.txt; exit $$status

# The VS Code extension: schema drift, type check, unit tests, the .vsix, and the end-to-end
# suite in a real VS Code (code-server + chromium, installed by e2e/setup.sh on first use).
extension-test: $(STAMP)
	cd vscode-extension && npm ci --no-audit --no-fund
	cd vscode-extension && npm run check && npm test && npm run package
	bash vscode-extension/e2e/setup.sh
	cd vscode-extension && npm run e2e

bench: $(STAMP)
	$(VENV)/bin/python bench/eventlog.py --quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .canopy examples/.canopy vscode-extension/node_modules vscode-extension/out \
		vscode-extension/canopy.vsix vscode-extension/e2e/.tools vscode-extension/e2e/artifacts
