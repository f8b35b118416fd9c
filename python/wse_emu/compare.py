"""Headline figures of several runs side by side, as `wse-emu compare` shows them."""
from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .results import Run, Sweep, WseEmuError, load

# (name, dotted path into summary.json): the figures of apps/wse-emu/compare_command.cpp
# (compare_figures), in its order; the last row, busiest_resource, is worked out.
COMPARE_FIGURES: list[tuple[str, str]] = [
    ("mode", "mode"),
    ("simulated_s", "simulated_time_s"),
    ("requests_completed", "requests.completed"),
    ("ttft_p50_s", "requests.ttft_s.p50"),
    ("ttft_p99_s", "requests.ttft_s.p99"),
    ("tpot_p50_s", "requests.tpot_s.p50"),
    ("tpot_p99_s", "requests.tpot_s.p99"),
    ("e2e_p50_s", "requests.e2e_s.p50"),
    ("output_tokens_per_s", "throughput.output_tokens_per_s"),
    ("goodput_fraction", "goodput.fraction"),
    ("goodput_requests_per_s", "goodput.requests_per_s"),
    ("tokens_per_joule_output", "energy.tokens_per_joule.output"),
    ("tokens_per_joule_all", "energy.tokens_per_joule.all"),
    ("usd_per_million_output_tokens", "cost.usd_per_million_output_tokens"),
    ("usd_per_million_tokens", "cost.usd_per_million_tokens"),
    ("fleet_usd_per_hour", "cost.fleet_usd_per_hour"),
]


def busiest_resource(run: Run) -> str | None:
    """The resource class with the largest mean utilization, leaving out the serving
    layer's own machine-busy classes, as 'class (xx.x%)'; None when the run has none."""
    best, best_mean = None, -1.0
    for k, v in sorted(run.summary_json.get("utilization_by_class", {}).items()):
        if k.startswith("serving.") or not isinstance(v, dict) or "mean" not in v:
            continue
        if v["mean"] > best_mean:
            best, best_mean = k, v["mean"]
    return None if best is None else f"{best} ({best_mean * 100:.1f}%)"


def _runs(items: Iterable[str | Path | Run | Sweep]) -> list[Run]:
    runs: list[Run] = []
    for item in items:
        obj = load(item) if isinstance(item, (str, Path)) else item
        if isinstance(obj, Sweep):  # a sweep stands for its points, in name order
            points = sorted(p for p in (obj.path / "points").iterdir() if p.is_dir())
            if not points:
                raise WseEmuError(f"'{obj.path / 'points'}': a sweep folder without points")
            runs += [Run(p) for p in points]
        elif isinstance(obj, Run):
            runs.append(obj)
        else:
            raise WseEmuError(f"'{obj.path}': a {obj.kind} folder; compare takes run folders or sweeps")
    return runs


def _names(runs: list[Run]) -> list[str]:
    """Each run's folder name; where two share one, as many parent folders as tell them
    apart ('a/run', 'b/run'; a sweep's points: 'sweep_a/points/002')."""
    parts = [r.path.resolve().parts for r in runs]
    levels = [1] * len(runs)
    while True:
        names = ["/".join(p[-k:]) for p, k in zip(parts, levels)]
        seen = Counter(names)
        grow = [i for i, n in enumerate(names) if seen[n] > 1 and levels[i] < len(parts[i])]
        if not grow:
            return names
        for i in grow:
            levels[i] += 1


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare(runs: Iterable[str | Path | Run | Sweep], baseline: str | Path | Run | None = None) -> pd.DataFrame:
    """The headline figures of `runs` side by side, as `wse-emu compare` writes compare.csv:
    index 'figure' (COMPARE_FIGURES, then busiest_resource); per run a column of values
    named by its folder (with parent folders when two runs share a name) and a column
    'NAME/BASELINE' of ratios to the baseline run. The baseline is the first run unless
    given; a baseline not among the runs is added as the first. A figure a run does not
    report is None; a ratio that cannot be taken is NaN."""
    rs = _runs(runs)
    if not rs:
        raise WseEmuError("compare: which run folders? give at least one")
    base = 0
    if baseline is not None:
        b = baseline if isinstance(baseline, Run) else Run(baseline)
        same = [i for i, r in enumerate(rs) if r.path.resolve() == b.path.resolve()]
        if same:
            base = same[0]
        else:
            rs.insert(0, b)
    names = _names(rs)
    rows = {}
    for fig, path in COMPARE_FIGURES:
        b = rs[base].figure(path)
        row: list[Any] = []
        for r in rs:
            v = r.figure(path)
            row += [v, v / b if _number(v) and _number(b) and b != 0 else math.nan]
        rows[fig] = row
    rows["busiest_resource"] = sum(([busiest_resource(r), math.nan] for r in rs), [])
    columns = sum(([n, f"{n}/{names[base]}"] for n in names), [])
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("figure")


def read_compare_csv(path: str | Path) -> pd.DataFrame:
    """A compare.csv written by `wse-emu compare --out DIR` (the file, or DIR), in the
    layout compare() returns: numbers as floats, '-' as None (values) or NaN (ratios)."""
    p = Path(path)
    if p.is_dir():
        p = p / "compare.csv"
    if not p.is_file():
        raise WseEmuError(f"'{p}': no such file; write it with 'wse-emu compare RUN_DIR... --out DIR'")
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0] or rows[0][0] != "figure":
        raise WseEmuError(f"'{p}': not a compare.csv (first cell is not 'figure'); write it with "
                          "'wse-emu compare RUN_DIR... --out DIR'")

    def cell(text: str, ratio: bool) -> Any:
        if text == "-":
            return math.nan if ratio else None
        try:
            return float(text)
        except ValueError:
            return text

    table = {r[0]: [cell(c, i % 2 == 1) for i, c in enumerate(r[1:])] for r in rows[1:]}
    return pd.DataFrame.from_dict(table, orient="index", columns=rows[0][1:]).rename_axis("figure")
