"""The notebooks, executed top to bottom (papermill) against a temporary MLflow store, and kept
without outputs in git."""

from __future__ import annotations

import json

import nbformat
import pytest

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_the_four_notebooks_exist_with_a_parameters_cell_and_no_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_seed_sweep.ipynb",
                                           "03_compare_models.ipynb", "04_browse_runs.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"


@pytest.mark.slow
def test_notebooks_run_top_to_bottom_on_the_emulator(mlflow_store, tmp_path):
    import papermill
    fast = {"render_scale": 0.25, "scoring_frames": 6}
    for path in NOTEBOOKS:
        params = {} if path.name.startswith("04") else fast
        out = tmp_path / path.name
        papermill.execute_notebook(str(path), str(out), parameters=params, cwd=str(ROOT / "notebooks"),
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   execution_timeout=600)
        nb = json.loads(out.read_text())
        mimes = [m for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
                 for m in o.get("data", {})]
        errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, (path.name, errors)
        assert WIDGET_MIME in mimes, f"{path.name} displayed no dashboard"
    # The sweeps landed in the temporary store, not in the repository's.
    from v2v_lab import load_runs

    assert len(load_runs("quickstart", status="succeeded")) == 4
    assert set(load_runs("model_compare")["model"]) == {"gen4_aleph", "gen3a_turbo", "aleph2"}
