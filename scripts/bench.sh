#!/usr/bin/env bash
# Builds (Release flags of the default build) and runs every speed benchmark in bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
shopt -s nullglob
for b in build/bin/bench_*; do
  echo "== $b"
  "$b"
done
