"""A PEP 517 / PEP 660 build backend for the wse_emu package, standard library only.

pip builds a package in an isolated environment into which it installs the backend's
requirements from the package index; this backend needs none, so `pip install -e python`
works on a machine that reaches Debian's archive but not PyPI. The name, version and
dependencies come from pyproject.toml.

An editable install is a wheel holding one .pth file that puts python/ on sys.path: the
checkout's own files are imported (edits need no reinstall), and the package finds the
checkout's build/bin/wse-emu beside it.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # python/
PACKAGE = "wse_emu"
WHEEL = "Wheel-Version: 1.0\nGenerator: wse_emu_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _base(p: dict) -> str:
    return f"{p['name']}-{p['version']}"


def _metadata(p: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p['description']}", f"Requires-Python: {p['requires-python']}"]
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _sources() -> list[str]:
    return [f"{PACKAGE}/{f.name}" for f in sorted((ROOT / PACKAGE).glob("*.py"))]


def _write_wheel(directory: str, files: dict[str, bytes]) -> str:
    p = _project()
    info = _base(p) + ".dist-info"
    files = {**files, f"{info}/METADATA": _metadata(p).encode(), f"{info}/WHEEL": WHEEL.encode()}
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = _base(p) + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return wheel


def get_requires_for_build_wheel(config_settings=None) -> list[str]:
    return []


get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings=None) -> str:
    p = _project()
    info = _base(p) + ".dist-info"
    d = Path(metadata_directory) / info
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(_metadata(p))
    (d / "WHEEL").write_text(WHEEL)
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory: str, config_settings=None, metadata_directory=None) -> str:
    return _write_wheel(wheel_directory, {rel: (ROOT / rel).read_bytes() for rel in _sources()})


def build_editable(wheel_directory: str, config_settings=None, metadata_directory=None) -> str:
    return _write_wheel(wheel_directory, {f"{PACKAGE}.pth": (str(ROOT) + "\n").encode()})


def build_sdist(sdist_directory: str, config_settings=None) -> str:
    p = _project()
    name = _base(p) + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "_backend/wse_emu_backend.py", *_sources()]:
            t.add(ROOT / rel, arcname=f"{_base(p)}/{rel}")
        data = _metadata(p).encode()
        info = tarfile.TarInfo(f"{_base(p)}/PKG-INFO")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return name
