"""The wse_emu package from this checkout (no install needed), its fixtures and binary."""
import os
import sys
from pathlib import Path

import pytest

PYTHON = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

FIXTURES = PYTHON / "tests" / "fixtures"
REPO = PYTHON.parent


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def wse_emu_bin() -> Path:
    """The built wse-emu (WSE_EMU_BIN or build/bin/wse-emu); the test is skipped without one."""
    path = Path(os.environ.get("WSE_EMU_BIN", REPO / "build" / "bin" / "wse-emu"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"no wse-emu binary at {path} (scripts/build.sh)")
    return path
