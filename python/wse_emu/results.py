"""wse-emu output folders as Python objects with pandas DataFrames.

`load(dir)` recognises a folder by the files in it:

| class     | written by                      | recognised by                                       |
|-----------|---------------------------------|-----------------------------------------------------|
| `Run`     | `wse-emu run ... --out DIR`     | `summary.json`                                      |
| `Sweep`   | `wse-emu sweep ... --out DIR`   | `results.csv` (or a `points/` folder)               |
| `Plan`    | `wse-emu plan ... --out DIR`    | `plan.csv`                                          |
| `Regress` | `wse-emu regress --out DIR`     | `NAME/summary.json` beside `NAME.stdout.txt`        |
"""
from __future__ import annotations

import csv
import json
import math
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from .units import parse_quantities


class WseEmuError(Exception):
    """A folder, file or run that is not what wse-emu writes (the message names it)."""


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise WseEmuError(f"'{path}': no such file; {what}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise WseEmuError(f"'{path}': not JSON ({e}); {what}") from None


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested objects to dotted keys, as results.csv and `wse-emu run`'s table name them."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# Each run of digits that ends a name component's word ("adapter12", "cs3_1") becomes
# '*': the resource class of summary.json's utilization_by_class (systemc_models/stats).
_INDEX = re.compile(r"(?<=[^.\d])\d+(?=\.|$)")


def resource_class(path: str) -> str:
    """The class of a resource path: 'efa.sender0.adapter3.tx' -> 'efa.sender*.adapter*.tx'."""
    return _INDEX.sub("*", path)


class Run:
    """The folder of one `wse-emu run`: summary.json, stats.json, requests.csv, ..."""

    kind = "run"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.summary_json: dict = _read_json(
            self.path / "summary.json", f"is '{self.path}' the --out folder of 'wse-emu run'?")
        if not isinstance(self.summary_json, dict) or "experiment" not in self.summary_json:
            raise WseEmuError(f"'{self.path / 'summary.json'}': not a wse-emu summary (no 'experiment' key)")

    def __repr__(self) -> str:
        return f"Run('{self.path}': experiment {self.experiment}, mode {self.mode})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def experiment(self) -> str:
        return self.summary_json["experiment"]

    @property
    def mode(self) -> str:
        return self.summary_json.get("mode", "")

    def figure(self, key: str, default: Any = None) -> Any:
        """One figure of summary.json by its dotted path, e.g. 'requests.tpot_s.p99'."""
        at: Any = self.summary_json
        for part in key.split("."):
            if not isinstance(at, dict) or part not in at:
                return default
            at = at[part]
        return at

    @cached_property
    def summary(self) -> pd.DataFrame:
        """summary.json flattened: one row per figure (index 'figure'), column 'value'."""
        flat = flatten(self.summary_json)
        return pd.DataFrame({"value": pd.Series(flat, dtype=object)}).rename_axis("figure")

    @cached_property
    def requests(self) -> pd.DataFrame:
        """requests.csv, one row per request. For a serving run, ttft_s, tpot_s and e2e_s
        are added from the milestones (as summary.json computes them: TPOT over the
        tokens after the first, so a one-token request has none)."""
        path = self.path / "requests.csv"
        if not path.is_file():
            raise WseEmuError(f"'{path}': no such file; mode '{self.mode}' writes no requests.csv")
        df = pd.read_csv(path)
        if {"arrival_s", "first_token_s", "last_token_s", "tokens_out"} <= set(df.columns):
            if "ttft_s" not in df:
                df["ttft_s"] = df["first_token_s"] - df["arrival_s"]
            if "e2e_s" not in df:
                df["e2e_s"] = df["last_token_s"] - df["arrival_s"]
            if "tpot_s" not in df:
                later = df["tokens_out"] - 1
                df["tpot_s"] = ((df["last_token_s"] - df["first_token_s"]) / later).where(later > 0)
        return df

    @cached_property
    def utilization(self) -> pd.DataFrame:
        """One row per resource, busiest first: resource, class, utilization (busy share
        of the simulated time, 0..1), busy_s (from stats.json where it records it)."""
        util = self.summary_json.get("utilization", {})
        stats = self._stats_leaves
        rows = [{"resource": k, "class": resource_class(k), "utilization": v,
                 "busy_s": stats.get(k, {}).get("busy_s", math.nan)} for k, v in util.items()]
        df = pd.DataFrame(rows, columns=["resource", "class", "utilization", "busy_s"])
        return df.sort_values(["utilization", "resource"], ascending=[False, True], ignore_index=True)

    @cached_property
    def utilization_by_class(self) -> pd.DataFrame:
        """summary.json's utilization_by_class: class, max, mean, count, busiest; busiest first."""
        by = self.summary_json.get("utilization_by_class", {})
        df = pd.DataFrame([{"class": k, **v} for k, v in by.items()],
                          columns=["class", "max", "mean", "count", "busiest"])
        return df.sort_values(["max", "class"], ascending=[False, True], ignore_index=True)

    @cached_property
    def _stats_leaves(self) -> dict[str, dict]:
        path = self.path / "stats.json"
        if not path.is_file():
            return {}
        out: dict[str, dict] = {}

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, dict) and "unit" in node:
                out[prefix] = node
            elif isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{prefix}.{k}" if prefix else k)

        walk(_read_json(path, "rerun 'wse-emu run' into its folder"), "")
        return out

    @cached_property
    def stats(self) -> pd.DataFrame:
        """stats.json, one row per statistic (index 'stat', its module path): value, unit,
        description, and for distributions count, mean, min, p50, p90, p99, max; busy_s
        for utilizations."""
        if not (self.path / "stats.json").is_file():
            raise WseEmuError(f"'{self.path / 'stats.json'}': no such file; rerun 'wse-emu run' into its folder")
        leaves = self._stats_leaves
        present = {k for leaf in leaves.values() for k in leaf}
        first = ["value", "unit", "description", "count", "mean", "min", "p50", "p90", "p99", "max", "busy_s"]
        columns = [c for c in first if c in present or c in first[:3]] + sorted(present - set(first))
        return pd.DataFrame.from_dict(leaves, orient="index", columns=columns).rename_axis("stat")

    @cached_property
    def host(self) -> dict:
        """host.json (wall time, CPU time, peak memory: the host's, not reproducible); {} if absent."""
        path = self.path / "host.json"
        return _read_json(path, "") if path.is_file() else {}

    @property
    def trace_path(self) -> Path | None:
        """trace.json (written with --trace), or None."""
        path = self.path / "trace.json"
        return path if path.is_file() else None

    def trace_utilization(self, bins: int = 200) -> pd.DataFrame:
        """Busy share of each trace track per time bin, from trace.json's complete ('X')
        slices: index time_s (bin middles), one column per track, named 'process: track'
        as the trace names them ('cs3_0: io_edge'). Needs a run made with --trace."""
        path = self.trace_path
        if path is None:
            raise WseEmuError(f"'{self.path / 'trace.json'}': no such file; rerun with --trace "
                              "(wse_emu.run(..., trace=True))")
        doc = _read_json(path, "rerun with --trace")
        events = doc["traceEvents"] if isinstance(doc, dict) else doc
        meta = [e for e in events if e.get("ph") == "M"]
        process = {e.get("pid"): e["args"]["name"] for e in meta if e.get("name") == "process_name"}
        names = {(e.get("pid"), e.get("tid")): f"{process[e.get('pid')]}: {e['args']['name']}"
                 if e.get("pid") in process else e["args"]["name"]
                 for e in meta if e.get("name") == "thread_name"}
        slices: dict[tuple, list[tuple[float, float]]] = {}
        end_us = self.summary_json.get("simulated_time_s", 0) * 1e6
        for e in events:
            if e.get("ph") == "X":
                ts, dur = float(e["ts"]), float(e.get("dur", 0))
                slices.setdefault((e.get("pid"), e.get("tid")), []).append((ts, dur))
                end_us = max(end_us, ts + dur)
        if not slices or end_us <= 0:
            raise WseEmuError(f"'{path}': no complete ('X') slices to measure")
        width = end_us / bins
        busy = {}
        for key, track in slices.items():
            b = [0.0] * bins
            for ts, dur in track:  # spread each slice over the bins it covers
                t, stop = ts, ts + dur
                while t < stop:
                    i = min(bins - 1, int(t / width))
                    edge = min(stop, (i + 1) * width)
                    if edge <= t:  # the last bin at a float edge: take the rest
                        b[i] += stop - t
                        break
                    b[i] += edge - t
                    t = edge
            label = names.get(key, f"{key[0]}/{key[1]}")
            if label in busy:  # two tracks of one name stay apart
                label = f"{label} ({key[0]}/{key[1]})"
            busy[label] = [min(1.0, x / width) for x in b]
        index = pd.Index([(i + 0.5) * width * 1e-6 for i in range(bins)], name="time_s")
        return pd.DataFrame(busy, index=index)


