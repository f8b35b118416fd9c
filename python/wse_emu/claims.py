"""The claims study (issue 15, item 5; docs/claims.md): the sweeps of
configs/studies/claims/ gathered into one table, and the tables and plots built from it.

    import wse_emu.claims as claims
    points = claims.load_study("out/claims")        # one row per run: system, trace, rate, figures
    claims.capacity_at_tpot(points, 0.005)           # output tokens/s each system serves within TPOT p99 5 ms

Every figure is read from the runs' summary.json (through each sweep's results.csv); the
only arithmetic here is selection, ratios and one interpolation (capacity_at_tpot).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from .results import Sweep, WseEmuError

#: The systems of the study, in the order the tables list them: (name, label, decode side).
SYSTEMS: list[tuple[str, str, str]] = [
    ("cs3_trn2", "trn2 prefill + 4 CS-3 decode", "CS-3"),
    ("cs3_alone", "4 CS-3 alone", "CS-3"),
    ("b200_trn2", "trn2 prefill + B200 decode", "B200"),
    ("h200_trn2", "trn2 prefill + H200 decode", "H200"),
    ("h100_trn2", "trn2 prefill + H100 decode", "H100"),
    ("trn2_trn2", "trn2 prefill + trn2 decode", "Trainium2"),
    ("b200_only", "8x B200 alone (p6-b200)", "B200"),
    ("h200_only", "8x H200 alone (p5en)", "H200"),
    ("h100_only", "8x H100 alone (p5)", "H100"),
]
LABELS = {name: label for name, label, _ in SYSTEMS}
ORDER = {name: i for i, (name, _, _) in enumerate(SYSTEMS)}

#: results.csv columns kept, and their short names in the study's table.
FIGURES: dict[str, str] = {
    "requests.completed": "completed",
    "requests.tpot_s.p50": "tpot_p50_s",
    "requests.tpot_s.p99": "tpot_p99_s",
    "requests.ttft_s.p50": "ttft_p50_s",
    "requests.ttft_s.p99": "ttft_p99_s",
    "throughput.output_tokens_per_s": "output_tokens_per_s",
    "throughput.requests_per_s": "requests_per_s",
    "goodput.fraction": "goodput",
    "energy.tokens_per_joule.output": "tokens_per_joule_output",
    "energy.tokens_per_joule.all": "tokens_per_joule_all",
    "energy.mean_power_w": "mean_power_w",
    "cost.usd_per_million_output_tokens": "usd_per_m_output",
    "cost.usd_per_million_tokens": "usd_per_m_all",
    "cost.fleet_usd_per_hour": "fleet_usd_per_hour",
    "simulated_time_s": "simulated_s",
}

TRACES = {"azure2023_conv": "conversation", "azure2023_code": "code"}


def trace_name(path: str) -> str:
    """'workloads/data/traces/azure2023_code.csv' -> 'code'; any other path as its stem."""
    stem = Path(str(path)).stem
    return TRACES.get(stem, stem)


def sweep_table(sweep: Sweep, system: str) -> pd.DataFrame:
    """One sweep's ok points as rows: system, trace (from workload.trace.path), rate
    (workload.trace.rate_scale), output_mean (workload.trace.output_tokens.mean, for the
    mix sweeps; NaN where not varied), prefill_instances (serving.prefill_instances), then FIGURES by short name."""
    r = sweep.results
    bad = r[r["status"] != "ok"]
    if len(bad):
        raise WseEmuError(f"{sweep.path}: points not ok: " + ", ".join(
            f"{p} ({s}: {e})" for p, s, e in zip(bad["point"], bad["status"], bad["error"])))
    out = pd.DataFrame({"system": system, "point": r["point"]})
    out["trace"] = [trace_name(p) for p in r["workload.trace.path"]] if "workload.trace.path" in r else "conversation"
    # not varied (a mix or pool sweep sets it in its set: section): NaN, the sweep file says it
    out["rate"] = r["workload.trace.rate_scale"].astype(float) if "workload.trace.rate_scale" in r else math.nan
    out["output_mean"] = r["workload.trace.output_tokens.mean"].astype(float) \
        if "workload.trace.output_tokens.mean" in r else math.nan
    if "workload.trace.output_tokens.mean" in r:
        out["trace"] = "mix"
    out["prefill_instances"] = r["serving.prefill_instances"].astype(float) if "serving.prefill_instances" in r else 1.0
    for col, short in FIGURES.items():
        out[short] = pd.to_numeric(r[col], errors="coerce") if col in r else math.nan
    return out


def load_study(out: str | Path, kinds: Sequence[str] = ("rates", "mix", "pool")) -> pd.DataFrame:
    """Every sweep folder OUT/<kind>_<system> of the study as one table (sweep_table's
    rows), systems in SYSTEMS order. A folder of a system the study does not know is an error."""
    out = Path(out)
    frames = []
    for d in sorted(out.iterdir()):
        kind, _, system = d.name.partition("_")
        if not d.is_dir() or kind not in kinds:
            continue
        if system not in LABELS:
            raise WseEmuError(f"{d}: system '{system}' is not one of the study's ({', '.join(LABELS)})")
        t = sweep_table(Sweep(d), system)
        t.insert(1, "kind", kind)
        frames.append(t)
    if not frames:
        raise WseEmuError(f"{out}: no sweep folders of the claims study (rates_*, mix_*) in it")
    t = pd.concat(frames, ignore_index=True)
    t["tokens_per_s_per_user"] = 1.0 / t["tpot_p50_s"]
    t["prompt_per_output"] = t["tokens_per_joule_all"] / t["tokens_per_joule_output"] - 1.0
    return t.sort_values(["kind", "system", "trace", "rate", "output_mean"],
                         key=lambda c: c.map(ORDER) if c.name == "system" else c, kind="stable",
                         ignore_index=True)


def capacity_at_tpot(points: pd.DataFrame, target_s: float, stat: str = "tpot_p99_s") -> pd.DataFrame:
    """Per (system, trace): the output tokens/s served with `stat` (TPOT p99 by default)
    within `target_s`. The points are taken in order of throughput; the capacity is the
    highest throughput among the points that meet the target. Where the next point (higher
    throughput) misses it, the capacity is interpolated linearly in TPOT between the two, to
    where TPOT reaches the target ('interpolated'). When the highest-throughput point still
    meets it, the capacity is that point's and only a lower bound ('at least': the study's
    highest rate). No point meets it: capacity 0 ('none')."""
    rows = []
    for (system, trace), g in points.groupby(["system", "trace"], sort=False):
        g = g.sort_values("output_tokens_per_s", kind="stable")
        tp, tpot = list(g["output_tokens_per_s"]), list(g[stat])
        meet = [i for i, v in enumerate(tpot) if v <= target_s]
        if not meet:
            cap, how = 0.0, "none"
        else:
            i = max(meet)
            if i == len(tp) - 1:
                cap, how = tp[i], "at least"
            else:
                j = i + 1
                f = (target_s - tpot[i]) / (tpot[j] - tpot[i]) if tpot[j] != tpot[i] else 0.0
                cap, how = tp[i] + f * (tp[j] - tp[i]), "interpolated"
        rows.append({"system": system, "trace": trace, "target_s": target_s, "capacity_tokens_per_s": cap,
                     "how": how})
    return pd.DataFrame(rows)


def ratio(a: float, b: float) -> float:
    """a / b, NaN where it cannot be taken."""
    try:
        return a / b if b and not (math.isnan(a) or math.isnan(b)) else math.nan
    except TypeError:
        return math.nan


def fmt(v, digits: int = 3) -> str:
    """A number for a markdown table: '-' for missing, thousands separators for large
    values, `digits` significant digits otherwise."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if v == 0:
        return "0"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}g}"


def markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a GitHub markdown table (index left out), numbers through fmt."""
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def pick(points: pd.DataFrame, kind: str, systems: Iterable[str] | None = None) -> pd.DataFrame:
    t = points[points["kind"] == kind]
    if systems is not None:
        t = t[t["system"].isin(list(systems))]
    return t


def speed_table(points: pd.DataFrame, trace: str, reference: str = "cs3_trn2") -> pd.DataFrame:
    """Decode speed per user and throughput, per system and rate on one trace: TPOT p50 and
    p99 (ms), tokens/s per user (1 / TPOT p50), output tokens/s, and how many times faster
    the reference system's decode is per user (its TPOT p50 over... the system's TPOT p50
    divided by the reference's)."""
    t = pick(points, "rates")
    t = t[t["trace"] == trace]
    ref = t[t["system"] == reference].set_index("rate")["tpot_p50_s"]
    rows = []
    for _, r in t.iterrows():
        rows.append({"system": LABELS[r["system"]], "rate x": r["rate"],
                     "TPOT p50 ms": r["tpot_p50_s"] * 1e3, "TPOT p99 ms": r["tpot_p99_s"] * 1e3,
                     "tokens/s per user": r["tokens_per_s_per_user"],
                     "output tokens/s": r["output_tokens_per_s"],
                     "TTFT p99 s": r["ttft_p99_s"],
                     f"{reference} faster x": ratio(r["tpot_p50_s"], ref.get(r["rate"], math.nan))})
    return pd.DataFrame(rows)


