"""compare() against what `wse-emu compare` wrote for the same folders (fixtures/compare)."""
import math
import shutil

import pytest

import wse_emu
from wse_emu import WseEmuError


def same(a, b, rel):
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None and b is None) or (isinstance(a, float) and isinstance(b, float)
                                             and math.isnan(a) and math.isnan(b))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return b == pytest.approx(a, rel=rel)


def test_compare_matches_wse_emu_compare(fixtures):
    written = wse_emu.read_compare_csv(fixtures / "compare")
    # a sweep folder stands for its points, as on the command line
    ours = wse_emu.compare([fixtures / "gpu_only_5", fixtures / "kv_link_5", fixtures / "sweep_gpu"])
    assert list(ours.columns) == list(written.columns)
    assert list(ours.index) == list(written.index)
    assert list(ours.index[:-1]) == [name for name, _ in wse_emu.COMPARE_FIGURES]
    for col in ours.columns:
        rel = 2e-3 if "/" in col else 1e-8  # compare.csv: ratios to 3 decimals, values to 9 digits
        for fig in ours.index:
            assert same(written.loc[fig, col], ours.loc[fig, col], rel), (fig, col)
    # a figure a run does not report is None, and its ratio NaN
    assert ours.loc["ttft_p50_s", "kv_link_5"] is None
    assert math.isnan(ours.loc["ttft_p50_s", "kv_link_5/gpu_only_5"])


def test_baseline_not_among_the_runs_comes_first(fixtures):
    t = wse_emu.compare([fixtures / "sweep_gpu" / "points" / "003"], baseline=fixtures / "gpu_only_5")
    assert list(t.columns) == ["gpu_only_5", "gpu_only_5/gpu_only_5", "003", "003/gpu_only_5"]
    base, other = wse_emu.load(fixtures / "gpu_only_5"), wse_emu.load(fixtures / "sweep_gpu" / "points" / "003")
    want = other.figure("requests.tpot_s.p99") / base.figure("requests.tpot_s.p99")
    assert t.loc["tpot_p99_s", "003/gpu_only_5"] == pytest.approx(want)
    # a baseline among the runs keeps its place
    t = wse_emu.compare([fixtures / "gpu_only_5", fixtures / "kv_link_5"], baseline=fixtures / "kv_link_5")
    assert list(t.columns) == ["gpu_only_5", "gpu_only_5/kv_link_5", "kv_link_5", "kv_link_5/kv_link_5"]


def test_busiest_resource_leaves_out_the_serving_classes(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    by = run.utilization_by_class
    top = by[~by["class"].str.startswith("serving.")].sort_values("mean", ascending=False).iloc[0]
    assert wse_emu.busiest_resource(run) == f"{top['class']} ({top['mean'] * 100:.1f}%)"


def test_compare_refuses_what_is_not_a_run(fixtures, tmp_path):
    with pytest.raises(WseEmuError, match="compare takes run folders or sweeps"):
        wse_emu.compare([fixtures / "regress"])
    with pytest.raises(WseEmuError, match="give at least one"):
        wse_emu.compare([])
    (tmp_path / "compare.csv").write_text("x,y\n")
    with pytest.raises(WseEmuError, match="not a compare.csv"):
        wse_emu.read_compare_csv(tmp_path)


def test_runs_of_one_name_are_told_apart_by_their_parents(fixtures, tmp_path):
    for sweep in ["a", "b"]:
        shutil.copytree(fixtures / "sweep_gpu", tmp_path / sweep)
    t = wse_emu.compare([tmp_path / "a" / "points" / "002", tmp_path / "b" / "points" / "002", fixtures / "kv_link_5"])
    assert list(t.columns[0::2]) == ["a/points/002", "b/points/002", "kv_link_5"]