class Sweep:
    """The folder of one `wse-emu sweep`: results.csv, host.csv, points/<id>/. `path` is
    the folder, or a results file in it (a copy of results.csv under another name)."""

    kind = "sweep"

    def __init__(self, path: str | Path):
        given = Path(path)
        self.path = given.parent if given.is_file() else given
        file = given if given.is_file() else given / "results.csv"
        self.results_file = file
        if not file.is_file():
            raise WseEmuError(
                f"'{file}': no such file; the sweep in '{self.path}' has not finished (results.csv is "
                "written last): run the same sweep into the folder again to complete it")
        with open(file, newline="") as f:
            header = next(csv.reader(f), [])
        if "status" not in header or header[:1] != ["point"]:
            raise WseEmuError(f"{file}: not a wse-emu sweep results.csv (no point and status columns)")
        self.varied: list[str] = header[1:header.index("status")]
        text = {c: str for c in ["point", *self.varied, "status", "error"]}
        #: the varied values as written in the sweep file ("400 Gb/s"), one row per point
        self.written: pd.DataFrame = pd.read_csv(file, dtype=str, keep_default_na=False,
                                                 usecols=["point", *self.varied])
        results = pd.read_csv(file, dtype=text, keep_default_na=False, na_values={
            c: [""] for c in header if c not in text})
        #: the unit of each varied column in results ('' for plain numbers, None for text)
        self.units: dict[str, str | None] = {}
        for key in self.varied:
            values, unit = parse_quantities(list(self.written[key]))
            self.units[key] = unit
            if values is not None:
                results[key] = values
        self.results: pd.DataFrame = results

    def __repr__(self) -> str:
        return (f"Sweep('{self.path}': {len(self.results)} points, {int((self.results['status'] == 'ok').sum())} ok; "
                f"varied {', '.join(self.varied)})")

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def host(self) -> pd.DataFrame | None:
        """host.csv (wall time, CPU time, peak memory per point: the host's), or None."""
        file = self.path / "host.csv"
        if not file.is_file():
            return None
        return pd.read_csv(file, dtype={c: str for c in ["point", *self.varied]}, keep_default_na=False,
                           na_values={c: [""] for c in ["wall_time_s", "cpu_time_s", "peak_rss_bytes"]})

    def point(self, point: str) -> Run:
        """The run folder of one point, by its id ('000')."""
        return Run(self.path / "points" / point)

    def runs(self) -> list[Run]:
        """The run folders of the points whose status is ok, in point order."""
        return [self.point(p) for p in self.results.loc[self.results["status"] == "ok", "point"]]


