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
are drawn. Needs python3-matplotlib (Debian); draws with the Agg backend (no display).
"""
import argparse
import csv
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

# Config-language units (docs/configuration.md): unit -> (kind, value in the base unit).
UNITS = {}
for u, f in [("B", 1), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("PB", 1e15),
             ("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("TiB", 2**40)]:
    UNITS[u] = ("size", f)
    UNITS[u + "/s"] = ("bandwidth", f)
for u, f in [("b/s", 1 / 8), ("Kb/s", 1e3 / 8), ("Mb/s", 1e6 / 8), ("Gb/s", 1e9 / 8), ("Tb/s", 1e12 / 8),
             ("Pb/s", 1e15 / 8), ("bps", 1 / 8), ("Kbps", 1e3 / 8), ("Mbps", 1e6 / 8), ("Gbps", 1e9 / 8),
             ("Tbps", 1e12 / 8), ("Pbps", 1e15 / 8)]:
    UNITS[u] = ("bandwidth", f)
for u, f in [("Hz", 1), ("kHz", 1e3), ("MHz", 1e6), ("GHz", 1e9)]:
    UNITS[u] = ("frequency", f)
for u, f in [("ps", 1e-12), ("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1)]:
    UNITS[u] = ("time", f)

QUANTITY = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/]+)?\s*$")


def parse_value(text):
    """'400 Gb/s' -> (5e10, 'Gb/s', factor); '3' -> (3.0, None, 1); other text -> None."""
    m = QUANTITY.match(text)
    if not m:
        return None
    number, unit = float(m.group(1)), m.group(2)
    if unit is None:
        return number, None, 1.0
    if unit not in UNITS:
        return None
    return number * UNITS[unit][1], unit, UNITS[unit][1]


def axis_for_column(values):
    """Numeric x values in one unit (the unit written most often) and the axis label suffix."""
    parsed = [parse_value(v) for v in values]
    if any(p is None for p in parsed):
        return None, ""
    units = [p[1] for p in parsed if p[1]]
    if not units:
        return [p[0] for p in parsed], ""
    unit = max(dict.fromkeys(units), key=units.count)  # ties: the first written
    factor = UNITS[unit][1]
    return [p[0] / factor for p in parsed], unit


def figure_scale(name, values):
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
    if name.endswith("_s") or name.endswith("_s.mean") or re.search(r"_s\.(p\d+|max|min|mean)$", name):
        if top >= 1 or top == 0:
            return 1.0, "s"
        if top >= 1e-3:
            return 1e3, "ms"
        return 1e6, "us"
    if name.endswith("bytes"):
        return 1e-9, "GB"
    return 1.0, ""


def plain_log_ticks(axis):
    """Log axes labelled 0.01, 3, 400 rather than 10^-2, 3x10^0, 4x10^2."""
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))


def short(key):
    parts = key.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else key


def read_results(path, ys):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    if "status" not in header:
        sys.exit(f"{path}: not a wse-emu sweep results.csv (no status column)")
    # The host's figures of each point (wall_time_s, cpu_time_s, peak_rss_bytes) are in
    # host.csv next to results.csv, which stays reproducible; join them in when asked for.
    host_path = os.path.join(os.path.dirname(path), "host.csv")
    if any(y not in header for y in ys) and os.path.exists(host_path):
        with open(host_path, newline="") as f:
            host_reader = csv.DictReader(f)
            host_rows = {r["point"]: r for r in host_reader}
            host_cols = [c for c in (host_reader.fieldnames or []) if c not in header]
        for r in rows:
            for c in host_cols:
                r[c] = host_rows.get(r["point"], {}).get(c, "")
        header = header + host_cols
    return header, rows


def sweep_name(path):
    """The sweep's folder name (not its absolute path)."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.basename(folder) or folder


