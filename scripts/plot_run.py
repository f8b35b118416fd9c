#!/usr/bin/python3
"""Plots of one experiment's outputs (the folder of `wse-emu run ... --out DIR`).

    scripts/plot_run.py DIR [--out PREFIX]

writes
  PREFIX_latency_cdf.png           CDFs of the per-request latencies in DIR/requests.csv:
                                   TTFT and TPOT (and end-to-end) when the run has those
                                   columns, else the KV transfer time
  PREFIX_utilization.png           busy fraction of every resource in summary.json, busiest first
  PREFIX_utilization_time.png      (only with DIR/trace.json, from `wse-emu run --trace`)
                                   busy fraction over simulated time per resource track,
                                   from the trace's complete ("X") slices
PREFIX defaults to DIR/plot. Needs python3-matplotlib (Debian); Agg backend, no display.
"""
import argparse
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Latency columns of requests.csv, in the order shown; the first group present wins.
LATENCY_GROUPS = [
    ["ttft_s", "tpot_s", "e2e_s"],
    ["transfer_time_s"],
]
TITLES = {"ttft_s": "time to first token (TTFT)", "tpot_s": "time per output token (TPOT)",
          "e2e_s": "end-to-end latency", "transfer_time_s": "KV-cache transfer time"}


def time_unit(values):
    top = max(values) if values else 0
    if top >= 1:
        return 1.0, "s"
    if top >= 1e-3:
        return 1e3, "ms"
    return 1e6, "us"


