# The two commands the README promises: `make demo` and `make test`. Both create .venv when it is missing.

# The suite runs on the Python the functions run on: Lambda's python3.12 (serverless.yml: custom.pythonVersion).
# python3.12 from PATH if it runs (pyenv puts a shim for every installed version on PATH, which fails unless that
# version is selected), else the newest 3.12 pyenv has installed. `make PYTHON=/path/to/python3.12` overrides both.
PYTHON_VERSION := 3.12
PYTHON ?= $(shell python$(PYTHON_VERSION) -c '' 2>/dev/null && echo python$(PYTHON_VERSION) || { \
	v=$$(pyenv versions --bare 2>/dev/null | grep -E '^$(subst .,\.,$(PYTHON_VERSION))\.[0-9]+$$' | sort -V | tail -n 1); \
	[ -n "$$v" ] && PYENV_VERSION=$$v pyenv which python$(PYTHON_VERSION) 2>/dev/null; })
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IS_TARGET_PYTHON = $(BIN)/python -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != "$(PYTHON_VERSION)")'

.PHONY: install demo test lint infra bench burst clean

install: $(STAMP)

# A .venv on another Python (made by an older checkout) is made again.
$(STAMP): pyproject.toml
	@if ! $(IS_TARGET_PYTHON) 2>/dev/null; then \
	  python='$(PYTHON)'; \
	  if [ -z "$$python" ]; then \
	    echo "Python $(PYTHON_VERSION) not found. Install it (pyenv install $(PYTHON_VERSION), or the system packages" \
	      "python$(PYTHON_VERSION) and python$(PYTHON_VERSION)-venv), or name it: make PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; \
	    exit 1; \
	  fi; \
	  echo "rm -rf $(VENV) && $$python -m venv $(VENV)"; \
	  rm -rf $(VENV) && "$$python" -m venv $(VENV) || exit 1; \
	  $(IS_TARGET_PYTHON) || { echo "$$python is not Python $(PYTHON_VERSION): make PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 1; }; \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(BIN)/rootmail demo --mail-dir tests/corpus --accounts tests/corpus/accounts.json --import tests/corpus/imported-accounts.csv \
		--report build/demo-report.json

lint: install
	$(BIN)/ruff check functions local tests scripts
	$(BIN)/ruff format --check functions local tests scripts
	$(BIN)/mypy

infra: install node_modules/.installed
	$(BIN)/python scripts/check_infra.py

test: install node_modules/.installed lint
	$(BIN)/pytest

# Measured runs on the local emulator (scripts/bench.py): build/bench/report.md and report.json, and the README's
# table. Never asserts time.
bench: install
	$(BIN)/python scripts/bench.py --burst 500 --readme docs/benchmarks.md

# The reliability burst: 2,000 mails at once through the local pipeline (about 10 minutes on 2 cores).
burst: install
	$(BIN)/python scripts/bench.py --only pipeline-burst --burst 2000 --out build/burst

clean:
	rm -rf $(VENV) node_modules .serverless build .pytest_cache .mypy_cache .ruff_cache
