#!/usr/bin/env bash
# Formats C++ in place with the root .clang-format (clang-format 14, as scripts/lint.sh
# checks it):
#   scripts/format.sh              every project C++ file (every *.h and *.cpp git tracks)
#   scripts/format.sh FILE...      those files
#   scripts/format.sh --dry-run    lists the files it would change, changes none
# Prints how many files it changed (or would change).
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
if [[ "${1:-}" == --dry-run ]]; then
  dry=1
  shift
fi
if command -v clang-format-14 > /dev/null; then
  clang_format=clang-format-14
elif command -v clang-format > /dev/null; then
  clang_format=clang-format
else
  echo "format.sh: clang-format is not installed; run scripts/install_deps.sh" >&2
  exit 2
fi
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files -- '*.h' '*.cpp')
fi
changed=0
for f in "${files[@]}"; do
  if [[ ! -f "$f" ]]; then
    echo "format.sh: $f: no such file" >&2
    exit 2
  fi
  if ! "$clang_format" "$f" | cmp -s - "$f"; then
    changed=$((changed + 1))
    if ((dry)); then
      echo "$f"
    else
      "$clang_format" -i "$f"
    fi
  fi
done
if ((dry)); then
  echo "format.sh: $changed of ${#files[@]} file(s) would change"
else
  echo "format.sh: formatted $changed of ${#files[@]} file(s)"
fi
