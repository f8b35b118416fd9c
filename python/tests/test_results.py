"""Reading output folders: what load() returns and what each DataFrame holds, checked
against the files of real wse-emu outputs (fixtures/)."""
import json
import math
import shutil

import pandas as pd
import pytest

import wse_emu
from wse_emu import Plan, Regress, Run, Sweep, WseEmuError


def nearest_rank(values, q):
    v = sorted(values)
    return v[max(0, math.ceil(q * len(v)) - 1)]


def test_load_recognises_each_kind_of_folder(fixtures, tmp_path):
    assert isinstance(wse_emu.load(fixtures / "gpu_only_5"), Run)
    assert isinstance(wse_emu.load(fixtures / "sweep_gpu"), Sweep)
    assert isinstance(wse_emu.load(fixtures / "regress"), Regress)
    (tmp_path / "plan.csv").write_text("rate,prefill_instances,decode_systems,usd_per_hour\n1,1,1,130.8\n4,2,1,166.6\n")
    plan = wse_emu.load(tmp_path)
    assert isinstance(plan, Plan)
    assert list(plan.table["prefill_instances"]) == [1, 2]


def test_load_names_the_folder_and_what_is_missing(tmp_path):
    with pytest.raises(WseEmuError, match=f"'{tmp_path / 'nope'}': no such folder"):
        wse_emu.load(tmp_path / "nope")
    with pytest.raises(WseEmuError, match=r"not a wse-emu output folder: it holds no summary.json \(wse-emu run\)"):
        wse_emu.load(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(WseEmuError, match=r"summary.json': not JSON"):
        wse_emu.load(tmp_path)
    (tmp_path / "summary.json").write_text('{"mode": "x"}')
    with pytest.raises(WseEmuError, match="not a wse-emu summary \\(no 'experiment' key\\)"):
        wse_emu.load(tmp_path)


def test_summary_is_summary_json_flattened(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    doc = json.loads((fixtures / "gpu_only_5" / "summary.json").read_text())
    assert run.experiment == doc["experiment"] == "gpu_only"
    assert run.mode == "gpu_only"
    s = run.summary
    assert s.index.name == "figure" and list(s.columns) == ["value"]
    assert s.loc["requests.tpot_s.p99", "value"] == doc["requests"]["tpot_s"]["p99"]
    assert s.loc["gpu.floor.decode_step.passes", "value"] == doc["gpu"]["floor"]["decode_step"]["passes"]
    assert run.figure("requests.completed") == 5
    assert run.figure("no.such.figure", "-") == "-"
    # every leaf once: as many rows as the JSON has non-object values
    def leaves(node):
        return sum(leaves(v) for v in node.values()) if isinstance(node, dict) else 1
    assert len(s) == leaves(doc)


def test_requests_gain_the_latencies_summary_json_reports(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    req = run.requests
    assert len(req) == 5 and set(req["state"]) == {"completed"}
    for col in ["ttft_s", "tpot_s", "e2e_s"]:
        for q in ["p50", "p99"]:
            want = run.figure(f"requests.{col}.{q}")
            got = nearest_rank(req[col].dropna(), float(q[1:]) / 100)
            assert got == pytest.approx(want, rel=1e-6), (col, q)


def test_a_kv_transfer_run_has_transfer_times_and_no_serving_latencies(fixtures):
    run = wse_emu.load(fixtures / "kv_link_5")
    assert "transfer_time_s" in run.requests and "ttft_s" not in run.requests
    assert nearest_rank(run.requests["transfer_time_s"], 0.5) == pytest.approx(run.figure("kv_transfer.time_s.p50"))


def test_a_missing_requests_csv_is_named(fixtures, tmp_path):
    shutil.copy(fixtures / "kv_link_5" / "summary.json", tmp_path)
    with pytest.raises(WseEmuError, match=f"'{tmp_path / 'requests.csv'}': no such file; mode 'kv_transfer'"):
        wse_emu.load(tmp_path).requests


def test_utilization_per_resource_agrees_with_its_classes(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    u = run.utilization
    assert list(u.columns) == ["resource", "class", "utilization", "busy_s"]
    assert u["utilization"].is_monotonic_decreasing
    assert set(u["resource"]) == set(run.summary_json["utilization"])
    by = run.utilization_by_class.set_index("class")
    mean = u.groupby("class")["utilization"].mean()
    assert set(mean.index) == set(by.index)
    for c in by.index:
        assert mean[c] == pytest.approx(by.loc[c, "mean"]), c
    hbm = u.set_index("resource").loc["gpu.instance0.hbm"]
    # busy_s from stats.json: the busy share of the simulated time
    assert hbm["busy_s"] == pytest.approx(hbm["utilization"] * run.figure("simulated_time_s"), rel=1e-6)


def test_resource_class_replaces_trailing_indices_only():
    assert wse_emu.resource_class("efa.sender0.adapter12.tx") == "efa.sender*.adapter*.tx"
    assert wse_emu.resource_class("kv_path.cs3_1.io_edge") == "kv_path.cs3_*.io_edge"
    assert wse_emu.resource_class("machines.trn_prefill0.collective_torus2d") == \
        "machines.trn_prefill*.collective_torus2d"


def test_stats_have_values_units_and_descriptions(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    st = run.stats
    assert st.index.name == "stat"
    assert list(st.columns[:3]) == ["value", "unit", "description"]
    assert st["unit"].notna().all() and st["description"].notna().all()
    doc = json.loads((fixtures / "gpu_only_5" / "stats.json").read_text())
    # a distribution keeps its percentiles, a utilization its busy seconds
    (path, leaf), = [(k, v) for k, v in wse_emu.flatten(doc).items() if k.endswith(".p99")][:1]
    stat = path[: -len(".p99")]
    assert st.loc[stat, "p99"] == leaf
    assert st.loc[stat, "unit"] == wse_emu.flatten(doc)[stat + ".unit"]


def test_trace_utilization_accounts_for_every_slice(fixtures):
    run = wse_emu.load(fixtures / "gpu_only_5")
    bins = 50
    busy = run.trace_utilization(bins)
    assert busy.shape[0] == bins and busy.index.name == "time_s"
    assert ((busy >= 0) & (busy <= 1)).all().all()
    events = json.loads(run.trace_path.read_text())["traceEvents"]
    slices = [e for e in events if e.get("ph") == "X"]
    end_s = max(run.figure("simulated_time_s"), max((e["ts"] + e.get("dur", 0)) * 1e-6 for e in slices))
    width = end_s / bins
    # one machine runs its slices one after another: the busy time is their sum
    assert busy.columns.tolist() == ["machines: machine 0"]
    total = sum(e.get("dur", 0) for e in slices) * 1e-6
    assert busy["machines: machine 0"].sum() * width == pytest.approx(total, rel=1e-9)


def test_trace_utilization_without_a_trace_says_how_to_get_one(fixtures):
    with pytest.raises(WseEmuError, match="rerun with --trace"):
        wse_emu.load(fixtures / "kv_link_5").trace_utilization()


def test_sweep_results_with_units_read(fixtures):
    sw = wse_emu.load(fixtures / "sweep_gpu")
    assert sw.varied == ["workload.trace.rate_scale", "gpu.hbm.peak_bandwidth"]
    assert sw.units == {"workload.trace.rate_scale": "", "gpu.hbm.peak_bandwidth": "TB/s"}
    r = sw.results
    assert list(r["point"]) == ["000", "001", "002", "003"]
    assert list(r["gpu.hbm.peak_bandwidth"]) == [3.35, 4.8, 3.35, 4.8]
    assert list(sw.written["gpu.hbm.peak_bandwidth"]) == ["3.35 TB/s", "4.8 TB/s", "3.35 TB/s", "4.8 TB/s"]
    assert list(r["status"]) == ["ok"] * 4 and list(r["error"]) == [""] * 4
    assert pd.api.types.is_float_dtype(r["requests.tpot_s.p50"])
    # each row is its point's summary
    for p in ["000", "003"]:
        row = r.set_index("point").loc[p]
        assert row["requests.tpot_s.p50"] == pytest.approx(sw.point(p).figure("requests.tpot_s.p50"), rel=1e-9)
    assert len(sw.runs()) == 4
    assert list(sw.host.columns[-3:]) == ["wall_time_s", "cpu_time_s", "peak_rss_bytes"]


def test_sweep_takes_a_results_file_and_names_an_unfinished_one(fixtures, tmp_path):
    assert Sweep(fixtures / "sweep_gpu" / "results.csv").path == fixtures / "sweep_gpu"
    (tmp_path / "points").mkdir()
    with pytest.raises(WseEmuError, match="has not finished"):
        wse_emu.load(tmp_path)
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(WseEmuError, match="not a wse-emu sweep results.csv"):
        wse_emu.load(tmp_path)


def test_regress_checks_figures_against_references(fixtures, tmp_path):
    reg = wse_emu.load(fixtures / "regress")
    assert list(reg.runs) == ["gpu_only"] and reg.failed == {}
    refs = fixtures / "references"
    chk = reg.check(refs)
    assert chk["within"].all()
    assert "seed" not in set(chk["figure"])
    ref = json.loads((refs / "gpu_only.json").read_text())
    assert set(chk["figure"]) == set(ref["figures"])
    # a reference that moved, and a figure the run no longer reports
    ref["figures"]["requests.tpot_s.p99"]["value"] *= 1.01
    ref["figures"]["gone.figure"] = {"value": 1.0}
    (tmp_path / "gpu_only.json").write_text(json.dumps(ref))
    chk = reg.check(tmp_path).set_index("figure")
    assert not chk.loc["requests.tpot_s.p99", "within"]
    assert chk.loc["requests.tpot_s.p99", "change"] == pytest.approx(1 / 1.01 - 1)
    assert not chk.loc["gone.figure", "within"] and math.isnan(chk.loc["gone.figure", "now"])
    assert chk["within"].sum() == len(chk) - 2


def test_regress_records_a_failed_run(fixtures, tmp_path):
    shutil.copytree(fixtures / "regress", tmp_path, dirs_exist_ok=True)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken.stdout.txt").write_text("")
    (tmp_path / "broken.stderr.txt").write_text("wse-emu: error: something\nwse-emu: error: the last line\n")
    reg = wse_emu.load(tmp_path)
    assert reg.failed == {"broken": "wse-emu: error: the last line"}
    with pytest.raises(WseEmuError, match="references"):
        reg.check(tmp_path / "no_references")
