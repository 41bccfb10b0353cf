"""The adaptive search (spec key search:): its pure decision core on synthetic scores, the spec's
errors, and real searches on the emulator through `v2v-lab sweep`, killed -9 mid-search and rerun."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from v2v_lab import load_runs
from v2v_lab.emulator import Emulator
from v2v_lab.errors import InputError
from v2v_lab.sweeps import build_plan, parse_spec
from v2v_lab.sweeps.search import NO_SCORE, cells_run, looks, replay
from v2v_lab.sweeps.search_run import SearchCells
from v2v_lab.tracking.schema import ARTIFACT_SEARCH, SEARCH_BEST_TAG

from ._helpers import server_charged, user_env, write_spec
from .conftest import DEMO

CLI = str(Path(sys.executable).with_name("v2v-lab"))  # the console script, as a user types it


def _table(means: list[float], seeds: int, noise: float, rng: np.random.Generator, shared: float = 0.0) -> dict:
    seed_effect = shared * rng.standard_normal(seeds)
    return {(k, s): float(m + seed_effect[s] + noise * rng.standard_normal())
            for k, m in enumerate(means) for s in range(seeds)}


# -- the pure core ---------------------------------------------------------------------------------

def test_a_clear_winner_is_found_for_a_fraction_of_the_grid():
    rng = np.random.default_rng(7)
    table = _table([1.0, 0.0, -0.5, -1.0, 0.2, -0.3], seeds=8, noise=0.1, rng=rng, shared=5.0)
    state = replay(table, 6, 8, 0.95)
    assert state.winner == 0 and state.ended == "one left"
    assert cells_run(state) < 6 * 8 / 2
    # The shared seed effect (50x the noise) cancels in the paired differences: one look decides.
    assert len(state.rounds) == 1 and [d.kept for d in state.rounds[0].decisions] == [True] + [False] * 5
    assert all("behind the leader" in d.why and d.low > 0 for d in state.rounds[0].dropped())


def test_equal_candidates_end_at_the_seed_cap_with_the_grids_pick():
    rng = np.random.default_rng(3)
    table = _table([0.5] * 4, seeds=8, noise=1.0, rng=rng)
    state = replay(table, 4, 8, 0.95)
    assert state.ended == "seeds ran out" and [r.seeds for r in state.rounds] == looks(8) == [2, 3, 5, 8]
    assert len(state.rounds[-1].candidates) == 4  # nobody dropped before the cap: the whole grid
    grid_means = [np.mean([table[(k, s)] for s in range(8)]) for k in range(4)]
    assert state.winner == int(np.argmax(grid_means)) != 0  # the grid's pick, not the first one in


def test_the_same_table_gives_the_same_decisions_and_a_partial_one_says_what_is_pending():
    rng = np.random.default_rng(11)
    table = _table([0.0, 0.3, 0.35, -2.0], seeds=5, noise=0.2, rng=rng)
    first = replay(table, 4, 5, 0.9)
    assert replay(dict(table), 4, 5, 0.9).to_json() == first.to_json()
    # Only the first look recorded: the second look's cells are pending, for the candidates kept.
    kept = [d.candidate for d in first.rounds[0].decisions if d.kept]
    partial = {(k, s): v for (k, s), v in table.items() if s < 2}
    state = replay(partial, 4, 5, 0.9)
    assert not state.done and state.pending == [(k, 2) for k in kept]
    assert state.rounds[0] == first.rounds[0]


def test_a_candidate_without_a_score_is_dropped_saying_so():
    table = {(k, s): float(k) for k in range(3) for s in range(2)}
    table[(2, 1)] = NO_SCORE  # the best one's second cell failed
    state = replay(table, 3, 2, 0.9)
    dropped = {d.candidate: d.why for d in state.rounds[0].dropped()}
    assert dropped[2] == "no score for seed #2" and state.winner == 1


# -- the spec and the metric's direction ------------------------------------------------------------

BASE = {"experiment": "search", "videos": [str(DEMO)], "models": ["gen4_aleph"], "seeds": {"count": 3},
        "ratios": ["1280:720"], "emulator": {"render_scale": 0.1}, "scoring": {"frames": 4, "size": 64}}


@pytest.mark.parametrize(("search", "field", "allowed"), [
    ({"best": "ratio", "metric": "structure"}, "search.best", "an axis the spec varies"),
    ({"best": "colour", "metric": "structure"}, "search.best", "an axis: prompt, model, ratio"),
    ({"best": "prompt", "metric": "sharpness"}, "search.metric", "a metric name"),
    ({"best": "prompt", "metric": "structure", "confidence": 1}, "search.confidence", "between 0.5 and 1"),
    ({"best": "prompt", "metric": "structure", "confidence": 0.5}, "search.confidence", "between 0.5 and 1"),
])
def test_a_bad_search_block_is_one_line_naming_the_field(tmp_path, search, field, allowed):
    import yaml

    text = yaml.safe_dump({**BASE, "prompts": ["sepia film", "neon city"], "search": search})
    with pytest.raises(InputError) as err:
        parse_spec(text, "spec.yaml", str(tmp_path))
    assert err.value.field == field and allowed in str(err.value) and "\n" not in str(err.value)


def test_a_lower_is_better_metric_is_read_in_its_direction(tmp_path):
    import yaml

    spec = {**BASE, "prompts": ["sepia film", "neon city"]}
    plan = build_plan(parse_spec(yaml.safe_dump(spec), "spec.yaml", str(tmp_path)))
    # sepia film's cells score lower than neon city's on every seed.
    scores = {c.key: (0.1 if c.prompt == "sepia film" else 0.5) + 0.01 * c.seed for c in plan.cells}
    winners = {}
    for metric in ("warp_error", "structure"):  # lower is better; higher is better
        search = parse_spec(yaml.safe_dump({**spec, "search": {"best": "prompt", "metric": metric}}),
                            "spec.yaml", str(tmp_path)).search
        cells = SearchCells(plan, search)
        winners[metric] = cells.labels[cells.state(scores).winner]
    assert winners == {"warp_error": "sepia film", "structure": "neon city"}


# -- on the emulator, through the console script -------------------------------------------------------

# Two prompts of one look (the emulator renders them alike: equal candidates) and one far worse.
PROMPTS = ["sepia film", "vintage photograph", "neon city"]


def _search(cmd_env: dict, spec: Path, failpoints: str | None = None) -> subprocess.CompletedProcess:
    env = dict(cmd_env)
    if failpoints:
        env["V2V_LAB_FAILPOINTS"] = failpoints
    return subprocess.run([CLI, "sweep", str(spec), "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=300)


def _recorded(env: dict) -> tuple[dict, dict]:
    from v2v_lab.tracking.store import client

    mlflow = client(env["MLFLOW_TRACKING_URI"])
    exp = mlflow.get_experiment_by_name("search")
    runs = [r for r in mlflow.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'")
            if SEARCH_BEST_TAG in r.data.tags]
    assert len(runs) == 1, [r.data.tags for r in runs]
    path = mlflow.download_artifacts(runs[0].info.run_id, ARTIFACT_SEARCH, env["V2V_LAB_HOME"])
    return runs[0].data.tags, json.loads(Path(path).read_text())


def _decisions(search_json: dict) -> list:
    return [(r["candidates"], r["new_seeds"], [(d["candidate"], d["kept"], round(d["mean"], 6)) for d in r["decisions"]])
            for r in search_json["rounds"]]


@pytest.fixture(scope="module")
def emulator():
    with Emulator(run_s=0.0, render_scale=0.1, queue_s=0.02, concurrency=4) as emu:
        yield emu


@pytest.fixture(scope="module")
def reference(tmp_path_factory, emulator):
    """One uninterrupted search: the record every other run is compared with."""
    folder = tmp_path_factory.mktemp("reference")
    spec = write_spec(folder, {**BASE, "prompts": PROMPTS, "concurrency": 1, "base_url": emulator.base_url,
                               "search": {"best": "prompt", "metric": "structure", "confidence": 0.9}})
    env = user_env(folder)
    before = len(emulator.tasks())
    done = _search(env, spec)
    assert done.returncode == 0, done.stderr
    return {"env": env, "spec": spec, "stdout": done.stdout, "tasks": emulator.tasks()[before:], **dict(
        zip(("tags", "search"), _recorded(env), strict=True))}


def test_a_search_records_its_winner_and_every_round(reference):
    tags, search = reference["tags"], reference["search"]
    assert tags[SEARCH_BEST_TAG] == "sepia film" == search["winner"]
    assert search["ended"] == "seeds ran out"  # the two sepia prompts render alike: never separated
    round1, round2 = search["rounds"]
    assert [d["candidate"] for d in round1["decisions"] if not d["kept"]] == ["neon city"]
    assert round2["candidates"] == ["sepia film", "vintage photograph"] and round2["new_seeds"] == [2]
    # Eight cells, each created once: six in the first look, two in the second, not the grid's nine.
    made = Counter((t["prompt"], t["seed"]) for t in reference["tasks"])
    assert len(made) == search["cells"] == 8 and set(made.values()) == {1}
    assert ("neon city", 2) not in made
    assert search["credits"] == sum(r["credits"] for r in search["rounds"]) > 0
    out = reference["stdout"]
    assert "round  seeds  in  kept  dropped  credits" in out and "round 1: dropped neon city" in out
    assert "winner: sepia film (seeds ran out)" in out
    # Its cells are ordinary runs: the experiment's table holds them as a grid's.
    runs = load_runs("search", tracking_uri=reference["env"]["MLFLOW_TRACKING_URI"])
    assert len(runs) == 8 and runs["structure"].notna().all()


def test_a_rerun_of_a_finished_search_pays_nothing_and_writes_nothing(reference, emulator):
    before = len(emulator.tasks())
    again = _search(reference["env"], reference["spec"])
    assert again.returncode == 0, again.stderr
    assert len(emulator.tasks()) == before and "nothing to do" in again.stdout
    assert "winner: sepia film" in again.stdout


def test_killed_mid_search_a_rerun_reaches_the_same_decisions_and_pays_nothing_twice(tmp_path, emulator, reference):
    spec = write_spec(tmp_path, {**BASE, "prompts": PROMPTS, "concurrency": 1, "base_url": emulator.base_url,
                                 "search": {"best": "prompt", "metric": "structure", "confidence": 0.9}})
    fired = tmp_path / "failpoints.log"
    env = user_env(tmp_path, V2V_LAB_FAILPOINT_LOG=str(fired))
    before = len(emulator.tasks())
    # Mid-way through the first look (its 4th task recorded); then between the looks.
    for point in ("task_recorded=4", "search_round=1"):
        killed = _search(env, spec, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        assert fired.read_text().splitlines()[-1] == point
    final = _search(env, spec)
    assert final.returncode == 0, final.stderr
    tags, search = _recorded(env)
    assert tags[SEARCH_BEST_TAG] == reference["tags"][SEARCH_BEST_TAG]
    assert _decisions(search) == _decisions(reference["search"])
    made = Counter((t["prompt"], t["seed"]) for t in emulator.tasks()[before:])
    assert set(made.values()) == {1} and len(made) == 8  # no cell created twice, none beyond the search's


def test_the_dry_run_says_the_most_and_the_expected_cost(tmp_path, monkeypatch, capsys):
    from v2v_lab.cli import main

    spec = write_spec(tmp_path, {**BASE, "prompts": PROMPTS,
                                 "search": {"best": "prompt", "metric": "structure", "confidence": 0.9}})
    for name, value in user_env(tmp_path).items():
        if name.startswith(("MLFLOW_TRACKING_URI", "V2V_LAB_HOME")):
            monkeypatch.setenv(name, value)
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("search: best prompt by structure"))
    grid = build_plan(parse_spec(spec.read_text(), str(spec), str(tmp_path))).credits
    assert f"at most {grid:,.1f} credits" in line and "expected about" in line
    assert not (tmp_path / "mlflow.db").exists()  # a dry run writes nothing


def test_a_search_the_budget_stops_says_so_names_no_winner_and_charges_no_more_than_the_cap(tmp_path):
    """The endpoint charges three times the catalog's price, so the search's first look fits the cap
    by the estimate but not by what is charged: the spend guard stops the round, and the search ends
    on the budget, naming no winner, with the charges under the cap."""
    import yaml

    from v2v_lab.api.catalog import load_catalog, load_prices

    prices = tmp_path / "prices.yaml"
    base = load_catalog()["gen4_aleph"].credits_per_second
    prices.write_text(yaml.safe_dump({"models": {"gen4_aleph": {"credits_per_second": base * 3}}}))
    with Emulator(render_scale=0.1, queue_s=0.01, catalog=load_prices(prices)) as emu:
        spec = write_spec(tmp_path, {**BASE, "prompts": PROMPTS, "concurrency": 1, "base_url": emu.base_url,
                                     "search": {"best": "prompt", "metric": "structure", "confidence": 0.9}})
        plan = build_plan(parse_spec(spec.read_text(), str(spec), str(tmp_path)))
        cap = plan.credits + 1  # the whole grid fits the cap by the catalog's estimate
        env = user_env(tmp_path)
        done = subprocess.run([CLI, "sweep", str(spec), "--no-progress", "--max-credits", f"{cap:g}"], env=env,
                              capture_output=True, text=True, timeout=300)
        charged = server_charged(emu.base_url, "any")
        made = len(emu.tasks())
    out = done.stdout + done.stderr
    assert "the budget ran out" in out, out[-3000:]
    assert 0 < made < 6, made  # fewer than the first look's six cells
    assert 0 < charged <= cap, (charged, cap)
    assert f"no winner: the budget ran out; {charged:g} credits" in out  # the stopped round's charges counted
    from v2v_lab.tracking.store import client

    store = client(env["MLFLOW_TRACKING_URI"])
    exp = store.get_experiment_by_name("search")
    assert not any(SEARCH_BEST_TAG in r.data.tags for r in store.search_runs([exp.experiment_id]))
