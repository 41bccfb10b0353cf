"""The validity table: every registered metric (plugins included) on every controlled edit of the
shipped clips. Prints it, and with --write puts it in docs/metrics.md (between the markers) and
draws docs/validity.png.

    python bench/validity.py --write
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from v2v_lab.metrics import REGISTRY  # noqa: E402
from v2v_lab.validity import EDITS, SHIPPED_CLIPS, validity_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "metrics.md"
PLOT = ROOT / "docs" / "validity.png"
BEGIN, END = "<!-- validity-table:begin -->", "<!-- validity-table:end -->"
COLOURS = {"identity": "#777777", "appearance": "#2a9d8f", "structural": "#e76f51", "temporal": "#6a4c93"}


def fmt(v: float) -> str:
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.4f}" if abs(v) < 0.05 else f"{v:.3f}"  # warp_error lives in the thousandths


def markdown(table: pd.DataFrame, metrics: list[str]) -> str:
    clips = list(dict.fromkeys(table["clip"]))
    head = "| edit | family | " + " | ".join(f" {m} " for m in metrics) + " |"
    lines = [f"Each cell: {' / '.join(clips)}. "
             + "; ".join(f"{m}: {REGISTRY[m].describe()}" for m in metrics) + ".", "", head,
             "|" + "---|" * (len(metrics) + 2)]
    for edit in EDITS:
        rows = table[table["edit"] == edit.name].set_index("clip")
        cells = [" / ".join(fmt(rows.loc[c, m]) for c in clips) for m in metrics]
        lines.append(f"| {edit.name} | {edit.family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(table: pd.DataFrame, metrics: list[str], path: Path) -> None:
    cols = 4
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    names = [e.name for e in EDITS]
    colours = [COLOURS[e.family] for e in EDITS]
    clips = list(dict.fromkeys(table["clip"]))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for j, (clip, marker) in enumerate(zip(clips, ("o", "s", "^", "D"), strict=False)):
            values = table[table["clip"] == clip].set_index("edit").loc[names, metric].to_numpy()
            ax.scatter(values, [i + (j - 0.5) * 0.25 for i in range(len(names))], c=colours, marker=marker, s=22,
                       label=clip)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{metric} ({REGISTRY[metric].best_text()})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in COLOURS.items()]
    handles += [plt.Line2D([], [], marker=m, ls="", color="black", label=c) for c, m in zip(clips, ("o", "s"), strict=False)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle("Validity table: each metric on each controlled edit (colour: family; marker: clip)", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="update docs/metrics.md and docs/validity.png")
    args = ap.parse_args()
    metrics = list(REGISTRY)
    t0 = time.perf_counter()
    table = validity_table(SHIPPED_CLIPS, metrics)
    took = time.perf_counter() - t0
    text = markdown(table, metrics)
    print(text)
    print(f"\n{len(EDITS)} edits x {len(SHIPPED_CLIPS)} clips x {len(metrics)} metrics in {took:.1f}s")
    if args.write:
        doc = DOC.read_text()
        start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])
        plot(table, metrics, PLOT)
        print(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
