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
PREFIX defaults to DIR/plot. A wrapper over the wse_emu package (python/, docs/python.md):
needs python3-pandas and python3-matplotlib (Debian); Agg backend, no display.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import wse_emu  # noqa: E402
from wse_emu import plot  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="output folder of wse-emu run")
    ap.add_argument("--out", help="prefix of the PNG files (default: RUN_DIR/plot)")
    ap.add_argument("--bins", type=int, default=200, help="time bins of the utilization-over-time plot")
    ap.add_argument("--top", type=int, default=12, help="at most this many resources, busiest first")
    ap.add_argument("--title", help="name of the run in the titles (default: experiment name and mode)")
    a = ap.parse_args(argv)
    try:
        run = wse_emu.Run(a.run_dir)
    except wse_emu.WseEmuError as e:
        sys.exit(str(e))
    prefix = a.out or os.path.join(a.run_dir, "plot")
    charts = [("_latency_cdf.png", lambda: plot.latency_cdf(run, a.title)),
              ("_utilization.png", lambda: plot.utilization_bars(run, a.top, a.title))]
    if run.trace_path is not None:
        charts.append(("_utilization_time.png", lambda: plot.utilization_over_time(run, a.bins, a.top, a.title)))
    for suffix, draw in charts:
        try:
            fig = draw()
        except wse_emu.WseEmuError as e:  # a chart this run has no data for: the others still
            print(e, file=sys.stderr)
            continue
        fig.savefig(prefix + suffix, dpi=100)
        plt.close(fig)
        print(prefix + suffix)


if __name__ == "__main__":
    main()
