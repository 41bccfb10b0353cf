# Each target bootstraps .venv when it is missing, so `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast reliability lint bench notebooks clean

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The official SDK's previous major, in a folder of its own: the emulator is tested against 4.x and 5.x.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/sdk4 "runwayml>=4.18,<5"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/v2v-lab sweep experiments/quickstart.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

reliability: $(STAMP)
	$(BIN)/python -m pytest -q -m reliability

lint: $(STAMP)
	$(BIN)/ruff check v2v_lab tests bench

bench: $(STAMP)
	$(BIN)/python bench/score.py
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf $(VENV) .v2v-lab mlflow.db mlruns .pytest_cache
