#!/usr/bin/python3
"""Line plots of a sweep's results.csv: chosen figures against one varied parameter.

    scripts/plot_sweep.py DIR/results.csv [DIR2/results.csv ...] --x workload.trace.rate_scale \\
        --y kv_transfer.time_s.p99 utilization.system.link [--logx] [--logy [FIGURE ...]] \\
        [--where kv_transfer.senders=1] [--out plot.png]

Several results.csv files are overlaid (same --x; each line's label starts with its
sweep's folder name). --logy alone makes every panel logarithmic, --logy FIGURE ...
only those panels. Lines differ in colour (20 colours), then in marker and dash, so
more than ten of them stay apart; the legend lists each line once.

One panel per --y figure, one line per combination of the other varied parameters
(or of --series KEYS only, after --where filters). Values written with units in the
sweep file ("400 Gb/s", "48 KiB", "600 ns") are converted to one unit per axis, named
on the axis. Figure units come from their names: *_bytes_per_s (GB/s), other *_per_s
rates (tokens/s, requests/s: per second), *_s seconds (shown in s, ms or us), *bytes
(GB), utilization.* (percent). Only points with status ok
are drawn. A wrapper over the wse_emu package (python/, docs/python.md): needs
python3-pandas and python3-matplotlib (Debian); draws with the Agg backend (no display).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import wse_emu  # noqa: E402
from wse_emu import plot  # noqa: E402
from wse_emu.plot import figure_scale, line_styles, sweep_name  # noqa: E402

# The script's own names before it wrapped the package (tests/sweep/test_sweep.cpp imports them).
__all__ = ["figure_scale", "line_styles", "main", "sweep_name"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results.csv written by wse-emu sweep (several: overlaid)")
    ap.add_argument("--x", required=True, help="varied parameter for the x axis")
    ap.add_argument("--y", required=True, nargs="+", help="summary figures to plot (column names)")
    ap.add_argument("--series", nargs="*", help="varied parameters that make separate lines (default: all others)")
    ap.add_argument("--where", nargs="*", default=[], help="KEY=VALUE filters on varied parameters (as written)")
    ap.add_argument("--logx", action="store_true")
    ap.add_argument("--logy", nargs="*", default=None,
                    help="logarithmic y: alone, every panel; with FIGURE names, only those panels")
    ap.add_argument("--title", help="plot title (default: the sweep folder's name)")
    ap.add_argument("--out", default="sweep.png", help="PNG file to write")
    a = ap.parse_args(argv)
    logy = a.y if a.logy == [] else (a.logy or [])
    try:
        sweeps = [wse_emu.Sweep(path) for path in a.results]
        fig = plot.sweep_lines(sweeps, a.x, a.y, series=a.series, where=a.where, logx=a.logx, logy=logy,
                               title=a.title)
    except wse_emu.WseEmuError as e:
        sys.exit(str(e))
    fig.savefig(a.out, dpi=100)
    print(a.out)


if __name__ == "__main__":
    main()
