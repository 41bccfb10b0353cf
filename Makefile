# Each target bootstraps .venv when it is missing, so `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: sdk-check demo test test-fast reliability notebooks browser postgres lint bench sabotage mutate mutate-score clean team-up team-down

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# dev pulls the [team] and [dask] extras (pyproject.toml): the suite tests PostgreSQL and Dask too.
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The official SDK's previous major, in a folder of its own: the emulator is tested against 4.x and 5.x.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/sdk4 "runwayml>=4.18,<5"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/v2v-lab sweep experiments/quickstart.yaml

# Everything CI runs: the browser test included (its chromium comes from Debian, installed here).
# Four workers on two cores (pytest-xdist; worksteal evens out the long tests): most tests wait on subprocesses,
# servers and emulated tasks. The 30 slowest are listed at the end: where the next speed-up is.
test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -q -n 4 --dist worksteal --durations=30

# The quick loop while editing: no reliability proofs, no notebooks, no browser, no team store.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not reliability and not slow and not browser and not team"

reliability: $(STAMP)
	$(BIN)/python -m pytest -q -m reliability

notebooks: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_notebooks.py

browser:
	@tools/ensure-chromium

postgres:
	@tools/ensure-postgres

# A team store on this machine: PostgreSQL 15, an S3-compatible store (moto) and `mlflow server` on
# them. Prints the `export` lines a member's shell needs: eval "$$(make -s team-up)". Data stays in
# $$V2V_LAB_TEAM_DIR (default .v2v-lab/team) across team-down / team-up.
team-up: $(STAMP) postgres
	@$(BIN)/python tools/team_stack.py up

team-down:
	@$(BIN)/python tools/team_stack.py down

# The proof of the proofs: break each guarantee on purpose in a copy, see its test fail.
sabotage: $(STAMP)
	$(BIN)/python bench/sabotage.py

# Mutation testing of the pure cores (spec, axes, plan and the cell key, budget, the journal's states,
# validation, catalog, prices, the retry policy) against the fast in-process tests that exercise them
# ([tool.mutmut] in pyproject.toml). Outside CI: tens of minutes on two cores. Prints the score
# (killed / mutants); `$(BIN)/mutmut results` lists the survivors, `$(BIN)/mutmut show NAME` one of them.
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet "mutmut>=3.8,<4"
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	@$(MAKE) --no-print-directory mutate-score

# The score of the last `make mutate`, an interrupted one included (its unchecked mutants are said).
mutate-score:
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); \
	checked = s['killed'] + s['survived'] + s['no_tests'] + s['timeout'] + s['suspicious']; \
	print(f\"mutation score: {s['killed']} killed of {checked} mutants checked ({100 * s['killed'] / max(checked, 1):.0f}%); \
	survived {s['survived']}, no tests {s['no_tests']}, timeout {s['timeout']}; not checked {s['total'] - checked}\")"

# ruff (complexity at most 10 included), and mypy with zero errors on the package.
lint: $(STAMP)
	$(BIN)/ruff check v2v_lab tests bench
	$(BIN)/mypy v2v_lab

# Every bench the README lists (bench/team.py needs the team stack: see the README's "For a team").
bench: $(STAMP) browser
	$(BIN)/python bench/score.py
	$(BIN)/python bench/rescore.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/validity.py
	$(BIN)/python bench/structure_candidates.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/ratings.py
	$(BIN)/python bench/charts.py
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/sync_bridge.py

clean:
	@test ! -d .v2v-lab/team || $(BIN)/python tools/team_stack.py down
	rm -rf $(VENV) .v2v-lab mlflow.db mlruns .pytest_cache mutants

# The newest official SDK, in a temporary environment: what its video_to_video models add or remove
# against the catalog (the suite holds the catalog to the SDK version pinned in pyproject.toml).
sdk-check: $(STAMP)
	@rm -rf $(VENV)/sdk-newest && $(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/sdk-newest runwayml
	@PYTHONPATH=$(VENV)/sdk-newest:. $(BIN)/python tools/sdk_fields.py --diff; status=$$?; rm -rf $(VENV)/sdk-newest; exit $$status
