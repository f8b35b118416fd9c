#!/usr/bin/python3
"""Plot of a comparison of runs (the compare.csv of `wse-emu compare ... --out DIR`).

    scripts/plot_compare.py DIR [--out FILE]

writes FILE (default DIR/compare.png): one panel per headline figure present in
compare.csv (TTFT and TPOT p50/p99, output tokens/s, goodput, tokens per joule, dollars per
million output tokens and per million tokens), a bar per run, each labelled with its ratio
to the baseline run. Figures no run reports are left out. A wrapper over the wse_emu
package (python/, docs/python.md): needs python3-pandas and python3-matplotlib (Debian);
Agg backend, no display.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import wse_emu  # noqa: E402
from wse_emu import plot  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="folder holding compare.csv")
    ap.add_argument("--out", help="PNG to write (default DIR/compare.png)")
    a = ap.parse_args(argv)
    try:
        fig = plot.compare_bars(wse_emu.read_compare_csv(os.path.join(a.dir, "compare.csv")))
    except wse_emu.WseEmuError as e:
        sys.exit(f"plot_compare.py: {e}")
    out = a.out or os.path.join(a.dir, "compare.png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
