# The two commands a newcomer types: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel here; every later range admits it, so nothing pulls another torch.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mixtape demo

# Style, types and layering first: a regression there fails `make test` (and CI) before the tests run.
check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check
	MIXTAPE_NO_PROGRESS=1 $(BIN)/python -m pytest -q

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
