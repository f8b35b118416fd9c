#!/usr/bin/env bash
# Configures (once) and builds the sanitizer build build-san/: clang, AddressSanitizer +
# UndefinedBehaviorSanitizer at -O1, with the libFuzzer targets of fuzz/ (project code
# carries libFuzzer's coverage instrumentation, so one build serves the tests and the
# fuzzers). Extra arguments are ninja targets (default: everything). docs/trust.md.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${WSE_JOBS:-2}"
source scripts/ccache_env.sh
if [ ! -f build-san/build.ninja ]; then
  # -O1: less compile time than -O2 and still quick tests; line tables are enough for
  # symbolized sanitizer reports. Benchmarks are left out (speed is not measured under
  # sanitizers).
  # -asan-stack=0: no redzones around stack variables. libsystemc's coroutines announce
  # their stack switches to ASan, but not the bounds of the main stack; after the first
  # simulation ASan mistakes the main stack's extent ("ignoring requested
  # __asan_handle_no_return"), frames unwound by an exception keep their redzones
  # poisoned, and later calls on that stack are reported as stack-buffer-overflows that
  # are not there. Heap, globals, leaks and undefined behaviour are still checked.
  cmake -S . -B build-san -G Ninja \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -mllvm -asan-stack=0" \
    -DWSE_ENABLE_ASAN=ON -DWSE_ENABLE_UBSAN=ON \
    -DWSE_BUILD_FUZZERS=ON -DWSE_BUILD_BENCH=OFF -DWSE_WERROR=ON \
    ${WSE_LAUNCHER:+"-DCMAKE_CXX_COMPILER_LAUNCHER=$WSE_LAUNCHER"}
elif ! grep -q '^WSE_WERROR:BOOL=ON$' build-san/CMakeCache.txt; then
  cmake -S . -B build-san -DWSE_WERROR=ON
fi
cmake --build build-san -j "$jobs" ${1:+--target "$@"}
