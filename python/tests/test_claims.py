"""wse_emu.claims: the claims study's capacity reading, tables and folder loading (docs/claims.md)."""
import math
import shutil

import pandas as pd
import pytest

from wse_emu import WseEmuError
from wse_emu import claims


def points(rows):
    """A study table as load_study returns it, from (system, trace, rate, tokens/s, TPOT p99)."""
    t = pd.DataFrame(rows, columns=["system", "trace", "rate", "output_tokens_per_s", "tpot_p99_s"])
    t["kind"] = "rates"
    return t


def test_capacity_interpolates_where_tpot_crosses_the_target():
    t = points([("a", "conv", 1, 1000.0, 0.004), ("a", "conv", 4, 3000.0, 0.006), ("a", "conv", 16, 5000.0, 0.100)])
    cap = claims.capacity_at_tpot(t, 0.005).iloc[0]
    # 0.005 is half way from 0.004 to 0.006: half way from 1,000 to 3,000 tokens/s
    assert cap["capacity_tokens_per_s"] == pytest.approx(2000.0)
    assert cap["how"] == "interpolated"
    cap = claims.capacity_at_tpot(t, 0.053).iloc[0]
    assert cap["capacity_tokens_per_s"] == pytest.approx(3000.0 + 0.5 * 2000.0)


def test_capacity_is_a_lower_bound_when_every_point_meets_it_and_zero_when_none_does():
    t = points([("a", "conv", 1, 1000.0, 0.002), ("a", "conv", 16, 4000.0, 0.0022),
                ("b", "conv", 1, 1100.0, 0.030), ("b", "conv", 16, 3000.0, 0.300)])
    cap = claims.capacity_at_tpot(t, 0.005).set_index("system")
    assert cap.loc["a", "capacity_tokens_per_s"] == 4000.0 and cap.loc["a", "how"] == "at least"
    assert cap.loc["b", "capacity_tokens_per_s"] == 0.0 and cap.loc["b", "how"] == "none"


def test_capacity_takes_the_points_in_order_of_throughput_not_rate():
    # a saturated system may serve fewer tokens/s at a higher rate (a finite trace drains)
    t = points([("a", "conv", 16, 2000.0, 0.009), ("a", "conv", 1, 1000.0, 0.001), ("a", "conv", 4, 3000.0, 0.020)])
    cap = claims.capacity_at_tpot(t, 0.005).iloc[0]
    assert cap["capacity_tokens_per_s"] == pytest.approx(1000.0 + 0.5 * 1000.0)


def test_capacity_table_ratios_to_the_reference():
    t = points([("cs3_trn2", "conversation", 1, 1000.0, 0.002), ("cs3_trn2", "conversation", 4, 4000.0, 0.002),
                ("cs3_alone", "conversation", 1, 1000.0, 0.003), ("cs3_alone", "conversation", 4, 4000.0, 0.007),
                ("h100_only", "conversation", 1, 900.0, 0.009)])
    table = claims.capacity_table(t, [0.005], "conversation", ["cs3_trn2", "cs3_alone", "h100_only"])
    assert list(table["system"]) == [claims.LABELS[s] for s in ("cs3_trn2", "cs3_alone", "h100_only")]
    # cs3_alone crosses 5 ms half way between its points: 2,500 tokens/s; cs3_trn2 never does
    assert list(table["TPOT p99 <= 5 ms"]) == ["4,000+ (1.60x)", "2,500 (1.00x)", "0"]


def test_markdown_and_fmt():
    assert claims.fmt(None) == "-" and claims.fmt(math.nan) == "-"
    assert claims.fmt(12345.6) == "12,346"
    assert claims.fmt(0.0012345) == "0.00123"
    assert claims.fmt(3.14159) == "3.14"
    text = claims.markdown(pd.DataFrame({"x": [1.5, math.nan], "name": ["a", "b"]}))
    assert text.splitlines() == ["| x | name |", "|---|---|", "| 1.5 | a |", "| - | b |"]
    assert claims.ratio(1.0, 0.0) != claims.ratio(1.0, 0.0)  # NaN


