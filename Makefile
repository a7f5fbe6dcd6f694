# The two commands the README promises: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint infra bench burst clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(BIN)/rootmail demo --mail-dir tests/corpus --accounts tests/corpus/accounts.json --report build/demo-report.json

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
