"""`v2v-lab`: sweep, generate, score, emulator, runs, rescore, power, ui. Exit 0 done, 2 bad input, 1 anything else."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ._env import env_text
from ._net import mask_credentials
from .cli_args import build_parser  # the grammar; cli.py runs it
from .errors import InputError, V2VError, escape_controls

__all__ = [
    "COMMANDS", "FAULT_FLAGS", "INTERRUPTED", "cmd_emulator", "cmd_generate", "cmd_power", "cmd_rescore", "cmd_runs",
    "cmd_score", "cmd_sweep", "cmd_ui", "main",
]


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweeps import load_spec, run_sweep
    from .tracking.store import ui_command

    spec = load_spec(args.spec)
    result = run_sweep(spec, dry_run=args.dry_run, yes=args.yes, max_credits=args.max_credits,
                       concurrency=args.concurrency, provider=args.provider, base_url=args.base_url,
                       force=args.force, retry_failed=args.retry_failed, retry_unknown=args.retry_unknown,
                       progress=not args.no_progress, tracking_uri=args.tracking_uri)
    plan = result.plan
    for w in plan.warnings:
        print(_printable(f"warning: {w}"))
    # One line per model and reason (a ratio a model cannot take leaves out every cell that asks it).
    left_out = Counter((combo["model"], why) for combo, why in plan.excluded)
    for (model, why), n in left_out.items():
        print(_printable(f"left out: {n} {model} cell{'s' if n != 1 else ''}: {why}"))
    if args.dry_run:
        _print_dry_run(result, spec)
        return 0
    counts = result.counts
    if result.parent_run_id is None:
        states = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        print(f"nothing to do: {len(result.outcomes)} cells ({states}); nothing was sent or written")
        _print_not_done(result)
        if result.search is not None:
            print("\n".join(_printable(line) for line in result.search.table().split("\n")))
        return 0
    print(result.table())
    if result.search is not None:
        print("\n" + "\n".join(_printable(line) for line in result.search.table().split("\n")))
    print(f"\n{len(result.outcomes)} cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + f"; {result.credits_text}; {result.wall_s:.1f}s")
    kept = [o for o in result.outcomes if o.from_kept]
    if kept:  # a rerun after a crash, a full disk or a store that was away: what it finished, unpaid
        print(f"{len(kept)} of them finished now from outputs an earlier run paid for and kept "
              f"({sum(o.credits for o in kept):g} credits, not paid again)")
    _print_not_done(result)
    print(f"MLflow: {mask_credentials(result.tracking_uri or '')}  (parent run {result.parent_run_id})")
    print(f"Open the UI: {ui_command(result.tracking_uri)}")
    return 0


def _print_dry_run(result: Any, spec: Any) -> None:
    """What a sweep would do and cost, per model (and, for a search, the most and the expected)."""
    from .sweeps.states import CellState

    plan = result.plan
    todo = [o for o in result.outcomes if o.state == CellState.PLANNED]
    print(f"{len(plan.cells)} cells planned on {plan.provider.name}; {result.already_done} already done; "
          f"{len(todo)} to run")
    if len(todo) != len(result.to_create):
        print(f"({len(todo) - len(result.to_create)} of them take up a task or log an output already paid "
              f"for; the figures are for the {len(result.to_create)} new tasks)")
    _print_not_done(result)
    rows = plan.by_model(result.to_create)
    lines = [[m, f"{int(r['cells']):,}", f"{r['seconds']:,.1f}", f"{r['credits']:,.1f}", f"{r['dollars']:,.2f}"]
             for m, r in rows.items()]
    if len(rows) != 1:
        total = {k: sum(r[k] for r in rows.values()) for k in ("cells", "seconds", "credits", "dollars")}
        lines.append(["total", f"{int(total['cells']):,}", f"{total['seconds']:,.1f}",
                      f"{total['credits']:,.1f}", f"{total['dollars']:,.2f}"])
    head = ["model", "cells", "output s", "credits", "dollars"]
    # Each column as wide as its widest entry, two spaces apart: 2,000,000 cells never run into
    # the next column.
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    for line in [head, *lines]:
        print("  ".join([line[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(line[1:], widths[1:], strict=True)]))
    if not plan.provider.paid:
        print("(the emulator costs nothing; figures are what the real endpoint would charge)")
    if result.search_estimate is not None:
        _print_search_estimate(spec, *result.search_estimate)


def _print_search_estimate(spec: Any, most: float, expected: float, share: float) -> None:
    """A search's dry run: the most it can cost (the grid's cells not done) and what it is expected to cost."""
    search = spec.search
    print(f"search: best {search.best} by {search.metric} at confidence {search.confidence:g}: at most "
          f"{most:,.1f} credits (every grid cell not done), expected about {expected:,.1f} ({share:.0%} of the "
          "grid's cells, simulated for candidates 0.5 to 2 noise SDs apart; closer candidates cost more, up to the most)")


def _print_not_done(result: Any) -> None:
    from .sweeps.states import CellState

    left = [o for o in result.not_started if o.failure_code == "budget"]
    if left:
        need = sum(o.credits_needed for o in left)
        print(f"{len(left)} cell(s) not started (budget): they would cost about {need:g} credits, past "
              "what the cap leaves; rerun with a higher --max-credits to take them up (nothing is paid twice)")
    today = [o for o in result.not_started if o.failure_code == "daily limit"]
    if today:
        print(f"{len(today)} cell(s) not started (daily limit): their models' generations for today are used up; "
              "rerun tomorrow to take them up (nothing is paid twice)")
    unknown = [o for o in result.outcomes if o.state == CellState.UNKNOWN]
    if unknown:
        print(f"{len(unknown)} cell(s) have an unknown create outcome (a task may exist and may be billed); "
              "check the provider's dashboard, then rerun with --retry-unknown to send them again")
    pending = [o for o in result.outcomes if o.paid_output_pending]
    if pending:
        print(f"{len(pending)} cell(s) were paid for but their output was not fetched; run the same command "
              "again to fetch it by task id (never paid again)")
    missing = [o for o in result.outcomes if o.state == CellState.MISSING]
    if missing:
        print(f"{len(missing)} cell(s) were paid for before but their outputs are gone (not kept here, and not "
              "in this store or no longer fetchable from the provider); rerun with --force to pay for them again")


def _options(pairs: list[str]) -> dict[str, Any]:
    """--option field=value pairs: true/false as booleans, whole numbers as integers, else text
    (each field and value is checked against the model's own fields before anything is sent)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InputError("--option", pair, "FIELD=VALUE, such as duration=5 or audio=true")
        value: Any = {"true": True, "false": False}.get(text.lower(), text)
        options[name.strip()] = int(text) if re.fullmatch(r"-?[0-9]+", text) else value
    return options


def _check_out(path: str, force: bool) -> Path:
    """The output path can be written, before anything is paid for; an existing file is kept
    unless --force."""
    out = Path(path)
    if out.is_dir():
        raise InputError("--out", path, "a file path (this is a folder)")
    if out.exists() and not force:
        raise InputError("--out", path, "a path with no file yet (or --force to overwrite it)")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("--out", path, f"a path in an existing folder ({folder} does not exist)")
    from ._files import can_write_in

    if not can_write_in(folder) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError("--out", path, "a path in a folder that can be written")
    return out


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .api import GenerationRequest, RunwayClient, TaskStatus
    from .api.catalog import seed_range
    from .sweeps.budget import confirm_spend, spend_question

    seed: Any = args.seed
    if seed is not None:
        try:
            seed = int(seed)
        except ValueError:
            raise InputError("--seed", args.seed, "an integer from {} to {}".format(*seed_range())) from None
    out = _check_out(args.out, args.force)
    request = GenerationRequest(args.video, args.prompt, args.model, seed, args.ratio, tuple(args.reference),
                                options=_options(args.option))
    from .emulator.owned import local_endpoint

    args.sent = "nothing"  # what reached the endpoint, for the message if interrupted (main)
    with local_endpoint(args.provider, args.base_url) as base_url, RunwayClient(args.provider,
                                                                                base_url=base_url) as client:
        seconds = client.validate(request)
        # Drawn once the request is known good, said once its task exists: a refused request or a
        # refused spend stays a single error line.
        request, seed_note = _with_a_seed(request, client.catalog[args.model])
        if client.provider.paid and not args.yes:
            model = client.catalog[args.model]
            credits = model.estimate_credits(seconds, request.options, ratio=request.ratio,
                                             references=len(request.references))
            confirm_spend(spend_question(1, client.provider.name, credits))
        # A percentage, not a rate: tqdm's default would print "158.40%/s".
        bar = tqdm(total=100, desc="generate", bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}")
        try:
            def progress(task: Any) -> None:
                bar.set_postfix_str(task.status.value)
                if task.progress is not None:
                    bar.n = int(task.progress * 100)
                    bar.refresh()

            task_id = client.create(request, on_sending=lambda: setattr(args, "sent", "sending"))
            args.sent = "created"
            bar.write(_printable(f"task {task_id}; {seed_note}"), file=sys.stderr)
            task = client.wait(task_id, on_progress=progress, timeout=args.timeout)
            bar.n = 100
        finally:
            bar.close()  # before any message: an error never shares a line with the bar
        if task.status is not TaskStatus.SUCCEEDED:
            said = f"task {task.id} {task.status.value}: {task.failure_code or ''} {task.failure or ''}"
            print(_printable(said.strip()))
            return 0  # a refused generation is a recorded result, not a crash
        client.download(task, out)
    print(_printable(str(out)))
    return 0


def _with_a_seed(request: Any, model: Any) -> tuple[Any, str]:
    """Without --seed, a model that takes a seed gets one drawn here, so the generation can be
    repeated (Runway's task does not say which seed it drew); and what to say of the seed."""
    import dataclasses
    import secrets

    if not model.takes_seed:
        return request, f"seed: none ({model.name} draws its own for each task)"
    if request.seed is not None:
        return request, f"seed {request.seed}"
    seed = model.seed_min + secrets.randbelow(model.seed_max - model.seed_min + 1)
    return dataclasses.replace(request, seed=seed), f"seed {seed} (drawn: --seed {seed} repeats it)"


def cmd_score(args: argparse.Namespace) -> int:
    from .metrics import REGISTRY, score
    from .metrics.base import check_metric_names

    metrics = args.metrics.split(",") if args.metrics else None
    check_metric_names(metrics or [], "--metrics")
    report = score(args.source, args.output, metrics, frames=args.frames, size=args.size, crop=args.crop,
                   prompt=args.prompt)
    if args.json:
        print(report.to_json(indent=2))
        return 0
    for name, value in report.values.items():
        print(f"{name:<26}{value:>10.5f}   ({REGISTRY[name].describe()})")
    for name, why in report.errors.items():  # a metric that failed is said, beside the others
        print(f"{name:<26}{'failed':>10}   ({_printable(why)})")
    print(f"frames {report.params['frames']} at {report.params['analysis_size']}, crop {report.params['crop']}, "
          f"decoder {report.params['decoder']}; {report.timings['total_s']:.2f}s")
    return 0


# FaultConfig's fields whose flag is not simply the field's name with dashes.
FAULT_FLAGS = {"server_error_rate": "--error-rate", "task_failure_rate": "--failure-rate",
               "request_latency_s": "--request-latency", "slow_download_s": "--slow-download"}


def cmd_emulator(args: argparse.Namespace) -> int:
    from .api.providers import EMULATOR_KEY_ENV, PROVIDERS
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
    except InputError as exc:  # named as FaultConfig names it: say it as the flag the user typed
        flag = FAULT_FLAGS.get(exc.field.split("[")[0], "--" + exc.field.replace("_", "-"))
        raise InputError(flag, exc.value, exc.allowed) from None
    catalog = None
    if args.prices:
        from .api.catalog import load_prices

        catalog = load_prices(args.prices)
    emu = Emulator(host=args.host, port=args.port, key=args.key, queue_s=args.queue_seconds, run_s=args.latency,
                   render_scale=args.render_scale, output_ttl_s=args.output_ttl, concurrency=args.concurrency,
                   daily_limit=args.daily_limit, credits=args.credits, faults=faults, log_level="warning",
                   flavor=args.flavor, catalog=catalog)
    try:
        emu.start()
    except OSError as exc:
        raise InputError("--port", args.port, f"a port free on {args.host} ({exc.strerror})") from None
    try:
        print(f"v2v-lab emulator on {emu.base_url}", flush=True)
        if args.flavor == "cometapi":
            comet_key = PROVIDERS["cometapi"].key_env
            print(f"flavor: CometAPI's official format; any key in {comet_key}"
                  f"{' (or the --key one)' if args.key else ''}", flush=True)
            print(f"try: {comet_key}=... v2v-lab generate VIDEO --prompt 'neon city' --provider cometapi "
                  f"--base-url {emu.base_url} --yes", flush=True)
        else:
            if args.key:
                print(f"key: the one given with --key; v2v-lab clients read it from {EMULATOR_KEY_ENV}", flush=True)
            else:
                print(f"key: any bearer key is accepted, e.g. {test_key()}", flush=True)
            print(f"try: V2V_LAB_BASE_URL={emu.base_url} v2v-lab generate VIDEO --prompt 'neon city' "
                  "--provider local", flush=True)
        emu.wait()
    finally:
        emu.stop()
    return 0


def _printable(value: Any) -> Any:
    """What any line or table cell the CLI prints goes through (errors.escape_controls): a prompt's
    or a server's escape codes are shown, never sent to the terminal."""
    return escape_controls(value) if isinstance(value, str) else value


def cmd_runs(args: argparse.Namespace) -> int:
    from .tracking import load_runs
    from .tracking.reader import existing_experiments, study_columns
    from .tracking.store import check_store

    store = check_store(args.tracking_uri, write=False)  # as a sweep does: a store that does not answer is one line
    if not args.experiment:
        names = existing_experiments(store)
        for name in names or []:
            print(_printable(name))
        if not names:
            print(f"no experiments in {mask_credentials(store)} yet")
        return 0
    df = load_runs(args.experiment, tracking_uri=args.tracking_uri)  # one not there: one line naming the store
    if df.empty:
        print(f"experiment {_printable(args.experiment)!r} has no cell runs")
        return 0
    metrics = _runs_metrics(df, args.metrics, args.sort)
    # The grid's order (model, its options, prompt, seed...), then the metric asked for: best first.
    df = df.sort_values(study_columns(df), na_position="last", kind="stable")
    if args.sort:
        df = _sorted_by_metric(df, args.sort)
    # A failure code column where a cell failed: the room goes to the prompt otherwise.
    failures = ["failure_code"] if df["failure_code"].notna().any() else []
    cols = [c for c in ("status", *study_columns(df), *metrics, *failures) if c in df.columns]
    import shutil

    # Not a terminal (a pipe, a file): as wide as the table was before it followed the terminal.
    width = shutil.get_terminal_size(fallback=(200, 24)).columns
    for line in _text_table(df[cols], width, fit="prompt"):
        print(line)
    spend = _spend_lines(args.experiment, df, args.tracking_uri)
    if spend:
        print()
    for line in spend:
        print(_printable(line))
    return 0


def _spend_lines(experiment: str, cells: Any, tracking_uri: str | None) -> list[str]:
    """Spend per model as the runs recorded it (the server's costs; the estimate where a provider
    sent none), and what the account reported for the days of the latest paid sweep."""
    from .tracking import load_runs

    if "credits" not in cells.columns or not cells["credits"].notna().any():
        return []
    runs = load_runs(experiment, tracking_uri=tracking_uri, include_parents=True)
    parents = runs[runs["cell_key"].isna()].sort_values("start_time")
    lines = []
    for model, group in cells.groupby("model"):
        estimated = (group["credits_source"] == "estimate").sum()
        free = "provider" in group and (group["provider"] == "local").all()
        line = (f"spent on {model}: {group['credits'].sum():g} credits over {len(group)} runs"
                + (" (on the emulator: what the real endpoint would charge; nothing was paid)" if free else ""))
        line += f" ({estimated} of them estimated: the provider sent no cost)" if estimated else ""
        reported = parents.get(f"account_credits.{model}")
        if reported is not None and reported.notna().any():
            line += f"; the account reported {reported.dropna().iloc[-1]:g} for the days of the latest sweep"
        lines.append(line)
    return lines


def _runs_metrics(df: Any, wanted: str | None, sort: str | None) -> list[str]:
    """The metric columns `runs` shows: --metrics (any metric column this experiment has, a
    rescored version such as structure.size128.frames16 included), else the headline metrics some
    run has a value of (one nobody scored would be a column of dashes); the --sort metric joins
    them when it is not among them."""
    from .metrics import metric_names
    from .metrics.base import metric_of
    from .tracking.schema import TIMING_METRICS

    present = [c for c in df.columns if c in TIMING_METRICS or metric_of(c) is not None]
    chosen = ([m.strip() for m in wanted.split(",") if m.strip()] if wanted else
              [m for m in metric_names(headline_only=True) if m in df.columns and df[m].notna().any()])
    for flag, names in (("--metrics", chosen if wanted else []), ("--sort", [sort] if sort else [])):
        for name in names:
            if name not in present:
                raise InputError(flag, name, f"a metric of this experiment: {', '.join(present)}")
    return chosen + ([sort] if sort and sort not in chosen else [])


def _sorted_by_metric(df: Any, metric: str) -> Any:
    """Best first, by the metric's declared direction (Metric.goodness: a target metric nearest its
    target first; a timing such as latency_s: lowest first); runs without a value last."""
    from .metrics.base import metric_of

    found = metric_of(metric)
    if found is None:
        return df.sort_values(metric, na_position="last", kind="stable")
    return df.sort_values(metric, key=lambda v: -found.goodness(v.astype(float)), na_position="last", kind="stable")


def _cell_text(value: Any) -> str:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(_printable(str(value)))


def _text_table(table: Any, width: int, fit: str, least: int = 36) -> list[str]:
    """Rows of text, columns two spaces apart, numbers to the right. The `fit` column (the prompt)
    takes the width the others leave on the terminal, never less than `least`; a longer value is
    cut with "..." (shown whole when it fits, as on a wide terminal)."""
    import pandas as pd

    cells = {c: [_cell_text(v) for v in table[c].tolist()] for c in table.columns}
    widths = {c: max(len(c), *(len(v) for v in cells[c])) for c in table.columns}
    if fit in cells:
        room = width - sum(w for c, w in widths.items() if c != fit) - 2 * (len(widths) - 1)
        widths[fit] = min(widths[fit], max(least, room))
        cells[fit] = [v if len(v) <= widths[fit] else v[: widths[fit] - 3] + "..." for v in cells[fit]]
    right = {c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])
             and not pd.api.types.is_bool_dtype(table[c])}

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(widths[c]) if c in right else v.ljust(widths[c])
                         for c, v in zip(table.columns, values, strict=True)).rstrip()

    return [line([str(_printable(str(c))) for c in table.columns]), *(line([cells[c][i] for c in table.columns]) for i in range(len(table)))]


