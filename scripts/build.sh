#!/usr/bin/env bash
# Configures (once) and builds wse-emu into build/ (incremental on later runs).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${WSE_JOBS:-2}"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${WSE_BUILD_TYPE:-RelWithDebInfo}" "$@"
fi
cmake --build build -j "$jobs"
