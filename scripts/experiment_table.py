#!/usr/bin/env python3
"""Headline figures of one or more `wse-emu run` output folders as a Markdown table.

    scripts/experiment_table.py out/default out/wafer_only out/trainium_only

One column per run: requests, TTFT and TPOT percentiles, output tokens per second,
goodput under the configured SLOs, KV transfer (bytes, p50, share hidden behind the
prefill), the decode step and its largest kernels on the wafer, the three busiest
resource classes, simulated time, and the wall time from host.json (the host's figures,
kept out of summary.json).
"""
import argparse
import json
import pathlib
import sys


def fmt_ms(s):
    return "-" if s is None else f"{s * 1e3:.1f}"


def row_values(summary, host):
    r = summary.get("requests", {})
    t = summary.get("throughput", {})
    kv = summary.get("kv_transfer")
    w = summary.get("wafer")
    g = summary.get("goodput", {})
    out = {}
    out["mode"] = summary.get("mode", "")
    out["model"] = summary.get("model", {}).get("name", "")
    out["requests"] = f"{r.get('completed', 0):,}"
    if "ttft_s" in r:
        out["TTFT p50 / p99 (ms)"] = f"{fmt_ms(r['ttft_s']['p50'])} / {fmt_ms(r['ttft_s']['p99'])}"
        out["TPOT p50 / p99 (ms)"] = f"{fmt_ms(r['tpot_s']['p50'])} / {fmt_ms(r['tpot_s']['p99'])}"
        out["E2E p50 (s)"] = f"{r['e2e_s']['p50']:.2f}"
    if "output_tokens_per_s" in t:
        out["output tokens/s"] = f"{t['output_tokens_per_s']:,.0f}"
    if g:
        out["goodput (SLO met)"] = f"{100 * g.get('fraction', 0):.1f}%"
    if kv:
        # kv_transfer-mode runs have no prefill to hide behind, and may name their keys
        # differently: show what the summary has.
        if "bytes" in kv:
            out["KV bytes"] = f"{kv['bytes'] / 1e9:.1f} GB"
        if "p50" in kv.get("time_s", {}):
            out["KV transfer p50 (ms)"] = fmt_ms(kv["time_s"]["p50"])
        if "hidden_share" in kv:
            out["KV hidden behind prefill"] = f"{100 * kv['hidden_share']:.1f}%"
    if w:
        out["decode step mean (ms)"] = fmt_ms(w.get("mean_step_s"))
        ks = sorted(w.get("kernel_seconds", {}).items(), key=lambda kv: -kv[1]["share"])[:3]
        out["wafer decode: largest kernels"] = ", ".join(f"{k} {100 * v['share']:.0f}%" for k, v in ks)
        out["CS-3s"] = f"{w.get('decode_systems', 1)} x {w.get('wafers_per_decode_system', 1)}"
    cls = sorted(summary.get("utilization_by_class", {}).items(), key=lambda kv: -kv[1]["max"])[:3]
    out["busiest resources (max)"] = ", ".join(f"{k} {100 * v['max']:.1f}%" for k, v in cls)
    out["simulated (s)"] = f"{summary.get('simulated_time_s', 0):.1f}"
    # Older runs kept the wall time in summary.json.
    wall = host.get("wall_time_s", summary.get("wall_time_s"))
    out["wall (s)"] = "-" if wall is None else f"{wall:.1f}"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="output folders of wse-emu run")
    args = ap.parse_args()
    cols = []
    for d in args.runs:
        p = pathlib.Path(d) / "summary.json"
        if not p.exists():
            sys.exit(f"experiment_table.py: {p} does not exist (run `wse-emu run EXPERIMENT --out {d}` first)")
        s = json.loads(p.read_text())
        h = pathlib.Path(d) / "host.json"
        host = json.loads(h.read_text()) if h.exists() else {}
        cols.append((s.get("experiment", d), row_values(s, host)))
    keys = []
    for _, v in cols:
        for k in v:
            if k not in keys:
                keys.append(k)
    print("| figure | " + " | ".join(name for name, _ in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for k in keys:
        print(f"| {k} | " + " | ".join(v.get(k, "-") for _, v in cols) + " |")


if __name__ == "__main__":
    main()
