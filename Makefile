# Two entry points for newcomers: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run serve test extension-test lint bench clean

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
	$(VENV)/bin/pytest -n $(TEST_WORKERS)
	$(MAKE) extension-test

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
