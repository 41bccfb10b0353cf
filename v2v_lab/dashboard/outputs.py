"""A run's output as the dashboards show it: a file the browser plays, or one line on why there is none."""

from __future__ import annotations

from pathlib import Path

from ..errors import V2VError
from ..media.preview import browser_playable
from ..tracking.reader import load_artifact
from ..tracking.schema import ARTIFACT_OUTPUT

__all__ = ["NO_OUTPUT", "playable_output"]

NO_OUTPUT = "no output video (the cell failed or the artifact is missing)"


def playable_output(run_id: str, tracking_uri: str | None = None) -> tuple[Path | None, str]:
    """(a browser-playable file of the run's output, "") or (None, why there is none). The output is
    found whatever its format (output.mp4, .mov, .zip) and shown through a preview where browsers
    cannot play it (media/preview.py); a frame zip plays at the default rate, the dashboards not
    knowing the model's. An output that is not a video is said, never raised."""
    path = load_artifact(run_id, ARTIFACT_OUTPUT, tracking_uri=tracking_uri)
    if path is None:
        return None, NO_OUTPUT
    try:
        return browser_playable(path), ""
    except (V2VError, OSError, ValueError) as exc:
        return None, f"the output is not a playable video: {exc}"
