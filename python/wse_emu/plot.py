"""Plots of runs, sweeps and comparisons (matplotlib; each returns a Figure to show or save).

scripts/plot_run.py, plot_sweep.py, plot_compare.py and plot_plan.py are command-line wrappers over
these functions. Import this module in a notebook as `from wse_emu import plot`; the
scripts select the Agg backend (no display) before importing it.
"""
from __future__ import annotations

import math
import os
import re
from typing import Collection, Iterable, Iterator, Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
from matplotlib.figure import Figure

from .results import Plan, Run, Sweep, WseEmuError
from .units import parse_quantities

# Latency columns of requests.csv, in the order shown; the first group present wins.
LATENCY_GROUPS = [["ttft_s", "tpot_s", "e2e_s"], ["transfer_time_s"]]
TITLES = {"ttft_s": "time to first token (TTFT)", "tpot_s": "time per output token (TPOT)",
          "e2e_s": "end-to-end latency", "transfer_time_s": "KV-cache transfer time"}


def time_unit(values: Iterable[float]) -> tuple[float, str]:
    """(scale, unit) that shows times of this size readably: s, ms or us."""
    top = max(values, default=0)
    if top >= 1:
        return 1.0, "s"
    if top >= 1e-3:
        return 1e3, "ms"
    return 1e6, "us"


def run_title(run: Run) -> str:
    return f"experiment '{run.experiment}' ({run.mode or '?'})"


def latency_cdf(run: Run, title: str | None = None) -> Figure:
    """CDFs of the per-request latencies of requests.csv, p50/p90/p99 marked: TTFT, TPOT
    and end-to-end for a serving run, else the KV transfer time."""
    df = run.requests
    cols: list[str] = []
    for group in LATENCY_GROUPS:
        cols = [c for c in group if c in df.columns]
        if cols:
            break
    if not cols:
        raise WseEmuError(f"{run.path / 'requests.csv'} has no latency column "
                          f"({', '.join(sum(LATENCY_GROUPS, []))})")
    fig, axes = plt.subplots(1, len(cols), figsize=(5.2 * len(cols), 3.8), squeeze=False)
    for ax, c in zip(axes[0], cols):
        v = sorted(df[c].dropna().astype(float))
        if not v:
            continue
        scale, unit = time_unit(v)
        xs = [x * scale for x in v]
        ys = [(i + 1) / len(v) for i in range(len(v))]
        ax.step(xs, ys, where="post", linewidth=1.6)
        for k, (q, style) in enumerate([(0.5, ":"), (0.9, "--"), (0.99, "-.")]):
            x = xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]  # nearest rank
            ax.axvline(x, color="grey", linestyle=style, linewidth=0.8)
            ax.text(x, 0.02 + 0.08 * k, f" p{int(q * 100)} {x:.3g} {unit}", fontsize=7, color="dimgrey")
        ax.set_xlabel(f"{c} [{unit}]")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"{TITLES.get(c, c)}, {len(v)} requests", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or run_title(run), fontsize=10)
    fig.tight_layout()
    return fig