def latency_cdf(run_dir, prefix, name):
    path = os.path.join(run_dir, "requests.csv")
    if not os.path.exists(path):
        print(f"no {path}: no latency CDF", file=sys.stderr)
        return None
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    # A serving run's requests.csv gives the times of each request's milestones: derive
    # the latencies (as summary.json does) when they are not columns of their own.
    if "first_token_s" in header and "ttft_s" not in header:
        for r in rows:
            try:
                arrival, first, last = float(r["arrival_s"]), float(r["first_token_s"]), float(r["last_token_s"])
                tokens = int(r["tokens_out"])
            except (KeyError, ValueError):
                continue
            r["ttft_s"] = str(first - arrival)
            r["e2e_s"] = str(last - arrival)
            if tokens > 1:
                r["tpot_s"] = str((last - first) / (tokens - 1))
        header += ["ttft_s", "tpot_s", "e2e_s"]
    cols = []
    for group in LATENCY_GROUPS:
        cols = [c for c in group if c in header]
        if cols:
            break
    if not cols:
        print(f"{path} has no latency column ({', '.join(sum(LATENCY_GROUPS, []))})", file=sys.stderr)
        return None
    fig, axes = plt.subplots(1, len(cols), figsize=(5.2 * len(cols), 3.8), squeeze=False)
    for ax, c in zip(axes[0], cols):
        v = sorted(float(r[c]) for r in rows if r.get(c, "") != "")
        if not v:
            continue
        scale, unit = time_unit(v)
        xs = [x * scale for x in v]
        ys = [(i + 1) / len(v) for i in range(len(v))]
        ax.step(xs, ys, where="post", linewidth=1.6)
        for q, style in [(0.5, ":"), (0.9, "--"), (0.99, "-.")]:
            x = xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))]  # nearest rank
            ax.axvline(x, color="grey", linestyle=style, linewidth=0.8)
            ax.text(x, 0.02 + 0.08 * [0.5, 0.9, 0.99].index(q), f" p{int(q * 100)} {x:.3g} {unit}",
                    fontsize=7, color="dimgrey")
        ax.set_xlabel(f"{c} [{unit}]")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"{TITLES.get(c, c)}, {len(v)} requests", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    out = prefix + "_latency_cdf.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def utilization_bars(summary, prefix, name, top):
    util = summary.get("utilization", {})
    if not util:
        print("summary.json has no utilization map: no utilization chart", file=sys.stderr)
        return None
    items = sorted(util.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    fig, ax = plt.subplots(figsize=(7, 1.6 + 0.32 * len(items)))
    labels = [k for k, _ in items][::-1]
    values = [v * 100 for _, v in items][::-1]
    bars = ax.barh(labels, values, color="tab:blue")
    for b, v in zip(bars, values):
        ax.text(v, b.get_y() + b.get_height() / 2, f" {v:.2g} %", va="center", fontsize=8)
    peak = max(values)
    ax.set_xlim(0, 110 if peak > 20 else peak * 1.3 + 0.01)  # a lightly loaded run still shows its bars
    ax.set_xlabel("busy time / simulated time [%]")
    ax.set_title(f"{name}\nutilization per resource over {summary.get('simulated_time_s', 0):.4g} s simulated"
                 + (f" (busiest {len(items)} of {len(util)})" if len(util) > len(items) else ""), fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    out = prefix + "_utilization.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def utilization_over_time(run_dir, summary, prefix, name, bins, top):
    path = os.path.join(run_dir, "trace.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    names = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e.get("pid"), e.get("tid"))] = e["args"]["name"]
    slices = {}
    end_us = summary.get("simulated_time_s", 0) * 1e6
    for e in events:
        if e.get("ph") == "X":
            key = (e.get("pid"), e.get("tid"))
            slices.setdefault(key, []).append((float(e["ts"]), float(e.get("dur", 0))))
            end_us = max(end_us, float(e["ts"]) + float(e.get("dur", 0)))
    if not slices or end_us <= 0:
        print(f"{path} has no slices: no utilization-over-time plot", file=sys.stderr)
        return None
    width = end_us / bins
    busy = {}
    for key, sl in slices.items():
        b = [0.0] * bins
        for ts, dur in sl:  # spread each slice over the bins it covers
            t, stop = ts, ts + dur
            while t < stop:
                i = min(bins - 1, int(t / width))
                edge = min(stop, (i + 1) * width)
                if edge <= t:  # the last bin at float edge: take the rest
                    b[i] += stop - t
                    break
                b[i] += edge - t
                t = edge
        busy[key] = [min(1.0, x / width) for x in b]
    ranked = sorted(busy, key=lambda k: -sum(busy[k]))[:top]
    scale, unit = time_unit([end_us * 1e-6])
    xs = [(i + 0.5) * width * 1e-6 * scale for i in range(bins)]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for key in ranked:
        ax.plot(xs, [v * 100 for v in busy[key]], linewidth=1.2, label=names.get(key, f"{key[0]}/{key[1]}"))
    ax.set_xlabel(f"simulated time [{unit}]")
    ax.set_ylabel(f"busy [%] per {width * 1e-6 * scale:.3g} {unit}")
    peak = max(max(busy[k]) for k in ranked) * 100
    ax.set_ylim(0, 105 if peak > 20 else peak * 1.2 + 0.01)  # a lightly loaded run still shows its shape
    ax.set_title(f"{name}: utilization over time (from trace.json)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = prefix + "_utilization_time.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="output folder of wse-emu run")
    ap.add_argument("--out", help="prefix of the PNG files (default: RUN_DIR/plot)")
    ap.add_argument("--bins", type=int, default=200, help="time bins of the utilization-over-time plot")
    ap.add_argument("--top", type=int, default=12, help="at most this many resources, busiest first")
    ap.add_argument("--title", help="name of the run in the titles (default: experiment name and mode)")
    a = ap.parse_args(argv)
    summary_path = os.path.join(a.run_dir, "summary.json")
    if not os.path.exists(summary_path):
        sys.exit(f"{summary_path} does not exist: is {a.run_dir} the --out folder of wse-emu run?")
    with open(summary_path) as f:
        summary = json.load(f)
    prefix = a.out or os.path.join(a.run_dir, "plot")
    name = a.title or f"experiment '{summary.get('experiment', '?')}' ({summary.get('mode', '?')})"
    for out in [latency_cdf(a.run_dir, prefix, name),
                utilization_bars(summary, prefix, name, a.top),
                utilization_over_time(a.run_dir, summary, prefix, name, a.bins, a.top)]:
        if out:
            print(out)


if __name__ == "__main__":
    main()
