"""Rescoring cost, side by side in one run: 200 kept outputs scored with every default metric by
- score() in a loop, in this process (the floor: no Dask, no MLflow reads or writes);
- rescore() with a Dask LocalCluster of 1 worker, then of 2 workers (each on its own copy of the
  experiment, so neither finds the other's values), all reads and writes to MLflow included.

Prints wall times, the speed-up of 2 workers over 1 and over the loop, and the per-output
overhead of rescore on 1 worker over the loop. The outputs are emulator renders of the demo clip
(a handful, each logged many times as a run's output.mp4 in a SQLite store, as a sweep logs them).

With --scheduler tcp://HOST:8786 (a Dask cluster of 4 or 8 workers on a bigger machine, each able
to read this machine's store and files: run the bench there), the same rescore on that cluster too,
against 1 local worker. What to expect: each output is scored on one worker (its decode and its
metrics use up to 2 threads), tasks of several outputs share a source's decode and cost one round
trip each, and this process writes each run's values with one log_batch. So N workers on N cores
should go about N x 0.9 times as fast as one, until the writes in this process (about 10-30 ms a
run on SQLite, more on a remote server) or the store's disk become the limit: at 8 workers and
~0.45 s an output, 18 outputs a second arrive, which one writer still keeps up with.

    python bench/rescore.py [--outputs 200] [--scheduler tcp://HOST:8786]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

from v2v_lab import score
from v2v_lab.emulator.engine import RenderJob, render
from v2v_lab.rescoring import rescore
from v2v_lab.tracking.schema import ARTIFACT_OUTPUT, KIND_CELL, KIND_TAG, SOURCE_TAG, STATUS_TAG
from v2v_lab.tracking.store import artifact_location

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "experiments" / "media" / "bigbuckbunny.mp4")
PROMPTS = ["neon city", "watercolor", "oil painting", "pencil sketch", "cyberpunk", "winter", "sunset", "noir"]


def make_outputs(folder: Path) -> list[str]:
    outs = []
    for i, prompt in enumerate(PROMPTS):
        out = folder / f"out{i}.mp4"
        render(RenderJob(DEMO, "gen4_aleph", prompt, i + 1, "1280:720", 24, 5.0, str(out)))
        outs.append(str(out))
    return outs


def make_experiment(uri: str, name: str, outputs: list[str], n: int) -> None:
    client = MlflowClient(uri)
    exp = client.create_experiment(name, artifact_location=artifact_location(uri, name))
    for i in range(n):
        run = client.create_run(exp, tags={KIND_TAG: KIND_CELL, STATUS_TAG: "succeeded", SOURCE_TAG: DEMO})
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / ARTIFACT_OUTPUT
            os.link(outputs[i % len(outputs)], target)
            client.log_artifact(run.info.run_id, str(target))
        client.set_terminated(run.info.run_id)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outputs", type=int, default=200)
    ap.add_argument("--scheduler", help="also on this Dask cluster (tcp://HOST:PORT)")
    args = ap.parse_args()
    n = args.outputs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        outputs = make_outputs(folder)
        t = time.perf_counter()
        for name in ("one_worker", "two_workers", *(["cluster"] if args.scheduler else [])):
            make_experiment(uri, name, outputs, n)
        print(f"{n} outputs ({len(outputs)} distinct renders, 1280x720, 5 s) logged twice in {time.perf_counter() - t:.1f}s")

        t = time.perf_counter()
        for i in range(n):
            score(DEMO, outputs[i % len(outputs)])
        loop = time.perf_counter() - t
        one = rescore("one_worker", workers=1, tracking_uri=uri)
        two = rescore("two_workers", workers=2, tracking_uri=uri)
        assert one.values_written == two.values_written == n * len(one.written[next(iter(one.written))])
        print(f"score() in a loop:        {loop:7.1f} s   {loop / n * 1000:6.0f} ms/output")
        print(f"rescore, 1 Dask worker:   {one.wall_s:7.1f} s   {one.wall_s / n * 1000:6.0f} ms/output   "
              f"overhead vs loop {(one.wall_s - loop) / n * 1000:+.0f} ms/output")
        print(f"rescore, 2 Dask workers:  {two.wall_s:7.1f} s   {two.wall_s / n * 1000:6.0f} ms/output   "
              f"speed-up over 1 worker {one.wall_s / two.wall_s:.2f}x, over the loop {loop / two.wall_s:.2f}x")
        if args.scheduler:
            far = rescore("cluster", scheduler=args.scheduler, tracking_uri=uri)
            print(f"rescore, {args.scheduler}: {far.wall_s:7.1f} s   {far.wall_s / n * 1000:6.0f} ms/output   "
                  f"speed-up over 1 worker {one.wall_s / far.wall_s:.2f}x, over the loop {loop / far.wall_s:.2f}x")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