def cmd_rescore(args: argparse.Namespace) -> int:
    from .rescoring import rescore

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    result = rescore(args.experiment, metrics, workers=args.workers, scheduler=args.scheduler, frames=args.frames,
                     size=args.size, crop=args.crop, tracking_uri=args.tracking_uri, progress=sys.stderr.isatty())
    for line in result.summary().split("\n"):  # each line escaped, the lines kept
        print(_printable(line))
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    import json
    import math
    import shutil

    import pandas as pd

    from .sweeps.power import power
    from .tracking.store import check_store

    check_store(args.tracking_uri, write=False)  # a store that does not answer is one line, never made
    table = power(args.experiment, args.by, args.metric, delta=args.delta, power=args.power, alpha=args.alpha,
                  baseline=args.baseline, tracking_uri=args.tracking_uri)
    if args.json:
        def plain(v: Any) -> Any:  # NaN and NA are no JSON: null; numpy numbers as Python's
            return None if v is None or pd.isna(v) else (v.item() if hasattr(v, "item") else v)

        rows = [{k: plain(v) for k, v in r.items()} for r in table.to_dict("records")]
        settings = {k: table.attrs[k] for k in ("by", "metric", "delta", "power", "alpha", "method")}
        print(json.dumps({"experiment": args.experiment, **settings, "comparisons": rows}, indent=2))
        return 0
    print(_printable(f"{args.experiment}: {args.metric} by {args.by}, to detect a difference of {args.delta:g} with "
                     f"power {args.power:g} at alpha {args.alpha:g} (two-sided)"))
    shown = table.assign(group=table["group"].fillna(f"(another {args.by})"),
                         pairs_needed=table["pairs_needed"].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}"),
                         credits=table["credits"].map(lambda v: "-" if math.isnan(v) else f"{v:,.0f}"),
                         dollars=table["dollars"].map(lambda v: "-" if math.isnan(v) else f"{v:,.2f}"))
    width = shutil.get_terminal_size(fallback=(200, 24)).columns
    for line in _text_table(shown[["group", "baseline", "pairs", "sd", "pairs_needed", "credits", "dollars"]],
                            width, fit="group"):
        print(line)
    for _, r in table[table["note"] != ""].iterrows():
        print(_printable(f"{r['group'] if r['group'] is not None else '(another ' + args.by + ')'}: {r['note']}"))
    print(_printable(f"method: {table.attrs['method']}"))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from .tracking.store import local_store_path, store_name, tracking_uri

    uri = tracking_uri(args.tracking_uri)
    local = local_store_path(uri)
    if local is not None and not local.exists():  # a viewer never makes an empty store
        raise InputError("--tracking-uri" if args.tracking_uri else "MLFLOW_TRACKING_URI", uri,
                         f"a store that exists (there is none at {local.resolve()}): run a sweep first "
                         "(v2v-lab sweep SPEC), or name the store")
    url = f"http://{args.host}:{args.port}"
    print(f"MLflow UI for {store_name(uri)}: starting on {url}", flush=True)
    started = time.monotonic()
    # Without MLflow 3's job runner and its huey consumers (the UI uses none): it answers in about
    # half the time, and nothing outlives it. Its own process group: stopped whole, at once.
    from ._env import child_environment

    env = child_environment(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    # One worker: the UI of one person's store; four (MLflow's default) import MLflow four times over.
    # MLflow's own chatter goes to stderr: this command's stdout is its two lines (starting, ready).
    child = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host,
                              "--port", str(args.port), "--workers", "1"], env=env, start_new_session=True,
                             stdout=_stderr_fd())
    try:
        if _answers_health(url, child):
            print(f"ready at {url} ({time.monotonic() - started:.1f} s)", flush=True)
        return child.wait()
    finally:
        _stop_group(child, grace_s=1.0)


