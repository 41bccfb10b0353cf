"""What one synchronous client call costs, part by part, each measured side by side in one run:

1. the emulator's answer: its listening socket made with proto IPPROTO_TCP (now) against proto 0
   (before), the same app on both. asyncio sets TCP_NODELAY only when the proto says TCP; without
   it each answer's second write (the body after the headers) waited for the client's delayed ACK.
2. the sync bridge (v2v_lab._sync.LoopThread) against the anyio blocking portal it replaced, for
   the synchronous RunwayClient: the same calls (GET /v1/organization, then a task read).
3. run_blocking inside a running loop (a Jupyter kernel) against asyncio.run outside one.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from functools import partial
from pathlib import Path

import anyio.from_thread
import httpx
import uvicorn

from v2v_lab._sync import LoopThread, run_blocking
from v2v_lab.api import AsyncRunwayClient, GenerationRequest
from v2v_lab.emulator import Emulator

DEMO = str(Path(__file__).resolve().parents[1] / "experiments" / "media" / "bigbuckbunny.mp4")


def through_loop_thread(base_url: str, task_id: str, n: int) -> float:
    with LoopThread("bench-loop") as loop:
        client = loop.call(lambda: _client(base_url))
        t0 = time.perf_counter()
        for _ in range(n):
            loop.call(client.organization)
            loop.call(lambda: client.get_task(task_id))
        took = time.perf_counter() - t0
        loop.call(client.aclose)
    return took


def through_anyio_portal(base_url: str, task_id: str, n: int) -> float:
    with anyio.from_thread.start_blocking_portal() as portal:
        client = portal.call(_client, base_url)
        t0 = time.perf_counter()
        for _ in range(n):
            portal.call(client.organization)
            portal.call(partial(client.get_task, task_id))
        took = time.perf_counter() - t0
        portal.call(client.aclose)
    return took


async def _client(base_url: str) -> AsyncRunwayClient:
    return AsyncRunwayClient("local", base_url=base_url)


def request_ms(base_url: str, n: int) -> float:
    headers = {"Authorization": "Bearer x", "X-Runway-Version": "2024-11-06"}
    with httpx.Client() as client:
        client.get(f"{base_url}/v1/organization", headers=headers)
        t0 = time.perf_counter()
        for _ in range(n):
            client.get(f"{base_url}/v1/organization", headers=headers)
        return 1000 * (time.perf_counter() - t0) / n


def served_as_before(emu: Emulator) -> tuple[uvicorn.Server, str]:
    """The emulator's own app on a second port, its socket made as it was before (proto 0)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(emu.app.asgi, log_level="warning", lifespan="off", interface="asgi3"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def run_blocking_cost(n: int) -> tuple[float, float]:
    async def nothing() -> int:
        return 1

    t0 = time.perf_counter()
    for _ in range(n):
        run_blocking(nothing)  # no loop running here: asyncio.run
    outside = time.perf_counter() - t0

    async def kernel() -> float:
        t1 = time.perf_counter()
        for _ in range(n):
            run_blocking(nothing)  # a loop runs here: a LoopThread per call
        return time.perf_counter() - t1

    return outside, asyncio.run(kernel())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="pairs of calls per bridge")
    args = parser.parse_args()
    with Emulator(render_scale=0.1, run_s=0.1) as emu:
        before, before_url = served_as_before(emu)
        now_ms = min(request_ms(emu.base_url, 100) for _ in range(3))
        before_ms = min(request_ms(before_url, 100) for _ in range(3))
        before.should_exit = True
        print(f"GET /v1/organization against the emulator (best of 3 x 100): {now_ms:.2f} ms now (IPPROTO_TCP), "
              f"{before_ms:.2f} ms before (proto 0); ratio {before_ms / now_ms:.0f}x")
        task_id = asyncio.run(_one_task(emu.base_url))
        through_loop_thread(emu.base_url, task_id, 20)  # warm both
        through_anyio_portal(emu.base_url, task_id, 20)
        rows = []
        for _ in range(3):  # interleaved, best of three each
            rows.append((through_loop_thread(emu.base_url, task_id, args.calls),
                         through_anyio_portal(emu.base_url, task_id, args.calls)))
    ours, theirs = min(r[0] for r in rows), min(r[1] for r in rows)
    calls = 2 * args.calls
    print(f"{calls} sync client calls against the emulator (best of 3):")
    print(f"  LoopThread (now)   {ours:6.2f} s  {1000 * ours / calls:5.2f} ms/call")
    print(f"  anyio portal (was) {theirs:6.2f} s  {1000 * theirs / calls:5.2f} ms/call")
    print(f"  ratio portal/LoopThread: {theirs / ours:.2f}")
    outside, inside = run_blocking_cost(200)
    print(f"run_blocking of an empty coroutine, 200 times: {1000 * outside / 200:.2f} ms each with no loop "
          f"(asyncio.run), {1000 * inside / 200:.2f} ms each inside a running loop (a LoopThread each)")


async def _one_task(base_url: str) -> str:
    async with AsyncRunwayClient("local", base_url=base_url) as client:
        return await client.create(GenerationRequest(DEMO, "noir", seed=1))


if __name__ == "__main__":
    main()