def utilization_bars(run: Run, top: int = 12, title: str | None = None) -> Figure:
    """Busy share of the `top` busiest resources of summary.json, as bars."""
    util = run.utilization
    if util.empty:
        raise WseEmuError(f"{run.path / 'summary.json'} has no utilization map: no utilization chart")
    items = util.head(top)
    fig, ax = plt.subplots(figsize=(7, 1.6 + 0.32 * len(items)))
    labels = list(items["resource"])[::-1]
    values = [v * 100 for v in items["utilization"]][::-1]
    bars = ax.barh(labels, values, color="tab:blue")
    for b, v in zip(bars, values):
        ax.text(v, b.get_y() + b.get_height() / 2, f" {v:.2g} %", va="center", fontsize=8)
    peak = max(values)
    ax.set_xlim(0, 110 if peak > 20 else peak * 1.3 + 0.01)  # a lightly loaded run still shows its bars
    ax.set_xlabel("busy time / simulated time [%]")
    ax.set_title(f"{title or run_title(run)}\nutilization per resource over "
                 f"{run.figure('simulated_time_s', 0):.4g} s simulated"
                 + (f" (busiest {len(items)} of {len(util)})" if len(util) > len(items) else ""), fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def utilization_over_time(run: Run, bins: int = 200, top: int = 12, title: str | None = None) -> Figure:
    """Busy share over simulated time of the `top` busiest trace tracks (needs --trace)."""
    busy = run.trace_utilization(bins)
    ranked = sorted(busy.columns, key=lambda c: -busy[c].sum())[:top]
    end_s = busy.index[-1] + busy.index[0]  # bins are centred: last middle + half a bin
    width_s = 2 * busy.index[0]
    scale, unit = time_unit([end_s])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for c in ranked:
        ax.plot(busy.index * scale, busy[c] * 100, linewidth=1.2, label=c)
    ax.set_xlabel(f"simulated time [{unit}]")
    ax.set_ylabel(f"busy [%] per {width_s * scale:.3g} {unit}")
    peak = busy[ranked].max().max() * 100
    ax.set_ylim(0, 105 if peak > 20 else peak * 1.2 + 0.01)  # a lightly loaded run still shows its shape
    ax.set_title(f"{title or run_title(run)}: utilization over time (from trace.json)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_scale(name: str, values: Iterable[float]) -> tuple[float, str]:
    """(scale, unit label) for a summary figure, from its name."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    top = max(finite) if finite else 0
    if name.startswith("utilization."):
        return 100.0, "%"
    if name.endswith("bytes_per_s"):
        return 1e-9, "GB/s"
    if name.endswith("_per_s") or re.search(r"_per_s\.(p\d+|max|min|mean)$", name):
        # A rate, not a time: output_tokens_per_s is tokens per second.
        what = name.rsplit(".", 1)[-1] if name.endswith("_per_s") else name.rsplit(".", 2)[-2]
        return 1.0, what[: -len("_per_s")].split("_")[-1] + "/s"
    if name.endswith("_s") or re.search(r"_s\.(p\d+|max|min|mean)$", name):
        if top >= 1 or top == 0:
            return 1.0, "s"
        if top >= 1e-3:
            return 1e3, "ms"
        return 1e6, "us"
    if name.endswith("bytes"):
        return 1e-9, "GB"
    return 1.0, ""


def plain_log_ticks(axis) -> None:
    """Log axes labelled 0.01, 3, 400 rather than 10^-2, 3x10^0, 4x10^2."""
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(  # 2 and 5 of each decade, 0.2 and 0.05 too
        lambda v, _: f"{v:g}" if f"{v:g}".lstrip("0.")[:1] in ("2", "5") else ""))


def _short(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else key


def line_styles() -> Iterator[dict]:
    """Colour first (tab20), then marker and dash, so that lines past ten stay apart."""
    cmap = plt.get_cmap("tab20")
    colours = [cmap(i) for i in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)]
    markers = ["o", "s", "^", "D", "v", "P"]
    dashes = ["-", "--", ":", "-."]
    i = 0
    while True:
        yield {"color": colours[i % len(colours)], "marker": markers[(i // len(colours)) % len(markers)],
               "linestyle": dashes[(i // (len(colours) * len(markers))) % len(dashes)]}
        i += 1


def sweep_name(results: str | os.PathLike) -> str:
    """A sweep's name: the name of the folder of its results file (not its path)."""
    folder = os.path.dirname(os.path.abspath(results))
    return os.path.basename(folder) or folder


def _sweep_names(sweeps: Sequence[Sweep]) -> list[str]:
    names = [sweep_name(s.results_file) for s in sweeps]
    if len(set(names)) < len(names):  # two folders of one name: tell them apart by path
        names = [os.path.relpath(os.path.dirname(os.path.abspath(s.results_file))) for s in sweeps]
    return names


def sweep_table(sweeps: Sequence[Sweep], x: str, y: Sequence[str], series: Sequence[str] | None = None,
                where: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """The completed points of one or more sweeps, as sweep_lines draws them: the varied
    columns as written, `y` as numbers (host.csv's columns joined in when asked for), a
    'sweep' column; and the keys that make separate lines."""
    frames, varied_all = [], []
    for s, name in zip(sweeps, _sweep_names(sweeps)):
        file = s.results_file
        for key in [x, *(series or [])]:
            if key not in s.varied:
                raise WseEmuError(f"{file}: '{key}' is not a varied parameter; varied: {', '.join(s.varied)}")
        df = s.results.copy()
        df[s.varied] = s.written[s.varied]
        if s.host is not None and any(c not in df.columns for c in y):
            host_cols = [c for c in s.host.columns if c not in df.columns]
            df = df.merge(s.host[["point", *host_cols]], on="point", how="left")
        for c in y:
            if c not in df.columns:
                raise WseEmuError(f"'{c}' is not a column of {file}")
        for w in where:
            k, _, v = w.partition("=")
            if k not in s.varied:
                raise WseEmuError(f"--where {w}: '{k}' is not a varied parameter of {file}")
            df = df[df[k] == v]
        df["sweep"] = name
        frames.append(df[df["status"] == "ok"])
        varied_all += [k for k in s.varied if k not in varied_all]
    table = pd.concat(frames, ignore_index=True)
    table[varied_all] = table[varied_all].fillna("")
    keys = list(series) if series is not None else [k for k in varied_all if k != x]
    return table, keys


def sweep_lines(sweeps: Sweep | Sequence[Sweep], x: str, y: Sequence[str], series: Sequence[str] | None = None,
                where: Sequence[str] = (), logx: bool = False, logy: Collection[str] = (),
                title: str | None = None) -> Figure:
    """Summary figures `y` (one panel each) against the varied parameter `x`, one line per
    combination of the other varied parameters (or of `series` only), after `where`
    filters ('KEY=VALUE' as written). Several sweeps are overlaid, each line's label
    starting with its sweep's folder name. Values with units ('400 Gb/s') are put in one
    unit per axis; figure units come from their names (figure_scale). Only points with
    status ok are drawn. logy: the panels drawn logarithmic."""
    sweeps = [sweeps] if isinstance(sweeps, Sweep) else list(sweeps)
    for f in logy:
        if f not in y:
            raise WseEmuError(f"--logy {f}: not one of the --y figures")
    table, keys = sweep_table(sweeps, x, y, series, where)
    if table.empty:
        raise WseEmuError("no completed points to plot")
    xs, x_unit = parse_quantities(list(table[x]))
    categorical = xs is None
    if categorical:  # values without a numeric reading: equally spaced, labelled as written
        order = list(dict.fromkeys(table[x]))
        xs = [order.index(v) for v in table[x]]
    table["__x"] = xs

    table["__label"] = [", ".join(([r["sweep"]] if len(sweeps) > 1 else []) + [f"{_short(k)}={r[k]}" for k in keys])
                        for _, r in table.iterrows()]
    groups = dict(tuple(table.groupby("__label", sort=False)))
    styles = line_styles()
    style = {label: next(styles) for label in groups}

    fig, axes = plt.subplots(len(y), 1, figsize=(7, 2.6 + 2.2 * len(y)), sharex=True, squeeze=False)
    for ax, fig_name in zip(axes[:, 0], y):
        scale, unit = figure_scale(fig_name, pd.to_numeric(table[fig_name], errors="coerce"))
        for label, pts in groups.items():
            pts = pts.sort_values("__x", kind="stable")
            v = pd.to_numeric(pts[fig_name], errors="coerce")
            ok = v.notna()
            ax.plot(pts["__x"][ok], v[ok] * scale, markersize=4, linewidth=1.5, label=label or None, **style[label])
        ax.set_ylabel(fig_name + (f" [{unit}]" if unit else ""), fontsize=9)
        if fig_name in logy:
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
        if logx and not categorical:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        ax.grid(True, which="both", alpha=0.3)
    bottom = axes[-1, 0]
    bottom.set_xlabel(x + (f" [{x_unit}]" if x_unit else ""))
    if categorical:
        bottom.set_xticks(range(len(order)), order)
    if any(groups):
        handles, labels = axes[0, 0].get_legend_handles_labels()
        unique = dict(zip(labels, handles))  # one entry per line (the panels share the lines)
        axes[0, 0].legend(unique.values(), unique.keys(), fontsize=8, title_fontsize=8)
    fig.suptitle(title or " + ".join(dict.fromkeys(_sweep_names(sweeps))), fontsize=10)
    fig.tight_layout()
    return fig


# (figure of a comparison, panel title, scale to the shown unit)
COMPARE_PANELS = [
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


def compare_bars(table: pd.DataFrame) -> Figure:
    """A panel per headline figure of a comparison (compare() or read_compare_csv()), a
    bar per run labelled with its ratio to the baseline. Figures no run reports are left out."""
    runs = list(table.columns[0::2])
    panels = []
    for key, title, scale in COMPARE_PANELS:
        if key not in table.index:
            continue
        values, ratios = list(table.loc[key].iloc[0::2]), list(table.loc[key].iloc[1::2])
        nums = [v if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]
        if all(v is None for v in nums):
            continue
        panels.append((title, [0.0 if v is None else v * scale for v in nums], ratios))
    if not panels:
        raise WseEmuError("no numeric headline figure in the comparison")
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
            if isinstance(r, float) and math.isfinite(r):
                ax.annotate(f"x{r:.3f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom", fontsize=7)
        ax.margins(y=0.15)
    fig.suptitle("wse-emu compare (labels: ratio to the baseline)", fontsize=10)
    fig.tight_layout()
    return fig


def plan_frontier(plan: Plan) -> Figure:
    """The plan's answer against the arrival rate, one line per workload: the chosen
    deployment's prefill machines per decode machine (left) and its objective (right),
    each point labelled prefill x decode."""
    best = plan.best()
    if best.empty:
        raise WseEmuError(f"'{plan.path}': no deployment in frontier.csv meets the SLOs; nothing to plot")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for style, (workload, rows) in zip(line_styles(), best.groupby("workload", sort=False)):
        rows = rows.sort_values("rate")
        fewest = rows["fewest_prefill"].astype(int)
        left.plot(rows["rate"], rows["prefill_per_decode"], label=workload, **style)
        right.plot(rows["rate"], rows["objective"], label=workload, **style)
        for x, p, d, y in zip(rows["rate"], fewest, rows["decode"], rows["prefill_per_decode"]):
            left.annotate(f"{p} x {d}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    left.set_xlabel("arrival rate")
    left.set_ylabel("prefill machines per decode machine")
    left.set_title("fewest prefill per decode that meet the SLOs")
    right.set_xlabel("arrival rate")
    right.set_ylabel("objective (lower is better)")
    right.set_title("the chosen deployment's objective")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
