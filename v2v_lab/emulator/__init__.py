"""The built-in endpoint: Runway's video_to_video HTTP API on loopback, procedural looks, fault knobs.

Server side only: nothing here imports the client in v2v_lab.api (only its catalog and errors).
"""

from .faults import FaultConfig
from .server import Emulator, test_key

__all__ = ["Emulator", "FaultConfig", "test_key"]
