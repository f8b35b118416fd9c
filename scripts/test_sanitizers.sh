#!/usr/bin/env bash
# Builds the test suite with clang, AddressSanitizer and UndefinedBehaviorSanitizer into
# build-san/ (scripts/build_san.sh; the fuzz targets come with it) and runs it. Any
# sanitizer report fails the test that triggered it. docs/trust.md.
#   scripts/test_sanitizers.sh [ctest options], e.g. scripts/test_sanitizers.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --sanitizers
scripts/build_san.sh
source scripts/sanitizer_env.sh
# Left out here (they run in scripts/test.sh): the whole-trace runs of the three largest
# shipped experiments, twice each for reproducibility and once for the physical bounds.
# Under ASan they take 45-210 s each (about 9 minutes of CI together) and exercise the
# same code as the smaller shipped experiments that do run here. docs/trust.md, "Time".
exclude="${WSE_SAN_EXCLUDE-Shipped/(Reproducible|PhysicalBounds)\.[A-Za-z]+/(mooncake|azure_code|llama405b)( |\$)}"
ctest --test-dir build-san --output-on-failure -j "${WSE_JOBS:-2}" ${exclude:+-E "$exclude"} "$@"
