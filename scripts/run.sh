#!/usr/bin/env bash
# Installs what is missing, builds, runs the default experiment and prints its summary.
#   scripts/run.sh [EXPERIMENT.yaml] [extra wse-emu run options]
# Results go to out/<experiment name>/, this script's own folder: each invocation writes
# over the previous one's files there (--force).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
experiment="${1:-configs/experiments/default.yaml}"
shift || true
name="$(basename "$experiment" .yaml)"
build/bin/wse-emu run "$experiment" --out "out/$name" --force "$@"
