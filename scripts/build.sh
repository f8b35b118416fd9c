#!/usr/bin/env bash
# Configures (once) and builds wse-emu into build/ (incremental on later runs).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${WSE_JOBS:-2}"
source scripts/ccache_env.sh
# Warnings are errors here (WSE_WERROR; off by default for a plain CMake build).
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${WSE_BUILD_TYPE:-RelWithDebInfo}" -DWSE_WERROR=ON \
    ${WSE_LAUNCHER:+"-DCMAKE_CXX_COMPILER_LAUNCHER=$WSE_LAUNCHER"} "$@"
elif ! grep -q '^WSE_WERROR:BOOL=ON$' build/CMakeCache.txt; then
  cmake -S . -B build -DWSE_WERROR=ON
fi
cmake --build build -j "$jobs"
