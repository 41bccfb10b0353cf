"""The one sync bridge (v2v_lab._sync): what the sync client, run_sweep and SweepMonitor stand on."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from v2v_lab._sync import LoopThread, run_blocking, run_in_background
from v2v_lab.api import RunwayClient
from v2v_lab.emulator import Emulator


async def _answer(value: int, delay: float = 0.0) -> tuple[int, str]:
    await asyncio.sleep(delay)
    await asyncio.to_thread(time.sleep, 0.01)  # the default executor is shut down with the loop
    return value, threading.current_thread().name


def _ours() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("v2v-")}


def test_run_blocking_inside_a_running_loop_gives_the_result_and_the_error_and_leaves_no_thread():
    async def in_a_kernel() -> None:  # as in Jupyter: a loop already runs in this thread
        assert run_blocking(lambda: _answer(7), thread_name="v2v-test") == (7, "v2v-test")

        async def broken() -> None:
            raise KeyError("the coroutine's own error")

        with pytest.raises(KeyError, match="own error"):
            run_blocking(broken, thread_name="v2v-test")

    before = _ours()
    asyncio.run(in_a_kernel())
    assert run_blocking(lambda: _answer(3)) == (3, threading.current_thread().name)  # no loop: this thread
    assert _ours() <= before


def test_run_in_background_returns_at_once_and_its_thread_ends_with_the_work():
    go = threading.Event()  # the work waits for it (a 0.3 s sleep could be over before a loaded machine checks)

    async def work() -> tuple[int, str]:
        await asyncio.to_thread(go.wait, 60)
        return await _answer(5)

    future = run_in_background(work, thread_name="v2v-bg-test")
    assert not future.done() and "v2v-bg-test" in _ours()  # the caller is free meanwhile
    go.set()
    assert future.result(timeout=60) == (5, "v2v-bg-test")
    deadline = time.monotonic() + 30
    while "v2v-bg-test" in _ours() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "v2v-bg-test" not in _ours()


def test_a_loop_thread_keeps_one_loop_between_calls_and_ends_on_close():
    with LoopThread("v2v-keep-test") as worker:
        first = worker.call(lambda: asyncio.sleep(0, result=asyncio.get_running_loop()))
        second = worker.call(lambda: asyncio.sleep(0, result=asyncio.get_running_loop()))
        assert first is second
    assert "v2v-keep-test" not in _ours()


def test_the_sync_client_runs_on_the_bridge_and_closing_it_ends_its_thread():
    with Emulator(render_scale=0.25) as emu:
        before = _ours()
        with RunwayClient("local", base_url=emu.base_url) as client:
            assert client.organization().models
            assert "v2v-client" in _ours()
        assert "v2v-client" not in _ours() - before
        with pytest.raises(RuntimeError, match="closed"):
            client.organization()
