"""wse-emu's outputs in pandas: load run, sweep, plan and regress folders, drive the
binary, compare runs and plot them (docs/python.md).

    import wse_emu
    r = wse_emu.run("configs/experiments/gpu_only.yaml", "out/gpu", set={"workload.trace.limit": 50})
    r.summary, r.requests, r.utilization, r.stats        # pandas DataFrames
    wse_emu.load("out/default")                          # a Run, Sweep, Plan or Regress
    wse_emu.compare(["out/default", "out/gpu"])          # headline figures side by side
    from wse_emu import plot                             # matplotlib figures
"""
from __future__ import annotations

from .compare import COMPARE_FIGURES, busiest_resource, compare, read_compare_csv
from .driver import binary, config_text, run, sweep
from .results import Plan, Regress, Run, Sweep, WseEmuError, flatten, load, resource_class

__all__ = ["COMPARE_FIGURES", "Plan", "Regress", "Run", "Sweep", "WseEmuError", "binary", "busiest_resource",
           "compare", "config_text", "flatten", "load", "read_compare_csv", "resource_class", "run", "sweep"]


def __getattr__(name: str):
    # wse_emu.plot imports matplotlib (slow): only when first used.
    if name == "plot":
        import importlib
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'wse_emu' has no attribute '{name}'")
