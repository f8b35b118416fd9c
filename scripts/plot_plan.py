#!/usr/bin/python3
"""Plot of a fleet-sizing plan (the frontier.csv of `wse-emu plan PLAN.yaml --out DIR`).

    scripts/plot_plan.py DIR [--out FILE]

writes FILE (default DIR/plan.png): against the arrival rate, one line per workload, the
chosen deployment's prefill machines per decode machine (each point labelled prefill x
decode) and its objective (cost, power or machine count). A wrapper over the wse_emu
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
    ap.add_argument("dir", help="the --out folder of 'wse-emu plan'")
    ap.add_argument("--out", help="PNG to write (default DIR/plan.png)")
    a = ap.parse_args(argv)
    try:
        fig = plot.plan_frontier(wse_emu.Plan(a.dir))
    except wse_emu.WseEmuError as e:
        sys.exit(f"plot_plan.py: {e}")
    out = a.out or os.path.join(a.dir, "plan.png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