def _stderr_fd() -> int | None:
    """This process's stderr as a descriptor a child can write to (None where there is none: a notebook)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _answers_health(url: str, child: Any) -> bool:
    """Wait until the UI answers /health (True), or its process has ended (False)."""
    import httpx

    while child.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop_group(child: Any, grace_s: float) -> None:
    """SIGTERM to the child's whole process group (its workers too), SIGKILL after grace_s."""
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


COMMANDS = {"sweep": cmd_sweep, "generate": cmd_generate, "score": cmd_score, "emulator": cmd_emulator,
            "runs": cmd_runs, "rescore": cmd_rescore, "power": cmd_power, "ui": cmd_ui}


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (journal kept, parent run ended)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    from ._sync import request_stop

    request_stop()  # nothing waits for a store to come back now
    raise _Terminated()


INTERRUPTED = {
    "sweep": "interrupted: the journal keeps every created task; run the same command to resume",
    "generate": "interrupted: a task already created goes on at the endpoint; its id is printed above",
    # generate, by what had reached the endpoint (cmd_generate keeps it in args.sent)
    "generate:nothing": "interrupted before anything was sent: no task was created",
    "generate:sending": "interrupted while the create was being sent: a task may exist at the endpoint "
                        "(and be billed) with no id to show",
    "emulator": "emulator stopped",
    "ui": "MLflow UI stopped",
    "rescore": "interrupted: values already written stay; run the same command to finish (nothing is written twice)",
}


