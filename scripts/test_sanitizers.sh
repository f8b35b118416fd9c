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
# shipped experiments, twice each for reproducibility and once for the physical bounds;
# and the runs of the default system (Llama-3.1-70B on four CS-3s, whose first decode
# step searches every GEMV shape's mapping: about 20 s of CPU without ASan, 300-700 s
# with it): default and wafer_only in Reproducible and PhysicalBounds, the fault
# schedules (each run with and without its faults), the regression suite, and the
# experiment tests that run it. The wafer code runs here in the Llama-3.1-8B and Qwen3
# experiments' tests. Under ASan they take minutes each and exercise
# the same code as the shipped experiments that do run here. docs/trust.md, "Time".
# Also three tests of a run that fails in the middle of its simulation: LeakSanitizer
# then reports 8 bytes that libsystemc itself allocated (its process list) and does not
# free on that path. They run in scripts/test.sh; freeing the kernel on that path is open.
exclude="${WSE_SAN_EXCLUDE-Shipped/(Reproducible|PhysicalBounds)\.[A-Za-z]+/(mooncake|azure_code|llama405b|default|wafer_only)( |\$)|Experiments\.DefaultIsTheDisaggregatedSystem|Shipped/FaultSchedules\.|Regress\.ShippedReferencesPass|Experiments\.(ResolvedConfigurationRunsToTheSameResult|SameInputsGiveIdenticalOutputs)|Trust\.(QueueOfTransfersPastTheLimitFailsTheRun|RunFailureEndsWithOneLineOfItsOwn|SweepErrorColumnHoldsTheToolsOwnMessage)}"
ctest --test-dir build-san --output-on-failure -j "${WSE_JOBS:-2}" ${exclude:+-E "$exclude"} "$@"
