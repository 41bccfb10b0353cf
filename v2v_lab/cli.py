"""`v2v-lab`: sweep, generate, score, emulator, runs, ui. Exit 0 done, 2 bad input, 1 anything else."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from .errors import InputError, V2VError


def _emulator_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback unless given)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--key", default=None, help="accept only this bearer key (default: any key)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds each task spends RUNNING at least")
    p.add_argument("--queue-seconds", type=float, default=0.05, help="seconds each task stays PENDING")
    p.add_argument("--render-scale", type=float, default=1.0, help="render outputs at this fraction of size")
    p.add_argument("--output-ttl", type=float, default=3600.0, help="seconds an output URL works")
    p.add_argument("--concurrency", type=int, default=8, help="maxConcurrentGenerations per model")
    p.add_argument("--daily-limit", type=int, default=10_000, help="maxDailyGenerations per model")
    p.add_argument("--credits", type=float, default=1_000_000, help="starting credit balance")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--error-rate", action="append", default=[], metavar="ROUTE=P",
                   help="5xx rate on a route (create, task, delete, upload, organization, usage, output)")
    p.add_argument("--create-429-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0, help="dropped connections per request")
    p.add_argument("--truncate-rate", type=float, default=0.0, help="truncated output downloads")
    p.add_argument("--slow-download", type=float, default=0.0, help="seconds added to each output download")
    p.add_argument("--failure-rate", type=float, default=0.0, help="tasks that fail with INTERNAL.*")
    p.add_argument("--safety-output-rate", type=float, default=0.0, help="tasks that fail with SAFETY.OUTPUT.*")
    p.add_argument("--request-latency", type=float, default=0.0, help="seconds added to each API request")
    p.add_argument("--blocklist", default="gore,nsfw,beheading", help="comma-separated words that fail SAFETY.INPUT")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="v2v-lab", description="Sweeps, scores and dashboards for "
                                     "video-to-video models, with a built-in offline emulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="run (or --dry-run) a sweep spec")
    p.add_argument("spec")
    p.add_argument("--dry-run", action="store_true", help="print cells, seconds, credits and dollars; send nothing")
    p.add_argument("--yes", action="store_true", help="spend without asking")
    p.add_argument("--max-credits", type=float, default=None)
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--provider", choices=["runway", "cometapi", "local"], default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--force", action="store_true", help="redo cells already done")
    p.add_argument("--retry-failed", action="store_true", help="retry failed cells whose failure is retryable")
    p.add_argument("--retry-unknown", action="store_true",
                   help="send again cells whose create may have reached the endpoint (may bill twice)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("generate", help="one generation")
    p.add_argument("video")
    p.add_argument("--prompt", required=False)
    p.add_argument("--model", default="gen4_aleph")
    p.add_argument("--seed", default=None)
    p.add_argument("--ratio", default=None)
    p.add_argument("--reference", action="append", default=[])
    p.add_argument("--provider", choices=["runway", "cometapi", "local"], default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--out", default="output.mp4")
    p.add_argument("--timeout", type=float, default=900.0)

    p = sub.add_parser("score", help="score an output against its source")
    p.add_argument("source")
    p.add_argument("output")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--metrics", default=None, help="comma-separated (default: all)")
    p.add_argument("--crop", choices=["center", "stretch"], default="center")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("emulator", help="serve the built-in endpoint")
    _emulator_flags(p)

    p = sub.add_parser("runs", help="a table of an experiment's runs")
    p.add_argument("experiment", nargs="?")
    p.add_argument("--tracking-uri", default=None)

    p = sub.add_parser("ui", help="MLflow UI on the configured store")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1")
    return parser


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweeps import load_spec, run_sweep
    from .tracking.store import ui_command

    spec = load_spec(args.spec)
    result = run_sweep(spec, dry_run=args.dry_run, yes=args.yes, max_credits=args.max_credits,
                       concurrency=args.concurrency, provider=args.provider, base_url=args.base_url,
                       force=args.force, retry_failed=args.retry_failed, retry_unknown=args.retry_unknown,
                       progress=not args.no_progress)
    plan = result.plan
    for w in plan.warnings:
        print(f"warning: {w}")
    for combo, why in plan.excluded:
        print(f"left out: {combo['model']} seed={combo['seed']} ratio={combo['ratio']}: {why}")
    if args.dry_run:
        todo = [o.cell for o in result.outcomes if o.state != "done"]
        print(f"{len(plan.cells)} cells planned on {plan.provider.name}; {result.already_done} already done; "
              f"{len(todo)} to run")
        print(f"{'model':<14}{'cells':>7}{'output s':>10}{'credits':>10}{'dollars':>10}")
        for model, row in plan.by_model(todo).items():
            print(f"{model:<14}{int(row['cells']):>7}{row['seconds']:>10.1f}{row['credits']:>10.1f}"
                  f"{row['dollars']:>10.2f}")
        if not plan.provider.paid:
            print("(the emulator costs nothing; figures are what the real endpoint would charge)")
        return 0
    print(result.table())
    counts = result.counts
    print(f"\n{len(result.outcomes)} cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + f"; {result.credits_spent:g} credits; {result.wall_s:.1f}s")
    unknown = [o for o in result.outcomes if o.state == "unknown"]
    if unknown:
        print(f"{len(unknown)} cell(s) have an unknown create outcome (a task may exist and may be billed); "
              "check the provider's dashboard, then rerun with --retry-unknown to send them again")
    print(f"MLflow: {result.tracking_uri}  (parent run {result.parent_run_id})")
    print(f"Open the UI: {ui_command(result.tracking_uri)}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .api import GenerationRequest, RunwayClient, TaskStatus

    seed: Any = args.seed
    if seed is not None:
        try:
            seed = int(seed)
        except ValueError:
            raise InputError("--seed", args.seed, "an integer from 0 to 4294967295") from None
    request = GenerationRequest(args.video, args.prompt, args.model, seed, args.ratio, tuple(args.reference))
    with RunwayClient(args.provider, base_url=args.base_url) as client:
        client.validate(request)
        bar = tqdm(total=100, desc="generate", unit="%")

        def progress(task):
            bar.set_postfix_str(task.status.value)
            if task.progress is not None:
                bar.n = int(task.progress * 100)
                bar.refresh()

        task_id = client.create(request)
        print(f"task {task_id}", file=sys.stderr)
        task = client.wait(task_id, on_progress=progress, timeout=args.timeout)
        bar.n = 100
        bar.close()
        if task.status is not TaskStatus.SUCCEEDED:
            print(f"task {task.id} {task.status.value}: {task.failure_code or ''} {task.failure or ''}".strip())
            return 0  # a refused generation is a recorded result, not a crash
        client.download(task, args.out)
    print(args.out)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from .metrics import REGISTRY, score

    metrics = args.metrics.split(",") if args.metrics else None
    report = score(args.source, args.output, metrics, frames=args.frames, size=args.size, crop=args.crop)
    if args.json:
        print(report.to_json(indent=2))
        return 0
    for name, value in report.values.items():
        m = REGISTRY[name]
        print(f"{name:<26}{value:>10.5f}   ({m.direction} is better, range {m.worst:g}..{m.best:g})")
    print(f"frames {report.params['frames']} at {report.params['analysis_size']}, crop {report.params['crop']}, "
          f"decoder {report.params['decoder']}; {report.timings['total_s']:.2f}s")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from .emulator import Emulator, FaultConfig, test_key

    rates = {}
    for item in args.error_rate:
        route, _, rate = item.partition("=")
        try:
            rates[route] = float(rate)
        except ValueError:
            raise InputError("--error-rate", item, "ROUTE=P with P a probability") from None
    try:
        faults = FaultConfig(seed=args.fault_seed, server_error_rate=rates, create_429_rate=args.create_429_rate,
                             drop_rate=args.drop_rate, truncate_rate=args.truncate_rate,
                             slow_download_s=args.slow_download, task_failure_rate=args.failure_rate,
                             safety_output_rate=args.safety_output_rate, request_latency_s=args.request_latency,
                             blocklist=tuple(w.strip() for w in args.blocklist.split(",") if w.strip()))
    except ValueError as exc:
        field, _, rest = str(exc).partition(": ")
        raise InputError(f"--{field.replace('_', '-')}", None, rest) from None
    emu = Emulator(host=args.host, port=args.port, key=args.key, queue_s=args.queue_seconds, run_s=args.latency,
                   render_scale=args.render_scale, output_ttl_s=args.output_ttl, concurrency=args.concurrency,
                   daily_limit=args.daily_limit, credits=args.credits, faults=faults, log_level="warning")
    emu.start()
    print(f"v2v-lab emulator on {emu.base_url}", flush=True)
    if args.key:
        print("key: the one given with --key", flush=True)
    else:
        print(f"key: any bearer key is accepted, e.g. {test_key()}", flush=True)
    print(f"try: V2V_LAB_BASE_URL={emu.base_url} v2v-lab generate VIDEO --prompt 'neon city' --provider local",
          flush=True)
    emu.serve_forever()
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .tracking import list_experiments, load_runs

    if not args.experiment:
        for name in list_experiments(args.tracking_uri):
            print(name)
        return 0
    df = load_runs(args.experiment, tracking_uri=args.tracking_uri)
    if df.empty:
        print(f"experiment {args.experiment!r} has no cell runs")
        return 0
    cols = [c for c in ("status", "model", "seed", "ratio", "prompt", "ssim_source", "temporal_consistency",
                        "warp_error", "flicker", "failure_code") if c in df.columns]
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_colwidth", 40):
        print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from .tracking.store import tracking_uri

    uri = tracking_uri()
    print(f"MLflow UI for {uri} on http://{args.host}:{args.port}", flush=True)
    os.execvp(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--host", args.host, "--port", str(args.port)])
    return 0


COMMANDS = {"sweep": cmd_sweep, "generate": cmd_generate, "score": cmd_score, "emulator": cmd_emulator,
            "runs": cmd_runs, "ui": cmd_ui}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # MLflow announces its schema set-up on a new store at INFO: not the CLI's business to print.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except V2VError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the journal keeps every created task; run the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
