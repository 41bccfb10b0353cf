"""The built-in endpoint: Runway's video_to_video HTTP API on loopback, procedural looks, fault knobs.

The server side imports only the catalog and errors of v2v_lab.api; Emulator.client() and
owned.py (an emulator started for a sweep or `generate` on provider local) are the two places that
wire a client to it. Nothing in v2v_lab.api imports this package.
"""

from .faults import FaultConfig
from .owned import local_endpoint, start_local_emulator
from .server import Emulator, test_key

__all__ = ["Emulator", "FaultConfig", "local_endpoint", "start_local_emulator", "test_key"]