def test_trace_names():
    assert claims.trace_name("workloads/data/traces/azure2023_conv.csv") == "conversation"
    assert claims.trace_name("workloads/data/traces/azure2023_code.csv") == "code"


def test_load_study_reads_sweep_folders(fixtures, tmp_path):
    # a sweep folder named as the study names them: <kind>_<system>
    shutil.copytree(fixtures / "sweep_gpu", tmp_path / "rates_h100_only")
    t = claims.load_study(tmp_path)
    assert set(t["system"]) == {"h100_only"} and set(t["kind"]) == {"rates"}
    assert t["tokens_per_s_per_user"].iloc[0] == pytest.approx(1.0 / t["tpot_p50_s"].iloc[0])
    shutil.copytree(fixtures / "sweep_gpu", tmp_path / "rates_nonesuch")
    with pytest.raises(WseEmuError, match="not one of the study's"):
        claims.load_study(tmp_path)


def test_load_study_refuses_a_folder_without_sweeps(tmp_path):
    with pytest.raises(WseEmuError, match="no sweep folders"):
        claims.load_study(tmp_path)


SCRIPT = __import__("pathlib").Path(__file__).resolve().parents[2] / "scripts" / "claims.sh"


def run_script(*args, env=None):
    import os
    import subprocess
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def test_claims_sh_refuses_a_missing_binary_before_touching_out(tmp_path):
    out = tmp_path / "new"
    p = run_script(str(out), env={"WSE_EMU_BIN": str(tmp_path / "no-such-wse-emu")})
    assert p.returncode == 2
    assert "no wse-emu program at" in p.stderr and "scripts/build.sh" in p.stderr
    assert not out.exists()


def test_claims_sh_refuses_bad_out(tmp_path, wse_emu_bin):
    env = {"WSE_EMU_BIN": str(wse_emu_bin)}
    f = tmp_path / "file"
    f.write_text("x")
    p = run_script(str(f), env=env)
    assert p.returncode == 2 and "is not a folder" in p.stderr
    p = run_script(str(tmp_path), env=env)  # not empty, not a study's output
    assert p.returncode == 2 and "not the output of scripts/claims.sh" in p.stderr
    p = run_script(env=env)
    assert p.returncode == 2 and "usage" in p.stderr


def test_every_point_of_the_study_validates(wse_emu_bin):
    """Each point of configs/studies/claims/sweeps/*.yaml, as `wse-emu sweep` would run it
    (its set: and grid values as --set, from the repository root), passes `wse-emu check`."""
    import itertools
    import subprocess

    import wse_emu
    yaml = pytest.importorskip("yaml")
    repo = SCRIPT.parents[1]
    sweeps = sorted((repo / "configs" / "studies" / "claims" / "sweeps").glob("*.yaml"))
    assert len(sweeps) >= 9
    systems = {p.stem for p in (repo / "configs" / "studies" / "claims").glob("*.yaml")} - {"study"}
    assert systems == set(claims.LABELS)
    for sweep in sweeps:
        doc = yaml.safe_load(sweep.read_text())
        kind, _, system = sweep.stem.partition("_")
        assert system in claims.LABELS and kind in ("rates", "mix", "pool"), sweep.name
        experiment = (sweep.parent / doc["experiment"]).resolve()
        fixed = [f"{k}={wse_emu.config_text(v)}" for k, v in (doc.get("set") or {}).items()]
        grid = doc.get("grid") or {}
        for values in itertools.product(*grid.values()):
            sets = fixed + [f"{k}={wse_emu.config_text(v)}" for k, v in zip(grid, values)]
            args = [str(wse_emu_bin), "check", str(experiment)] + sum((["--set", s] for s in sets), [])
            p = subprocess.run(args, cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            assert p.returncode == 0, f"{sweep.name} {sets}: {p.stderr}"
