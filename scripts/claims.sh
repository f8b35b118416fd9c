#!/usr/bin/env bash
# The claims study (issue 15, item 5; docs/claims.md): runs every sweep of
# configs/studies/claims/sweeps/ into OUT/<sweep name>/, compares the systems at two
# points with `wse-emu compare`, then writes the study's tables and plots into OUT
# (scripts/claims_report.py: claims_tables.md, claims_points.csv, claims_*.png).
#
#   scripts/claims.sh OUT
#
# OUT must be a new or empty folder, or the OUT of an earlier run of this script (its
# sweeps are resumed: complete points are not run again). About 15 minutes of one core.
# Environment: WSE_EMU_BIN (default build/bin/wse-emu), CLAIMS_JOBS (points run at once,
# default 1), CLAIMS_NICE (default 10).
set -euo pipefail

die() { echo "claims.sh: error: $*" >&2; exit 2; }

[ $# -eq 1 ] || die "usage: scripts/claims.sh OUT (one argument, the output folder)"
out="$1"
[ -n "$out" ] || die "OUT is empty; give the output folder"
repo="$(cd "$(dirname "$0")/.." && pwd)"

bin="${WSE_EMU_BIN:-$repo/build/bin/wse-emu}"
[ -f "$bin" ] && [ -x "$bin" ] || die "no wse-emu program at '$bin': build it with scripts/build.sh (or set WSE_EMU_BIN)"
/usr/bin/python3 -c "import pandas, matplotlib" 2>/dev/null \
  || die "python3-pandas and python3-matplotlib are needed for the tables and plots (scripts/install_deps.sh)"

# OUT: new, empty, or an earlier claims study's (marked); never anything else.
if [ -e "$out" ] && [ ! -d "$out" ]; then
  die "'$out' exists and is not a folder"
fi
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/.claims_study" ]; then
  die "'$out' is not empty and is not the output of scripts/claims.sh (no .claims_study in it); give a new or empty folder"
fi
mkdir -p "$out" 2>/dev/null || die "cannot create '$out'"
[ -w "$out" ] || die "'$out' is not writable"
out="$(cd "$out" && pwd)"

jobs="${CLAIMS_JOBS:-1}"
nice="${CLAIMS_NICE:-10}"
touch "$out/.claims_study"

# The trace paths in the sweeps are relative to the repository root.
cd "$repo"
start=$SECONDS
for sweep in configs/studies/claims/sweeps/*.yaml; do
  name="$(basename "$sweep" .yaml)"
  echo "claims.sh: $name ($((SECONDS - start)) s so far)"
  nice -n "$nice" "$bin" sweep "$sweep" --out "$out/$name" --jobs "$jobs" --quiet \
    || die "sweep $sweep failed (exit $?); see $out/$name/results.csv and points/*/stderr.txt"
done

# wse-emu compare of every system at the conversation trace's own rate (point 000) and
# at 16x (point 002), against conventional GPU serving on one p5.48xlarge.
for point in 000:1x 002:16x; do
  id="${point%%:*}"; tag="${point##*:}"
  cmp="$out/compare_conversation_$tag"
  mkdir -p "$cmp/runs"
  dirs=()
  for d in "$out"/rates_*; do  # named by system, so that compare's columns say which is which
    system="${d##*/rates_}"
    ln -sfn "../../$(basename "$d")/points/$id" "$cmp/runs/$system"
    dirs+=("$cmp/runs/$system")
  done
  "$bin" compare "${dirs[@]}" --baseline "$cmp/runs/h100_only" --out "$cmp" \
    > "$cmp/compare.txt" || die "wse-emu compare failed"
  /usr/bin/python3 scripts/plot_compare.py "$cmp" > /dev/null || die "plot_compare.py failed"
done

/usr/bin/python3 scripts/claims_report.py "$out" || die "the tables and plots could not be written"
echo "claims.sh: done in $((SECONDS - start)) s; tables in $out/claims_tables.md, plots $out/claims_*.png"