def efficiency_table(points: pd.DataFrame, trace: str, reference: str = "h100_only") -> pd.DataFrame:
    """Tokens per joule and dollars per million tokens, per system and rate on one trace,
    with the ratio of each system's output tokens per joule to the reference's."""
    t = pick(points, "rates")
    t = t[t["trace"] == trace]
    ref = t[t["system"] == reference].set_index("rate")["tokens_per_joule_output"]
    rows = []
    for _, r in t.iterrows():
        rows.append({"system": LABELS[r["system"]], "rate x": r["rate"],
                     "output tokens/J": r["tokens_per_joule_output"], "all tokens/J": r["tokens_per_joule_all"],
                     f"tokens/J vs {reference}": ratio(r["tokens_per_joule_output"], ref.get(r["rate"], math.nan)),
                     "$/M output tokens": r["usd_per_m_output"], "$/M tokens": r["usd_per_m_all"],
                     "mean kW": r["mean_power_w"] / 1e3, "$/h": r["fleet_usd_per_hour"]})
    return pd.DataFrame(rows)


def capacity_table(points: pd.DataFrame, targets_s: Sequence[float], trace: str,
                   systems: Sequence[str], reference: str = "cs3_alone") -> pd.DataFrame:
    """Output tokens/s within each TPOT p99 target (capacity_at_tpot) for `systems` on one
    trace: a row per system, a column per target, each cell the capacity and its ratio to
    the reference system's ('4,034+ (3.82x)'; '+' where it is a lower bound, the study's
    highest rate still meeting the target; '0' where no rate meets it)."""
    t = pick(points, "rates", systems)
    t = t[t["trace"] == trace]
    caps = {target: capacity_at_tpot(t, target).set_index("system") for target in targets_s}
    rows = []
    for s in systems:
        row = {"system": LABELS[s]}
        for target, cap in caps.items():
            col = f"TPOT p99 <= {fmt(target * 1e3)} ms"
            if s not in cap.index:
                row[col] = math.nan
                continue
            c = cap.loc[s]
            base = cap["capacity_tokens_per_s"].get(reference, math.nan)
            r = ratio(c["capacity_tokens_per_s"], base)
            text = fmt(c["capacity_tokens_per_s"]) + ("+" if c["how"] == "at least" else "")
            if c["how"] != "none" and not math.isnan(r):
                text += f" ({r:.2f}x)"
            row[col] = text
        rows.append(row)
    return pd.DataFrame(rows)


def mix_table(points: pd.DataFrame, reference: str = "h100_only") -> pd.DataFrame:
    """The prefill-to-decode mixes (synthetic traces offered at once): per mix and system,
    prompt tokens per output token, output tokens/s, TPOT p50, tokens per joule and $ per
    million output tokens, with the ratios to the reference system at the same mix."""
    t = pick(points, "mix")
    rows = []
    for mean, g in t.groupby("output_mean", sort=True):
        ref = g[g["system"] == reference]
        rtp = ref["output_tokens_per_s"].iloc[0] if len(ref) else math.nan
        rtpot = ref["tpot_p50_s"].iloc[0] if len(ref) else math.nan
        rtpj = ref["tokens_per_joule_output"].iloc[0] if len(ref) else math.nan
        rusd = ref["usd_per_m_output"].iloc[0] if len(ref) else math.nan
        for _, r in g.iterrows():
            rows.append({"output mean": mean, "prompt/output tokens": r["prompt_per_output"],
                         "system": LABELS[r["system"]],
                         "output tokens/s": r["output_tokens_per_s"], f"x {reference}": ratio(r["output_tokens_per_s"], rtp),
                         "TPOT p50 ms": r["tpot_p50_s"] * 1e3, f"faster than {reference} x": ratio(rtpot, r["tpot_p50_s"]),
                         "output tokens/J": r["tokens_per_joule_output"],
                         f"tokens/J x {reference}": ratio(r["tokens_per_joule_output"], rtpj),
                         "$/M output": r["usd_per_m_output"], f"$ x {reference}": ratio(r["usd_per_m_output"], rusd)})
    return pd.DataFrame(rows)
