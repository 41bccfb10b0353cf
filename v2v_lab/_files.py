"""Whether a folder can really be written: shared by the journal, the store check and the CLI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def can_write_in(folder: Path) -> bool:
    """Whether a file can be made in the folder: tried, not inferred from permission bits (root
    passes every access() check, yet cannot write on a read-only or virtual filesystem)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".v2v-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True
