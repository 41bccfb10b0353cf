"""tracking/ is the one place that knows MLflow (issue 30, point 1): search_runs' page loop has one
home (tracking/paging.iter_runs), and no module outside tracking/ imports mlflow (rescoring
reads and writes its runs through tracking/rescores)."""

from __future__ import annotations

import ast

from v2v_lab.tracking.paging import iter_runs
from v2v_lab.tracking.reader import done_cells
from v2v_lab.tracking.schema import CELL_KEY_TAG, STATUS_SUCCEEDED, STATUS_TAG
from v2v_lab.tracking.store import client as make_client

from .conftest import ROOT


def test_iter_runs_reads_every_page_and_done_cells_reads_them_through_it(mlflow_store):
    client = make_client(mlflow_store)
    experiment_id = client.create_experiment("paged")
    done = {}
    for i in range(7):
        run = client.create_run(experiment_id, tags={STATUS_TAG: STATUS_SUCCEEDED, CELL_KEY_TAG: f"cell{i}"})
        done[f"cell{i}"] = run.info.run_id
    for _ in range(2):
        client.create_run(experiment_id, tags={STATUS_TAG: "failed"})

    every = [run.info.run_id for run in iter_runs(client, experiment_id, page_size=3)]  # pages of 3, 3, 3
    assert len(every) == len(set(every)) == 9
    matched = {run.info.run_id for run in iter_runs(client, experiment_id, f"tags.`{STATUS_TAG}` = "
                                                    f"'{STATUS_SUCCEEDED}'", page_size=2)}
    assert matched == set(done.values())
    assert done_cells(client, experiment_id) == done


def _imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_only_tracking_knows_mlflow_and_only_paging_turns_its_pages():
    package = ROOT / "v2v_lab"
    outside = {str(p.relative_to(ROOT)) for p in package.rglob("*.py")
               if p.parent != package / "tracking"
               and any(m == "mlflow" or m.startswith("mlflow.") for m in _imports(p))}
    assert outside == set(), f"MLflow imported outside v2v_lab/tracking: {sorted(outside)}"
    paging = {str(p.relative_to(ROOT)) for p in package.rglob("*.py") if "page_token" in p.read_text()}
    assert paging == {"v2v_lab/tracking/paging.py"}, paging
