"""Driving the real binary (a few tiny experiments, well under a second each)."""
import pytest

import wse_emu
from conftest import REPO
from wse_emu import WseEmuError

GPU_ONLY = REPO / "configs" / "experiments" / "gpu_only.yaml"


def test_config_text():
    assert wse_emu.config_text(True) == "true"
    assert wse_emu.config_text("400 Gb/s") == "400 Gb/s"
    assert wse_emu.config_text([19, 21]) == "[19, 21]"
    assert wse_emu.config_text({"a": 1, "b": [True]}) == "{a: 1, b: [true]}"


def test_binary_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WSE_EMU_BIN", str(tmp_path / "wse-emu"))
    with pytest.raises(WseEmuError, match="no wse-emu program there; WSE_EMU_BIN names"):
        wse_emu.binary()


def test_run_drives_the_binary(wse_emu_bin, tmp_path):
    run = wse_emu.run(GPU_ONLY, tmp_path / "gpu", set={"workload.trace.limit": 3, "serving.tpot_slo": "1 ms"})
    assert run.experiment == "gpu_only"
    assert run.figure("requests.completed") == 3 and len(run.requests) == 3
    assert run.figure("goodput.tpot_slo_s") == pytest.approx(1e-3)
    assert run.trace_path is None
    # the folder is in use now: force writes over it, with a trace this time
    with pytest.raises(WseEmuError, match=r"bad input \(exit 2\)"):
        wse_emu.run(GPU_ONLY, tmp_path / "gpu", set={"workload.trace.limit": 3})
    run = wse_emu.run(GPU_ONLY, tmp_path / "gpu", set={"workload.trace.limit": 3}, trace=True, force=True)
    assert run.trace_path is not None


def test_bad_input_raises_with_the_programs_message(wse_emu_bin, tmp_path):
    with pytest.raises(WseEmuError, match=r"bad input \(exit 2\):\n.*serving.tpot_slo"):
        wse_emu.run(GPU_ONLY, tmp_path / "bad", set={"serving.tpot_slo": "fast"})
    assert not (tmp_path / "bad" / "summary.json").exists()


def test_sweep_from_a_grid(wse_emu_bin, tmp_path):
    sw = wse_emu.sweep(experiment=GPU_ONLY, out=tmp_path / "sw", jobs=2,
                       set={"workload.trace.limit": 3}, grid={"workload.trace.rate_scale": [1, 8]})
    assert sw.varied == ["workload.trace.rate_scale"]
    assert list(sw.results["workload.trace.rate_scale"]) == [1.0, 8.0]
    assert list(sw.results["status"]) == ["ok", "ok"]
    # eight times the arrival rate: the same three requests arrive within an eighth of the time
    t = list(sw.results["simulated_time_s"])
    assert t[1] < t[0]
    with pytest.raises(WseEmuError, match="either a sweep file or experiment="):
        wse_emu.sweep(out=tmp_path / "x")