class Plan:
    """The folder of a `wse-emu plan` (fleet sizing): plan.csv (every deployment run) as
    `table`, frontier.csv (per workload, rate and decode pool size: the fewest prefill
    machines, and the best deployment by the objective) as `frontier`."""

    kind = "plan"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        file = self.path / "plan.csv"
        if not file.is_file():
            raise WseEmuError(f"'{file}': no such file; is '{self.path}' the --out folder of 'wse-emu plan'?")
        self.table: pd.DataFrame = pd.read_csv(file)
        front = self.path / "frontier.csv"
        self.frontier: pd.DataFrame = pd.read_csv(front) if front.is_file() else pd.DataFrame()

    def best(self) -> pd.DataFrame:
        """One row per workload and rate: the deployment the plan chose."""
        if self.frontier.empty:
            return self.frontier
        return self.frontier[self.frontier["best"] == 1].reset_index(drop=True)

    def __repr__(self) -> str:
        return f"Plan('{self.path}': {len(self.table)} rows)"


class Regress:
    """The folder of `wse-emu regress --out DIR`: a run folder per experiment of the suite
    (NAME/) beside what its run printed (NAME.stdout.txt, NAME.stderr.txt)."""

    kind = "regress"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        names = _regress_names(self.path)
        if not names:
            raise WseEmuError(f"'{self.path}': no NAME.stdout.txt beside a NAME folder; is it the --out "
                              "folder of 'wse-emu regress'?")
        #: experiments whose run wrote a summary, by suite name
        self.runs: dict[str, Run] = {n: Run(self.path / n) for n in names
                                     if (self.path / n / "summary.json").is_file()}
        #: experiments whose run failed (no summary.json), with the last line of their stderr
        self.failed: dict[str, str] = {}
        for n in names:
            if n not in self.runs:
                err = (self.path / f"{n}.stderr.txt")
                lines = err.read_text().strip().splitlines() if err.is_file() else []
                self.failed[n] = lines[-1] if lines else ""

    def __repr__(self) -> str:
        return f"Regress('{self.path}': {len(self.runs)} runs, {len(self.failed)} failed)"

    def check(self, references: str | Path | None = None) -> pd.DataFrame:
        """Every numeric figure of every run against its reference, as `wse-emu regress`
        judges it: one row per (experiment, figure) with reference, now, change (now /
        reference - 1), tolerance_relative, tolerance_absolute and within (|now - reference|
        <= max(absolute, relative x |reference|)). A figure only in the run has no
        reference and within NaN; one only in the reference has no now and within False.
        references: the folder of NAME.json (default: tests/regression/references of the
        checkout this package is in)."""
        folder = Path(references) if references is not None else _repo_root() / "tests/regression/references"
        rows = []
        for name, run in self.runs.items():
            ref = _read_json(folder / f"{name}.json", "give the suite's references folder (references=...)")
            figures = ref.get("figures", {})
            now = {k: float(v) for k, v in flatten(run.summary_json).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("seed", "wall_time_s")}
            for key in list(now) + [k for k in figures if k not in now]:
                f = figures.get(key)
                tol = (f or {}).get("tolerance", {})
                rel, ab = tol.get("relative", 1e-6), tol.get("absolute", 0.0)
                r = float(f["value"]) if f else math.nan
                n = now.get(key, math.nan)
                if f is None:
                    within: Any = math.nan
                elif key not in now:
                    within = False
                else:
                    within = abs(n - r) <= max(ab, rel * abs(r))
                change = n / r - 1 if f and key in now and r != 0 else math.nan
                rows.append({"experiment": name, "figure": key, "reference": r, "now": n, "change": change,
                             "tolerance_relative": rel, "tolerance_absolute": ab, "within": within})
        return pd.DataFrame(rows, columns=["experiment", "figure", "reference", "now", "change",
                                           "tolerance_relative", "tolerance_absolute", "within"])


def _regress_names(path: Path) -> list[str]:
    return sorted(p.name[: -len(".stdout.txt")] for p in path.glob("*.stdout.txt")
                  if (path / p.name[: -len(".stdout.txt")]).is_dir())


def _repo_root() -> Path:
    """The checkout this package lives in (python/wse_emu/ is two levels down)."""
    return Path(__file__).resolve().parent.parent.parent


def load(path: str | Path) -> Run | Sweep | Plan | Regress:
    """The output folder at `path` as a Run, Sweep, Plan or Regress, by the files in it."""
    p = Path(path)
    if not p.is_dir():
        raise WseEmuError(f"'{p}': no such folder" if not p.exists() else f"'{p}': not a folder")
    if (p / "summary.json").is_file():
        return Run(p)
    if (p / "results.csv").is_file() or (p / "points").is_dir():
        return Sweep(p)
    if (p / "plan.csv").is_file():
        return Plan(p)
    if _regress_names(p):
        return Regress(p)
    raise WseEmuError(
        f"'{p}': not a wse-emu output folder: it holds no summary.json (wse-emu run), results.csv "
        "(wse-emu sweep), plan.csv (wse-emu plan) or NAME/ with NAME.stdout.txt (wse-emu regress --out)")
