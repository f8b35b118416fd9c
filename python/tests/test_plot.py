"""The plots, and the scripts that wrap them (scripts/plot_*.py): files written, lines drawn."""
import importlib.util

import matplotlib.pyplot as plt
import pytest

import wse_emu
from wse_emu import WseEmuError, plot
from conftest import REPO


def test_run_plots(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    fig = plot.latency_cdf(run)
    assert [ax.get_xlabel() for ax in fig.axes] == ["ttft_s [ms]", "tpot_s [ms]", "e2e_s [ms]"]
    fig = plot.utilization_bars(run, top=3)
    assert len(fig.axes[0].patches) == 3
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == run.utilization["resource"][0]
    fig = plot.utilization_over_time(run, bins=20)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["machines: machine 0"]
    plt.close("all")
    kv = wse_emu.load(fixtures / "kv_link_5")
    assert [ax.get_xlabel() for ax in plot.latency_cdf(kv).axes] == ["transfer_time_s [us]"]
    plt.close("all")


def test_sweep_lines_one_line_per_other_value(fixtures):
    sw = wse_emu.load(fixtures / "sweep_gpu")
    fig = plot.sweep_lines(sw, "workload.trace.rate_scale", ["requests.tpot_s.p50"], logx=True)
    lines = fig.axes[0].get_lines()
    assert sorted(line.get_label() for line in lines) == ["hbm.peak_bandwidth=3.35 TB/s", "hbm.peak_bandwidth=4.8 TB/s"]
    by_label = {line.get_label(): line for line in lines}
    pts = sw.results[sw.written["gpu.hbm.peak_bandwidth"] == "4.8 TB/s"]
    assert list(by_label["hbm.peak_bandwidth=4.8 TB/s"].get_ydata()) == \
        pytest.approx(list(pts["requests.tpot_s.p50"] * 1e3))  # shown in ms
    fig = plot.sweep_lines(sw, "gpu.hbm.peak_bandwidth", ["wall_time_s"], where=["workload.trace.rate_scale=4"])
    assert fig.axes[0].get_xlabel() == "gpu.hbm.peak_bandwidth [TB/s]"
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [3.35, 4.8]
    with pytest.raises(WseEmuError, match="'nope' is not a varied parameter"):
        plot.sweep_lines(sw, "nope", ["requests.tpot_s.p50"])
    plt.close("all")


def test_compare_bars(fixtures):
    fig = plot.compare_bars(wse_emu.read_compare_csv(fixtures / "compare"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["TTFT p50 (ms)", "TTFT p99 (ms)"]
    plt.close("all")


def script(name):
    """A script of scripts/ as a module (its main() is called in this process: no new
    interpreter and imports per call)."""
    spec = importlib.util.spec_from_file_location(name[:-3], REPO / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scripts_write_their_files(fixtures, tmp_path, capsys):
    script("plot_run.py").main([str(fixtures / "gpu_only_5"), "--out", str(tmp_path / "run")])
    written = capsys.readouterr().out.split()
    assert written == [str(tmp_path / f"run{s}.png") for s in ["_latency_cdf", "_utilization", "_utilization_time"]]
    script("plot_sweep.py").main([str(fixtures / "sweep_gpu" / "results.csv"), "--x", "workload.trace.rate_scale",
                                  "--y", "requests.tpot_s.p50", "wall_time_s", "--logy",
                                  "--out", str(tmp_path / "sweep.png")])
    script("plot_compare.py").main([str(fixtures / "compare"), "--out", str(tmp_path / "cmp.png")])
    assert capsys.readouterr().out.split() == [str(tmp_path / "sweep.png"), str(tmp_path / "cmp.png")]
    for f in [*written, tmp_path / "sweep.png", tmp_path / "cmp.png"]:
        with open(f, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    sweep_script = script("plot_sweep.py")  # its names from before the package, still there
    assert sweep_script.sweep_name("/a/b/mysweep/results.csv") == "mysweep"
    assert sweep_script.figure_scale("throughput.output_tokens_per_s", [1e3])[1] == "tokens/s"
    with pytest.raises(SystemExit, match="nowhere/summary.json': no such file"):
        script("plot_run.py").main([str(tmp_path / "nowhere")])
    plt.close("all")


def test_plan_frontier_one_line_per_workload(tmp_path, capsys):
    # A plan's frontier.csv as `wse-emu plan` writes it: two workloads at two rates, one
    # decode pool size; the best row of each (workload, rate) is drawn.
    (tmp_path / "plan.csv").write_text("workload,rate,prefill,decode,status,objective,point,error\n")
    (tmp_path / "frontier.csv").write_text(
        "workload,rate,decode,fewest_prefill,prefill_per_decode,objective,best\n"
        "code,4,1,3,3,523.28,1\ncode,16,1,8,8,702.08,1\n"
        "chat,4,1,1,1,451.76,1\nchat,16,1,,,,0\n")
    plan = wse_emu.load(tmp_path)
    assert list(plan.best()["fewest_prefill"]) == [3, 8, 1]
    fig = plot.plan_frontier(plan)
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == ["code", "chat"]
    assert list(left.get_lines()[0].get_ydata()) == [3, 8]
    assert list(right.get_lines()[1].get_ydata()) == [451.76]
    assert [t.get_text() for t in left.texts] == ["3 x 1", "8 x 1", "1 x 1"]
    script("plot_plan.py").main([str(tmp_path)])
    with open(tmp_path / "plan.png", "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.split() == [str(tmp_path / "plan.png")]
    plt.close("all")
    (tmp_path / "frontier.csv").write_text("workload,rate,decode,fewest_prefill,prefill_per_decode,objective,best\n"
                                           "chat,16,1,,,,0\n")
    with pytest.raises(WseEmuError, match="no deployment in frontier.csv meets the SLOs"):
        plot.plan_frontier(wse_emu.load(tmp_path))