def line_styles():
    """Colour first (tab20), then marker and dash, so that lines past ten stay apart."""
    colours = [plt.get_cmap("tab20")(i) for i in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)]
    markers = ["o", "s", "^", "D", "v", "P"]
    dashes = ["-", "--", ":", "-."]
    i = 0
    while True:
        yield {"color": colours[i % len(colours)], "marker": markers[(i // len(colours)) % len(markers)],
               "linestyle": dashes[(i // (len(colours) * len(markers))) % len(dashes)]}
        i += 1


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
    if a.logy:
        for y in a.logy:
            if y not in a.y:
                sys.exit(f"--logy {y}: not one of the --y figures")
    logy = set(a.y) if a.logy == [] else set(a.logy or [])

    rows = []
    names = [sweep_name(p) for p in a.results]
    if len(set(names)) < len(names):  # two folders of one name: tell them apart by path
        names = [os.path.relpath(os.path.dirname(os.path.abspath(p))) for p in a.results]
    varied_all = []
    for path, name in zip(a.results, names):
        header, these = read_results(path, a.y)
        varied = header[1:header.index("status")]
        for key in [a.x] + (a.series or []):
            if key not in varied:
                sys.exit(f"{path}: '{key}' is not a varied parameter; varied: {', '.join(varied)}")
        for y in a.y:
            if y not in header:
                sys.exit(f"'{y}' is not a column of {path}")
        for w in a.where:
            k, _, v = w.partition("=")
            if k not in varied:
                sys.exit(f"--where {w}: '{k}' is not a varied parameter of {path}")
            these = [r for r in these if r[k] == v]
        for r in these:
            r["__sweep"] = name
        rows += [r for r in these if r["status"] == "ok"]
        varied_all += [k for k in varied if k not in varied_all]
    if not rows:
        sys.exit("no completed points to plot")
    series_keys = a.series if a.series is not None else [k for k in varied_all if k != a.x]

    xs, x_unit = axis_for_column([r[a.x] for r in rows])
    categorical = xs is None
    if categorical:  # values without a numeric reading: equally spaced, labelled as written
        order = list(dict.fromkeys(r[a.x] for r in rows))
        xs = [order.index(r[a.x]) for r in rows]

    groups = {}
    for r, x in zip(rows, xs):
        parts = [r["__sweep"]] if len(a.results) > 1 else []
        parts += [f"{short(k)}={r.get(k, '')}" for k in series_keys]
        groups.setdefault(", ".join(parts), []).append((x, r))
    styles = line_styles()
    style = {label: next(styles) for label in groups}

    fig, axes = plt.subplots(len(a.y), 1, figsize=(7, 2.6 + 2.2 * len(a.y)), sharex=True, squeeze=False)
    for ax, y in zip(axes[:, 0], a.y):
        values = [float(r[y]) if r[y] != "" else None for r in rows]
        scale, unit = figure_scale(y, values)
        for label, pts in groups.items():
            pts.sort(key=lambda p: p[0])
            px = [p[0] for p in pts if p[1][y] != ""]
            py = [float(p[1][y]) * scale for p in pts if p[1][y] != ""]
            ax.plot(px, py, markersize=4, linewidth=1.5, label=label or None, **style[label])
        ax.set_ylabel(f"{y}" + (f" [{unit}]" if unit else ""), fontsize=9)
        if y in logy:
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
        if a.logx and not categorical:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        ax.grid(True, which="both", alpha=0.3)
    bottom = axes[-1, 0]
    bottom.set_xlabel(a.x + (f" [{x_unit}]" if x_unit else ""))
    if categorical:
        bottom.set_xticks(range(len(order)), order)
    if any(groups.keys()):
        # One entry per line (the panels share the lines).
        handles, labels = axes[0, 0].get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        axes[0, 0].legend(unique.values(), unique.keys(), fontsize=8, title_fontsize=8)
    fig.suptitle(a.title or " + ".join(dict.fromkeys(names)), fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)
    print(a.out)


if __name__ == "__main__":
    main()
