"""Drive the wse-emu binary: one `wse-emu run` or `wse-emu sweep` per call, as a subprocess.

A subprocess is the right boundary, not a binding: SystemC elaborates a design once per
process (modules cannot be torn down and built again), so every run needs a process of
its own, exactly as `wse-emu sweep` runs each point.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping

from .results import Run, Sweep, WseEmuError, _repo_root

# Exit statuses of wse-emu (README): 0 success, 1 the run failed, 2 bad input.
_EXIT = {1: "the run failed", 2: "bad input"}


def binary() -> Path:
    """The wse-emu program: $WSE_EMU_BIN, else build/bin/wse-emu of the checkout this
    package is in."""
    env = os.environ.get("WSE_EMU_BIN")
    path = Path(env) if env else _repo_root() / "build" / "bin" / "wse-emu"
    if not (path.is_file() and os.access(path, os.X_OK)):
        how = "WSE_EMU_BIN names" if env else "build it with scripts/build.sh, or set WSE_EMU_BIN to"
        raise WseEmuError(f"'{path}': no wse-emu program there; {how} the wse-emu binary")
    return path


def config_text(value: Any) -> str:
    """A Python value as configuration-language text for --set: True -> 'true',
    [1, 2] -> '[1, 2]', {'a': 1} -> '{a: 1}', '400 Gb/s' as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(config_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {config_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def _call(args: list[str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    cmd = [str(binary()), *args]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode not in ok:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        why = _EXIT.get(proc.returncode, f"exit status {proc.returncode}")
        detail = "\n".join(lines[-5:]) or "(nothing on stderr)"
        raise WseEmuError(f"{' '.join(cmd)}: {why} (exit {proc.returncode}):\n{detail}")
    return proc


def run(experiment: str | Path, out: str | Path, set: Mapping[str, Any] | None = None,  # noqa: A002
        trace: bool = False, force: bool = False) -> Run:
    """`wse-emu run EXPERIMENT --out OUT [--set KEY=VALUE ...] [--trace] [--force] --quiet`,
    then the folder as a Run. set: configuration keys and values (text with units,
    numbers, booleans, lists), e.g. {"workload.trace.limit": 50, "efa.link.bandwidth":
    "400 Gb/s"}. OUT must be new or empty unless force. Raises WseEmuError with the
    program's own message on bad input (exit 2) or a failed run (exit 1)."""
    args = ["run", str(experiment), "--out", str(out), "--quiet"]
    for key, value in (set or {}).items():
        args += ["--set", f"{key}={config_text(value)}"]
    if trace:
        args.append("--trace")
    if force:
        args.append("--force")
    _call(args)
    return Run(out)


def _sweep_file(experiment: str | Path, grid: Mapping[str, list], zip: Mapping[str, list] | None,  # noqa: A002
                set: Mapping[str, Any] | None) -> str:  # noqa: A002
    lines = ["description: written by wse_emu.sweep()", f"experiment: {Path(experiment).resolve()}"]
    for section, keys in [("set", set), ("grid", grid), ("zip", zip)]:
        if keys:
            lines.append(f"{section}:")
            lines += [f"  {k}: {config_text(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def sweep(sweep_file: str | Path | None = None, out: str | Path = "", *, experiment: str | Path | None = None,
          grid: Mapping[str, list] | None = None, zip: Mapping[str, list] | None = None,  # noqa: A002
          set: Mapping[str, Any] | None = None, jobs: int | None = None,  # noqa: A002
          backend: str = "local", force: bool = False) -> Sweep:
    """`wse-emu sweep SWEEP_FILE --out OUT`, then the folder as a Sweep. Instead of a
    sweep file, give experiment= with grid= (and optionally zip=, set=): the sweep file
    is written for you (docs/sweeps.md has the language). Points that fail are rows of
    results with their status and error; bad input (exit 2) raises WseEmuError."""
    if not out:
        raise WseEmuError("sweep: give out=, the folder for results.csv and the points")
    if (sweep_file is None) == (experiment is None):
        raise WseEmuError("sweep: give either a sweep file or experiment= with grid=")
    if experiment is not None and not (grid or zip):
        raise WseEmuError("sweep: experiment= needs grid= or zip=, the keys to vary")
    args = ["--out", str(out), "--backend", backend]
    if jobs is not None:
        args += ["--jobs", str(jobs)]
    if force:
        args.append("--force")
    if sweep_file is not None:
        proc = _call(["sweep", str(sweep_file), *args], ok=(0, 1))
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="wse_emu_sweep_") as f:
            f.write(_sweep_file(experiment, grid or {}, zip, set))
            f.flush()
            proc = _call(["sweep", f.name, *args], ok=(0, 1))
    if not (Path(out) / "results.csv").is_file():  # exit 1 before the points' results were gathered
        raise WseEmuError(f"wse-emu sweep wrote no '{Path(out) / 'results.csv'}':\n{proc.stderr.strip()}")
    return Sweep(out)
