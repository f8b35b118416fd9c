#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite.
#   scripts/test.sh [ctest options], e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "${WSE_JOBS:-2}" "$@"
