#!/usr/bin/python3
"""Tables and plots of the claims study (docs/claims.md) from the sweeps scripts/claims.sh ran.

    scripts/claims_report.py OUT [--targets-ms 5 10 20 50]

reads OUT/rates_*/, OUT/mix_*/ and OUT/pool_*/ (wse-emu sweep folders) and writes into OUT:
- claims_points.csv: one row per run (system, trace, rate or mix, the headline figures);
- claims_tables.md: the study's tables in markdown (decode speed, capacity within TPOT
  targets, tokens per joule and dollars, the prefill-to-decode mixes);
- claims_speed.png, claims_capacity.png, claims_efficiency.png, claims_mix.png.
A wrapper over wse_emu.claims (python/); needs python3-pandas and python3-matplotlib.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import wse_emu  # noqa: E402
from wse_emu import claims  # noqa: E402

STYLE = {
    "cs3_trn2": dict(color="tab:red", marker="o"),
    "cs3_alone": dict(color="tab:orange", marker="s"),
    "b200_trn2": dict(color="tab:green", marker="^"),
    "h200_trn2": dict(color="tab:olive", marker="^"),
    "h100_trn2": dict(color="tab:blue", marker="^"),
    "trn2_trn2": dict(color="tab:purple", marker="D"),
    "b200_only": dict(color="tab:green", marker="v", linestyle="--"),
    "h200_only": dict(color="tab:olive", marker="v", linestyle="--"),
    "h100_only": dict(color="tab:blue", marker="v", linestyle="--"),
}


def _lines(ax, t, x, y, scale_y=1.0, logx=False, logy=False):
    for system, g in t.groupby("system", sort=False):
        g = g.sort_values(x)
        ax.plot(g[x], g[y] * scale_y, label=claims.LABELS[system], markersize=4, linewidth=1.3, **STYLE[system])
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def plot_speed(points, path):
    """TPOT p50 and output tokens/s against the arrival rate, per trace."""
    t = claims.pick(points, "rates")
    traces = [tr for tr in ("conversation", "code") if tr in set(t["trace"])]
    if not traces:
        return
    fig, axes = plt.subplots(2, len(traces), figsize=(5.2 * len(traces), 6.4), squeeze=False)
    for col, tr in enumerate(traces):
        g = t[t["trace"] == tr]
        _lines(axes[0, col], g, "rate", "tpot_p50_s", 1e3, logx=True, logy=True)
        axes[0, col].set_title(f"Azure {tr}: TPOT p50 (ms)", fontsize=9)
        _lines(axes[1, col], g, "rate", "output_tokens_per_s", logx=True, logy=True)
        axes[1, col].set_title(f"Azure {tr}: output tokens/s", fontsize=9)
        axes[1, col].set_xlabel("arrival rate (x the trace's)")
    axes[0, 0].legend(fontsize=6.5, ncol=1)
    fig.suptitle("Claims study: decode speed per user and throughput (Llama-3.1-70B, 200 requests)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_capacity(points, path):
    """TPOT p99 against output tokens/s (each point one arrival rate): the capacity within
    a TPOT target is where a curve crosses the target's line."""
    t = claims.pick(points, "rates")
    traces = [tr for tr in ("conversation", "code") if tr in set(t["trace"])]
    if not traces:
        return
    fig, axes = plt.subplots(1, len(traces), figsize=(5.2 * len(traces), 3.9), squeeze=False)
    for col, tr in enumerate(traces):
        ax = axes[0, col]
        _lines(ax, t[t["trace"] == tr], "output_tokens_per_s", "tpot_p99_s", 1e3, logx=True, logy=True)
        pool = claims.pick(points, "pool")
        pool = pool[pool["trace"] == tr]
        if len(pool):
            ax.scatter(pool["output_tokens_per_s"], pool["tpot_p99_s"] * 1e3, color="tab:red", marker="*", s=60,
                       label="trn2 x N prefill + 4 CS-3 (16x)", zorder=5)
            for _, r in pool.iterrows():
                ax.annotate(f"{int(r['prefill_instances'])} trn2", (r["output_tokens_per_s"], r["tpot_p99_s"] * 1e3),
                            fontsize=6, xytext=(3, 3), textcoords="offset points")
        for ms in (5, 50):
            ax.axhline(ms, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"Azure {tr}: TPOT p99 (ms) vs output tokens/s", fontsize=9)
        ax.set_xlabel("output tokens/s (rates 1x, 4x, 16x)")
    axes[0, 0].legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_efficiency(points, path):
    """Output tokens per joule and dollars per million output tokens against the rate."""
    t = claims.pick(points, "rates")
    traces = [tr for tr in ("conversation", "code") if tr in set(t["trace"])]
    if not traces:
        return
    fig, axes = plt.subplots(2, len(traces), figsize=(5.2 * len(traces), 6.4), squeeze=False)
    for col, tr in enumerate(traces):
        g = t[t["trace"] == tr]
        _lines(axes[0, col], g, "rate", "tokens_per_joule_output", logx=True, logy=True)
        axes[0, col].set_title(f"Azure {tr}: output tokens per joule (facility)", fontsize=9)
        _lines(axes[1, col], g, "rate", "usd_per_m_output", logx=True, logy=True)
        axes[1, col].set_title(f"Azure {tr}: $ per million output tokens", fontsize=9)
        axes[1, col].set_xlabel("arrival rate (x the trace's)")
    axes[0, 0].legend(fontsize=6.5)
    fig.suptitle("Claims study: energy and cost per token (static power and rent spread over the tokens served)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_mix(points, path):
    """Saturated throughput, TPOT p50, tokens per joule and $ per million output tokens
    against the prompt-to-output token ratio of the synthetic mixes."""
    t = claims.pick(points, "mix")
    if t.empty:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.6))
    panels = [("output_tokens_per_s", 1, "output tokens/s (requests offered at once)"),
              ("tpot_p50_s", 1e3, "TPOT p50 (ms)"),
              ("tokens_per_joule_output", 1, "output tokens per joule"),
              ("usd_per_m_output", 1, "$ per million output tokens")]
    for ax, (y, s, title) in zip(axes.flat, panels):
        _lines(ax, t, "prompt_per_output", y, s, logx=True, logy=True)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("prompt tokens per output token (prefill-heavy right)")
    axes[0, 0].legend(fontsize=6.5)
    fig.suptitle("Claims study: the answers against the prefill-to-decode mix", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def tables(points, targets_s):
    out = []
    for tr in ("conversation", "code"):
        if tr not in set(points["trace"]):
            continue
        out += [f"### Decode speed and throughput, Azure {tr}", "",
                claims.markdown(claims.speed_table(points, tr)), ""]
    for tr in ("conversation", "code"):
        if tr not in set(points["trace"]):
            continue
        out += [f"### Output tokens/s within a TPOT p99 target, Azure {tr}", "",
                claims.markdown(claims.capacity_table(points, targets_s, tr, [s for s, _, _ in claims.SYSTEMS])), ""]
    pool = claims.pick(points, "pool")
    if len(pool):
        t = pool[["prefill_instances", "tpot_p50_s", "tpot_p99_s", "ttft_p99_s", "output_tokens_per_s",
                  "tokens_per_joule_output", "usd_per_m_output"]].copy()
        t[["tpot_p50_s", "tpot_p99_s"]] *= 1e3
        t.columns = ["trn2 prefill instances", "TPOT p50 ms", "TPOT p99 ms", "TTFT p99 s",
                     "output tokens/s", "output tokens/J", "$/M output"]
        out += ["### trn2 prefill + 4 CS-3 decode with more prefill instances (Azure conversation, 16x)", "",
                claims.markdown(t), ""]
    for tr in ("conversation", "code"):
        if tr not in set(points["trace"]):
            continue
        out += [f"### Tokens per joule and dollars, Azure {tr}", "",
                claims.markdown(claims.efficiency_table(points, tr)), ""]
    mix = claims.mix_table(points)
    if len(mix):
        out += ["### Prefill-to-decode mixes (synthetic, requests offered at once)", "", claims.markdown(mix), ""]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the study's output folder (scripts/claims.sh OUT)")
    ap.add_argument("--targets-ms", type=float, nargs="+", default=[5, 10, 20, 50],
                    help="TPOT p99 targets for the capacity table (default 5 10 20 50)")
    a = ap.parse_args(argv)
    try:
        points = claims.load_study(a.out)
        points.to_csv(os.path.join(a.out, "claims_points.csv"), index=False, float_format="%.10g")
        with open(os.path.join(a.out, "claims_tables.md"), "w") as f:
            f.write(tables(points, [ms / 1e3 for ms in a.targets_ms]))
        plot_speed(points, os.path.join(a.out, "claims_speed.png"))
        plot_capacity(points, os.path.join(a.out, "claims_capacity.png"))
        plot_efficiency(points, os.path.join(a.out, "claims_efficiency.png"))
        plot_mix(points, os.path.join(a.out, "claims_mix.png"))
    except wse_emu.WseEmuError as e:
        print(f"claims_report.py: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {a.out}/claims_tables.md, claims_points.csv and claims_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
