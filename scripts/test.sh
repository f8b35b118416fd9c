#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite: ctest, then the Python
# package's tests (python/tests, pytest) with Debian's python3, which has the packages
# install_deps.sh installed (another python3 first on the PATH may not).
#   scripts/test.sh [ctest options], e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "${WSE_JOBS:-2}" "$@"
"${WSE_PYTHON:-/usr/bin/python3}" -m pytest python/tests
