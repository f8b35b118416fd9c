#!/usr/bin/env bash
# Fuzzes every target in turn for HOURS in total (default 1), in rounds: each round gives
# every target the same slice (at most 10 minutes), so an interrupted run has spread its
# time evenly. Each round is scripts/fuzz.sh, whose corpus in build-san/fuzz/corpus/<target>/
# is kept and grows from round to round (and from one invocation to the next). Every
# target's cumulative CPU time over all invocations is added up in
# build-san/fuzz/cpu_seconds.tsv (target, seconds) and printed at the end; docs/trust.md
# records those figures. Stops at the first finding (exit 1). docs/trust.md.
#
#   scripts/fuzz_long.sh [HOURS] [TARGET...]     e.g. scripts/fuzz_long.sh 8
set -euo pipefail
cd "$(dirname "$0")/.."
hours="${1:-1}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  read -r -a targets <<<"$(sed -n 's/^all=(\(.*\))$/\1/p' scripts/fuzz.sh)"
fi
[[ $hours =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "HOURS must be a number, e.g. 1 or 0.5; found '$hours'" >&2; exit 2; }
total=$(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }')
((total >= ${#targets[@]})) || { echo "HOURS too small: at least one second per target" >&2; exit 2; }
slice=$((total / ${#targets[@]}))
((slice <= 600)) || slice=600
rounds=$(((total / ${#targets[@]} + slice - 1) / slice))
ledger=build-san/fuzz/cpu_seconds.tsv
echo "== fuzz_long: ${#targets[@]} targets, ${hours} h: $rounds round(s) of ${slice} s per target"
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds"
  for t in "${targets[@]}"; do
    start=$(date +%s)
    scripts/fuzz.sh "$slice" "$t" > "build-san/fuzz/logs/long.$t.log" 2>&1 || {
      tail -n 25 "build-san/fuzz/logs/long.$t.log"
      echo "fuzz_long: a finding in $t (round $r); see build-san/fuzz/findings/$t/" >&2
      exit 1
    }
    # fuzz.sh's summary line: "... time NNs cpu NN.Ns ..." (the fuzzer's user + system time).
    cpu=$(sed -n "s/^$t .* cpu *\([0-9.]*\)s .*/\1/p" "build-san/fuzz/logs/long.$t.log" | tail -n 1)
    [[ -n $cpu ]] || cpu=$(($(date +%s) - start))
    mkdir -p "$(dirname "$ledger")"
    touch "$ledger"
    awk -v t="$t" -v c="$cpu" 'BEGIN { FS = OFS = "\t"; done = 0 }
      $1 == t { $2 += c; done = 1 } { print } END { if (!done) print t, c }' "$ledger" > "$ledger.tmp"
    mv "$ledger.tmp" "$ledger"
    grep -E "^$t " "build-san/fuzz/logs/long.$t.log" | tail -n 1
  done
done
echo
echo "== cumulative CPU time per target (all invocations; $ledger)"
sort "$ledger" | awk -F'\t' '{ printf "%-20s %8.0f s  (%.2f h)\n", $1, $2, $2 / 3600 }'
