"""`Emulator`: the built-in endpoint, served by uvicorn on a loopback port in a background thread."""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from ..api.catalog import Catalog, load_catalog

if TYPE_CHECKING:
    from ..api.sync_client import RunwayClient
from .app import COMETAPI_PREFIX, EmulatorApp
from .faults import FaultConfig, FaultDice
from .state import EmulatorState, OrgLimits, Timing

__all__ = ["Emulator", "test_key"]


def test_key() -> str:
    """A key shaped like Runway's (key_ + 128 hex); the emulator takes any key unless started with one."""
    return "key_" + secrets.token_hex(64)


class Emulator:
    """Runway's video_to_video API on loopback.

    with Emulator(run_s=0.5, faults=FaultConfig(drop_rate=0.1)) as emu:
        client = RunwayClient(provider="local", base_url=emu.base_url)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str | None = None,
        queue_s: float = 0.05,
        run_s: float = 0.0,
        render_scale: float = 1.0,
        output_ttl_s: float = 3600.0,
        upload_ttl_s: float = 86400.0,
        concurrency: int | dict[str, int] = 8,
        daily_limit: int | dict[str, int] = 10_000,
        credits: float = 1_000_000,
        max_upload_bytes: int = 200_000_000,
        models: list[str] | None = None,
        faults: FaultConfig | None = None,
        catalog: Catalog | None = None,
        workdir: str | Path | None = None,
        render_workers: int = 2,
        log_level: str = "critical",
        flavor: str = "runway",
        not_exist_s: float = 1.0,
    ):
        self.host = host
        self.port = port
        self.catalog = catalog or load_catalog()
        org_models = models if models is not None else self.catalog.models_for("local")
        per_model = lambda v: v if isinstance(v, dict) else {m: v for m in org_models}  # noqa: E731
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="v2v-emulator-"))
        self.state = EmulatorState(
            self.catalog, org_models,
            OrgLimits(per_model(concurrency), per_model(daily_limit), float(credits)),
            Timing(queue_s, run_s, output_ttl_s, upload_ttl_s, render_scale),
            FaultDice(faults or FaultConfig()), self.workdir, render_workers,
        )
        self.app = EmulatorApp(self.state, key, max_upload_bytes, flavor, not_exist_s)
        self.flavor = flavor
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def stats(self) -> dict[str, Any]:
        """Requests per route, responses per status, tasks created per model, faults injected."""
        return self.state.stats()

    def client(self, **options: Any) -> RunwayClient:
        """A RunwayClient (provider local) pointed at this emulator; the emulator stays the caller's."""
        from ..api.sync_client import RunwayClient

        return RunwayClient("local", base_url=self.base_url, **options)

    def tasks(self) -> list[dict[str, Any]]:
        """Every task created so far, in creation order: id, model, seed, prompt, ratio, status,
        failure_code, deleted. What a sweep really sent, to check it against what it recorded."""
        return self.state.task_ledger()

    def start(self) -> Emulator:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it every answer (headers, then body) waited out the client's delayed ACK: 44 ms
        # a request instead of about 1 (bench/sync_bridge.py).
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.app.base_url = f"http://{shown}:{self.port}"
        # Where a client points: CometAPI's API lives under its /runwayml prefix, as on the real host.
        self.base_url = self.app.base_url + (COMETAPI_PREFIX if self.flavor == "cometapi" else "")
        config = uvicorn.Config(self.app.asgi, log_level=self._log_level, access_log=False,
                                lifespan="off", timeout_keep_alive=30, interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="v2v-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the emulator did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
        self.state.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def wait(self) -> None:
        """Block until the server stops (KeyboardInterrupt reaches the caller: it decides)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


logging.getLogger("uvicorn.error").propagate = False
