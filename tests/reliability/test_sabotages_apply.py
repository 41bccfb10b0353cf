"""The proof of the proofs stays current: every sabotage in bench/sabotage.py still finds the code
it breaks (a refactor that moves that code must move the sabotage with it). `make sabotage` runs
them; this only checks that they apply."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import ROOT


def test_every_sabotage_still_applies_to_the_code():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "sabotage.py"), "--check"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("all ") and "sabotages apply" in done.stdout