def main(argv: list[str] | None = None) -> int:
    try:
        # A broken user catalog (V2V_LAB_CATALOG) is said first, in one line, whatever the command.
        # Without one, the built-in catalog is read only where it is used (generate, its help,
        # sweeps): loading it costs pydantic and YAML, a third of a second, in every other command.
        if env_text("V2V_LAB_CATALOG"):
            from .api.catalog import load_catalog

            load_catalog()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return int(exc.code or 0)
    # MLflow announces its schema set-up on a new store at INFO: not the CLI's business to print.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    # Nor, at ERROR, every SQLAlchemy error (337 lines on a full disk), nor urllib3 every retry: a
    # store that is away or full is said in one line (tracking/outage.py).
    for name in ("mlflow.store.db.utils", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not the main thread (tests calling main()): keep the default
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(_printable(f"error: {mask_credentials(str(exc))}"), file=sys.stderr)
        return 2
    except V2VError as exc:  # what a store or ledger said may name its URL: never its password
        print(_printable(f"error: {mask_credentials(str(exc))}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        sent = getattr(args, "sent", "created")
        print(INTERRUPTED.get(f"{args.command}:{sent}") or INTERRUPTED.get(args.command, "interrupted"),
              file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    except OSError as exc:  # disk full, a folder that vanished: one line, not a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(_printable(f"error: {exc.strerror or exc}{where}"), file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
