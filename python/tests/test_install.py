"""`pip install -e python` into a virtual environment that sees Debian's pandas and
matplotlib, with no package index: the promise of README.md and docs/python.md."""
import importlib.util
import subprocess
import venv

import pytest

from conftest import PYTHON


def test_editable_install_without_an_index(fixtures, tmp_path):
    if importlib.util.find_spec("pip") is None or importlib.util.find_spec("ensurepip") is None:
        pytest.skip("needs Debian's python3-pip and python3-venv (scripts/install_deps.sh)")
    env = tmp_path / "venv"
    # Without a pip of its own (copying one in takes seconds): the system's pip, seen
    # through the system site packages, installs into the environment.
    venv.create(env, system_site_packages=True, with_pip=False)
    python = env / "bin" / "python3"
    pip = subprocess.run([python, "-m", "pip", "install", "--no-index", "-q", "-e", PYTHON],
                         capture_output=True, text=True, cwd=tmp_path)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    code = ("import wse_emu, sys; r = wse_emu.load(sys.argv[1]); print(wse_emu.__file__); "
            "print(r.summary.loc['requests.completed', 'value'])")
    out = subprocess.run([python, "-c", code, fixtures / "kv_link_5"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    where, completed = out.stdout.split()
    assert where == str(PYTHON / "wse_emu" / "__init__.py")  # the checkout's own files
    assert completed == "5"
