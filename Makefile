# The two commands a newcomer types: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel here; every later range admits it, so nothing pulls another torch.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mixtape demo

test: $(STAMP)
	MIXTAPE_NO_PROGRESS=1 $(BIN)/python -m pytest -q

clean:
	rm -rf runs .pytest_cache
