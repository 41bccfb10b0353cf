"""The command line's grammar: commands, flags, their types and help (cli.py runs them)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from .api.provider_names import PROVIDER_NAMES, names_text
from .scoring_config import DEFAULT_SCORING, IntRange, ScoringConfig

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with exit code 2, like every other bad input.

    write_help: fills in help that is costly to write (generate's, from the model catalog, which
    loads pydantic and YAML) when the help is shown, so that every other command, and
    `v2v-lab --help`, starts without it."""

    write_help: Callable[[argparse.ArgumentParser], None] | None = None

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        if self.write_help is not None:
            self.write_help(self)
            self.write_help = None
        return super().format_help()


def _number(kind: type, *, low: float | None = None, high: float | None = None, above: float | None = None):
    """An argparse type for a finite number within bounds: NaN, inf and out-of-range values are
    refused by name before anything runs (a NaN cap would have disabled the budget)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}"
                                             ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: a finite number is needed")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{text!r}: at least {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r}: at most {high:g}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"{text!r}: more than {above:g}")
        return value
    return parse


def _in_range(bound: IntRange):
    """An argparse type for a whole number in a scoring range, refused in the words every other
    place uses (ScoringConfig's ranges: the spec and score() say the same)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {bound.allowed}") from None
        if not bound.holds(value):
            raise argparse.ArgumentTypeError(f"{text!r}: {bound.allowed}")
        return value
    return parse


def _sampling_flags(p: argparse.ArgumentParser) -> None:
    """--frames, --size and --crop, with ScoringConfig's defaults and ranges (score and rescore)."""
    p.add_argument("--frames", type=_in_range(ScoringConfig.FRAMES), default=DEFAULT_SCORING.frames,
                   help="time-aligned frame pairs")
    p.add_argument("--size", type=_in_range(ScoringConfig.SIZE), default=DEFAULT_SCORING.size,
                   help="analysis size (short side)")
    p.add_argument("--crop", choices=list(ScoringConfig.CROPS), default=DEFAULT_SCORING.crop,
                   help="how the source is fitted to the output's aspect")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it or there is none
    worth saying (a switch that is off, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # By identity: 0 and 0.0 are defaults worth saying (0 == False would hide them).
        nothing = default is None or default is False or default is argparse.SUPPRESS or default == []
        if "default" in text or nothing or action.option_strings == [] or isinstance(action, argparse._HelpAction):
            return text
        return f"{text} (default: {default})"


# Where a command reads and writes, said under every command's --help.
WHERE = ("The MLflow store is --tracking-uri where a command takes it, else $MLFLOW_TRACKING_URI, else "
         "./mlflow.db in the current folder; the state folder (the journal, kept outputs) is $V2V_LAB_HOME, "
         "else ./.v2v-lab in the current folder.")


def _sub(sub: Any, name: str, help_text: str) -> _Parser:
    return sub.add_parser(name, help=help_text, description=help_text, epilog=WHERE,
                          formatter_class=_DefaultsFormatter)


def _tracking_uri_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default=None, metavar="URI",
                   help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")


def _emulator_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback unless given)")
    p.add_argument("--port", type=_number(int, low=0, high=65535), default=8765, help="TCP port (0: any free one)")
    p.add_argument("--key", default=None, help="accept only this bearer key (default: any key)")
    p.add_argument("--flavor", choices=["runway", "cometapi"], default="runway",
                   help="runway: Runway's API; cometapi: CometAPI's official format under /runwayml/v1")
    p.add_argument("--latency", type=_number(float, low=0), default=0.0,
                   help="seconds each task spends RUNNING at least")
    p.add_argument("--queue-seconds", type=_number(float, low=0), default=0.05, help="seconds each task stays PENDING")
    p.add_argument("--render-scale", type=_number(float, above=0, high=1), default=1.0,
                   help="render outputs at this fraction of size")
    p.add_argument("--output-ttl", type=_number(float, above=0), default=3600.0, help="seconds an output URL works")
    p.add_argument("--concurrency", type=_number(int, low=1), default=8, help="maxConcurrentGenerations per model")
    p.add_argument("--daily-limit", type=_number(int, low=0), default=10_000, help="maxDailyGenerations per model")
    p.add_argument("--credits", type=_number(float, low=0), default=1_000_000, help="starting credit balance")
    p.add_argument("--prices", default=None, metavar="FILE",
                   help="charge by the prices in this catalog-format YAML (e.g. models: {aleph2: "
                        "{credits_per_second: 56}}) instead of the client's catalog: a stale catalog rehearsed")
    p.add_argument("--fault-seed", type=int, default=0, help="seed of the fault dice (faults replay with it)")
    p.add_argument("--error-rate", action="append", default=[], metavar="ROUTE=P",
                   help="5xx rate on a route (create, task, delete, upload, organization, usage, output)")
    p.add_argument("--create-429-rate", type=_number(float, low=0, high=1), default=0.0,
                   help="share of creates answered 429")
    p.add_argument("--drop-rate", type=_number(float, low=0, high=1), default=0.0, help="dropped connections per request")
    p.add_argument("--truncate-rate", type=_number(float, low=0, high=1), default=0.0, help="truncated output downloads")
    p.add_argument("--slow-download", type=_number(float, low=0), default=0.0, help="seconds added to each output download")
    p.add_argument("--failure-rate", type=_number(float, low=0, high=1), default=0.0, help="tasks that fail with INTERNAL.*")
    p.add_argument("--safety-output-rate", type=_number(float, low=0, high=1), default=0.0, help="tasks that fail with SAFETY.OUTPUT.*")
    p.add_argument("--request-latency", type=_number(float, low=0), default=0.0, help="seconds added to each API request")
    p.add_argument("--blocklist", default="gore,nsfw,beheading", help="comma-separated words that fail SAFETY.INPUT")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="v2v-lab", description="Sweeps, scores and dashboards for "
                     "video-to-video models, with a built-in offline emulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    providers = list(PROVIDER_NAMES)
    provider_help = f"endpoint: {names_text('or')} (default: the one whose key is set, else local)"
    base_url_help = ("endpoint URL to use instead of the provider's own (a paid key goes over https, or plain "
                     "http to loopback only); also V2V_LAB_BASE_URL")

    p = _sub(sub, "sweep", "run (or --dry-run) a sweep spec")
    p.add_argument("spec", help="the sweep spec, a YAML file")
    p.add_argument("--dry-run", action="store_true", help="print cells, seconds, credits and dollars; send nothing")
    p.add_argument("--yes", action="store_true", help="spend without asking")
    p.add_argument("--max-credits", type=_number(float, low=0), default=None,
                   help="refuse (exit 2) when the estimate is over this many credits (default: budget.max_credits)")
    p.add_argument("--concurrency", type=_number(int, low=1, high=64), default=None,
                   help="generations in flight at once (default: the spec's concurrency)")
    p.add_argument("--provider", choices=providers, default=None, help=provider_help)
    p.add_argument("--base-url", default=None, help=base_url_help)
    p.add_argument("--force", action="store_true", help="redo cells already done (pays again)")
    p.add_argument("--retry-failed", action="store_true", help="retry failed cells whose failure is retryable")
    p.add_argument("--retry-unknown", action="store_true",
                   help="send again cells whose create may have reached the endpoint (may bill twice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _tracking_uri_flag(p)

    p = _sub(sub, "generate", "one generation")
    p.add_argument("video", help="the source clip: a local file, an https URL or a data URI")
    p.add_argument("--prompt", required=False, help="the prompt text")
    # --model, --seed, --ratio and --option: their help names the catalog's values (_catalog_help).
    p.add_argument("--model", default="gen4_aleph")
    p.add_argument("--seed", default=None)
    p.add_argument("--ratio", default=None)
    p.add_argument("--reference", action="append", default=[], help="a reference image (repeatable)")
    p.add_argument("--option", action="append", default=[], metavar="FIELD=VALUE")
    p.write_help = _catalog_help
    p.add_argument("--provider", choices=providers, default=None, help=provider_help)
    p.add_argument("--base-url", default=None, help=base_url_help)
    p.add_argument("--out", default="output.mp4", help="where the output video is written")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--yes", action="store_true", help="spend without asking (paid providers)")
    p.add_argument("--timeout", type=_number(float, above=0), default=900.0,
                   help="seconds to wait for the task to finish")

    p = _sub(sub, "score", "score an output against its source")
    p.add_argument("source", help="the source clip")
    p.add_argument("output", help="the output clip")
    _sampling_flags(p)
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: all)")
    p.add_argument("--prompt", default=None, help="the prompt the output was made from (for metrics that read it)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")

    p = _sub(sub, "emulator", "serve the built-in endpoint")
    _emulator_flags(p)

    p = _sub(sub, "runs", "a table of an experiment's runs (no experiment: list the experiments)")
    p.add_argument("experiment", nargs="?", help="experiment name")
    p.add_argument("--sort", default=None, metavar="METRIC",
                   help="sort by this metric, best first (its declared direction); runs without it last")
    p.add_argument("--metrics", default=None, metavar="A,B",
                   help="comma-separated metric columns, rescored ones such as structure.size128.frames16 "
                        "included (default: the headline metrics some run has)")
    _tracking_uri_flag(p)

    p = _sub(sub, "rescore", "score an experiment's kept outputs again, into the same runs (Dask; never a create)")
    p.add_argument("experiment", help="experiment name")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: all)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_number(int, low=1, high=512), default=None,
                       help="local Dask worker processes (default: one per core)")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="a running Dask scheduler to use instead of a local cluster")
    _sampling_flags(p)
    _tracking_uri_flag(p)

    p = _sub(sub, "power", "how many seeds (pairs) a comparison needs, and their cost, from a pilot study")
    p.add_argument("experiment", help="the pilot study's experiment name")
    p.add_argument("--by", default="model", help="what is compared: a design column or a model option (model, "
                   "prompt, seed, ratio, reference, video, duration...)")
    p.add_argument("--metric", default="ssim_source", help="the metric the comparison reads (its declared direction)")
    p.add_argument("--delta", type=_number(float, above=0), required=True,
                   help="the smallest difference worth detecting, in the metric's units (required)")
    p.add_argument("--power", type=_number(float, above=0, high=0.999), default=0.8,
                   help="the chance of detecting a difference of delta")
    p.add_argument("--alpha", type=_number(float, above=0, high=0.5), default=0.05,
                   help="the two-sided test's level (false alarms)")
    p.add_argument("--baseline", default=None, help="the group the others are compared with (default: the first)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: {comparisons: [{group, baseline, sd, pairs_needed, credits, dollars, ...}]}")
    _tracking_uri_flag(p)

    p = _sub(sub, "ui", "MLflow UI on the configured store")
    p.add_argument("--port", type=_number(int, low=1, high=65535), default=5000, help="TCP port")
    p.add_argument("--host", default="127.0.0.1", help="bind address")
    _tracking_uri_flag(p)
    return parser


def _catalog_help(parser: argparse.ArgumentParser) -> None:
    """generate's help of the flags whose values the model catalog lists."""
    from .api.catalog import load_catalog, option_names, seed_range

    catalog = load_catalog()
    helps = {
        "model": f"a model of the catalog: {', '.join(catalog)}",
        "seed": "{} to {} (default: the endpoint picks one)".format(*seed_range()),
        "ratio": "output ratio W:H, one the model takes (another is refused with the model's list; gen4_aleph: "
                 f"{', '.join(_ratios(catalog['gen4_aleph']))}) (default: the model's)",
        "option": "one of the model's own fields, as the README's table of models lists them "
                  f"(repeatable): {', '.join(option_names())}; e.g. --option duration=5",
    }
    for action in parser._actions:
        if action.dest in helps:
            action.help = helps[action.dest]


def _ratios(model: Any) -> list[str]:
    ratio = model.fields.get("ratio")
    return [str(r) for r in (ratio.enum or [])] if ratio is not None else []
