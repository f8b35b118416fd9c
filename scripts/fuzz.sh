#!/usr/bin/env bash
# Builds the libFuzzer targets (in build-san/, see scripts/build_san.sh) and runs each
# for SECONDS (default 30). For each target, the saved crashing inputs in
# fuzz/regressions/<target>/ are replayed first; then libFuzzer starts from the seeds in
# fuzz/corpus/<target>/ (read only; new inputs go to build-san/fuzz/corpus/<target>/).
# A finding (crash, sanitizer report, unexpected exception, broken invariant, hang
# longer than the per-input timeout, memory over the limit) is saved to
# build-san/fuzz/findings/<target>/ and makes the script exit 1. docs/trust.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 60 fuzz_config
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
all=(fuzz_units fuzz_config fuzz_hf_config fuzz_azure_trace fuzz_mooncake_trace fuzz_sessions fuzz_op_trace fuzz_synthetic fuzz_faults fuzz_sweep fuzz_regress)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "unknown fuzz target '$t'; targets: ${all[*]}" >&2; exit 2; }
done
timeout_s="${WSE_FUZZ_TIMEOUT:-10}"  # one input taking longer is a hang
# libFuzzer's seed: 0 (the default) draws a new one each run, so every run explores
# afresh; a fixed seed (CI: 1) explores the same inputs in the same order, so that a
# clean run stays clean on the next commit unless the code changed what the inputs do.
seed="${WSE_FUZZ_SEED:-0}"

scripts/install_deps.sh --sanitizers
scripts/build_san.sh "${targets[@]}"

# Leaks are findings too; a failed check stops at once with a symbolized stack.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

out=build-san/fuzz
summary=()
# The fuzzer's CPU time (user and system seconds) is measured with bash's `time`.
TIMEFORMAT='%U %S'
failed=0
clean=0
found=0
for t in "${targets[@]}"; do
  bin="build-san/bin/$t"
  findings="$out/findings/$t"
  work="$out/corpus/$t"
  log="$out/logs/$t.log"
  mkdir -p "$findings" "$work" "$(dirname "$log")"
  status=ok
  # 1. Saved regressions: each must run through without a finding.
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if ((${#regressions[@]})); then
    echo "== $t: replaying ${#regressions[@]} saved regression input(s)"
    if ! "$bin" -timeout="$timeout_s" -rss_limit_mb=2048 "${regressions[@]}" >"$out/logs/$t.regressions.log" 2>&1; then
      echo "!! $t: a saved regression input fails again; see $out/logs/$t.regressions.log"
      tail -n 30 "$out/logs/$t.regressions.log"
      status="REGRESSION"
      failed=1
    fi
  fi
  # 2. Fuzzing for the given time.
  echo "== $t: fuzzing for ${seconds} s"
  start=$(date +%s)
  set +e
  { time "$bin" -seed="$seed" -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$work" "fuzz/corpus/$t" >"$log" 2>&1; } 2>"$out/logs/$t.cpu"
  rc=$?
  set -e
  elapsed=$(($(date +%s) - start))
  cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$out/logs/$t.cpu")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE '(INITED|DONE|NEW|REDUCE|pulse|RELOAD) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 | awk '{print $3 " edges, " $5 " features"}')
  if ((rc != 0)); then
    status="FINDING"
    failed=1
    echo "!! $t: finding (exit $rc); input saved in $findings/; log $log"
    grep -E 'ERROR: |FUZZ FINDING|runtime error|SUMMARY|Test unit written' "$log" | head -n 20 || true
  fi
  if [[ $status == ok ]]; then clean=$((clean + 1)); else found=$((found + 1)); fi
  summary+=("$(printf '%-20s %-10s runs %-9s time %4ss cpu %6ss  coverage %s' "$t" "$status" "${runs:-?}" "$elapsed" "$cpu" "${cov:-?}")")
done
echo
echo "== fuzz summary (${seconds} s per target; findings in $out/findings/)"
printf '%s\n' "${summary[@]}"
echo "fuzz: ${clean} passed, ${found} failed"
exit "$failed"
