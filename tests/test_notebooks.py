"""The notebooks, executed top to bottom (papermill) against a temporary MLflow store, and kept
without outputs in git."""

from __future__ import annotations

import json

import nbformat
import pytest

from .conftest import ROOT, TEST_OUTPUT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_the_four_notebooks_exist_with_a_parameters_cell_and_no_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_seed_sweep.ipynb",
                                           "03_compare_models.ipynb", "04_browse_runs.ipynb", "05_rate.ipynb"]
    for path in [*NOTEBOOKS, ROOT / "notebooks" / "pages" / "rate.ipynb"]:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == (path.parent.name != "pages"), path.name  # a page reads its address instead
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"


@pytest.mark.slow
def test_notebooks_run_top_to_bottom_on_the_emulator(mlflow_store, tmp_path, monkeypatch):
    import papermill

    # The kernels start without the suite's switch for MLflow's download bars: the dashboards must
    # keep them out of their output themselves.
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    fast = {"render_scale": 0.25, "scoring_frames": 6}
    sizes = {}
    for path in NOTEBOOKS:
        # 05 rates 03's study with a scripted rater; 04 browses what is there.
        params = {"04": {}, "05": {"scripted_rater": True}}.get(path.name[:2], fast)
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
        sizes[path.name] = out.stat().st_size
        assert "Downloading artifacts" not in out.read_text(), f"{path.name}: MLflow's progress bars in the output"
    (TEST_OUTPUT / "notebook_sizes.json").write_text(json.dumps(sizes, indent=1))
    # Saved with their widgets, executed notebooks stay small enough to share (thumbnails, not posters).
    assert max(sizes.values()) < 3_000_000, sizes
    # The rating view sends its videos by address: its notebook holds no video at all.
    assert sizes["05_rate.ipynb"] < 1_000_000, sizes
    # The sweeps landed in the temporary store, not in the repository's.
    from v2v_lab import load_runs

    assert len(load_runs("quickstart", status="succeeded")) == 4
    assert set(load_runs("model_compare")["model"]) == {"gen4_aleph", "gen3a_turbo", "aleph2"}
    # 05's scripted rater judged every pair of 03's study, into the same store.
    from v2v_lab import load_ratings, rank

    ratings = load_ratings("model_compare")
    assert len(ratings) == 12 and set(ratings["rater"]) == {"me"}
    assert rank("model_compare").iloc[0]["group"] == "gen4_aleph"
