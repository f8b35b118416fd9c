#!/usr/bin/python3
"""Plot of a comparison of runs (the compare.csv of `wse-emu compare ... --out DIR`).

    scripts/plot_compare.py DIR [--out FILE]

writes FILE (default DIR/compare.png): one panel per headline figure present in
compare.csv (TTFT and TPOT p50/p99, output tokens/s, goodput, tokens per joule, dollars per
million output tokens and per million tokens), a bar per run, each labelled with its ratio
to the baseline run. Figures no run reports are left out. Needs python3-matplotlib
(Debian); Agg backend, no display.
"""
import argparse
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (figure in compare.csv, panel title, scale to the shown unit)
PANELS = [
    ("ttft_p50_s", "TTFT p50 (ms)", 1e3),
    ("ttft_p99_s", "TTFT p99 (ms)", 1e3),
    ("tpot_p50_s", "TPOT p50 (ms)", 1e3),
    ("tpot_p99_s", "TPOT p99 (ms)", 1e3),
    ("output_tokens_per_s", "output tokens/s", 1.0),
    ("goodput_fraction", "goodput (share of requests)", 1.0),
    ("tokens_per_joule_output", "output tokens per joule", 1.0),
    ("usd_per_million_output_tokens", "$ per million output tokens", 1.0),
    ("usd_per_million_tokens", "$ per million tokens", 1.0),
]


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][0] != "figure":
        sys.exit(f"plot_compare.py: {path}: not a compare.csv (first cell is not 'figure'); "
                 "write it with 'wse-emu compare RUN_DIR... --out DIR'")
    header = rows[0]
    runs = header[1::2]
    table = {}
    for r in rows[1:]:
        table[r[0]] = (r[1::2], r[2::2])
    return runs, table


def number(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="folder holding compare.csv")
    ap.add_argument("--out", help="PNG to write (default DIR/compare.png)")
    a = ap.parse_args()
    runs, table = read(os.path.join(a.dir, "compare.csv"))
    panels = []
    for key, title, scale in PANELS:
        if key not in table:
            continue
        values, ratios = table[key]
        nums = [number(v) for v in values]
        if all(v is None for v in nums):
            continue
        panels.append((title, [0.0 if v is None else v * scale for v in nums], ratios))
    if not panels:
        sys.exit("plot_compare.py: no numeric headline figure in compare.csv")
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, vals, ratios) in zip(axes.flat, panels):
        bars = ax.bar(range(len(runs)), vals, color="tab:blue")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels(runs, rotation=30, ha="right", fontsize=7)
        for b, r in zip(bars, ratios):
            if r != "-":
                ax.annotate("x" + r, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom", fontsize=7)
        ax.margins(y=0.15)
    fig.suptitle("wse-emu compare (labels: ratio to the baseline)", fontsize=10)
    fig.tight_layout()
    out = a.out or os.path.join(a.dir, "compare.png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
