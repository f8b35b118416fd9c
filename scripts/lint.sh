#!/usr/bin/env bash
# Style checks of the project's own C++ (every *.h and *.cpp that git tracks; the
# dependencies are Debian packages, none is vendored):
#   (a) clang-format --dry-run -Werror with the root .clang-format;
#   (b) clang-tidy with the root .clang-tidy (naming, bugprone-*, no mutable globals),
#       through build/compile_commands.json (CMake writes it: CMAKE_EXPORT_COMPILE_COMMANDS
#       in the root CMakeLists.txt; scripts/build.sh configures build/). A header is
#       checked through a translation unit that includes it: its own .cpp if it has one.
#
#   scripts/lint.sh                  the files changed in the working tree (staged or not,
#                                    and new files) and in the last commit
#   scripts/lint.sh --base REF       the files changed since the branch left REF
#                                    (git merge-base REF HEAD), working tree included
#   scripts/lint.sh --all            every project C++ file
#   options: --format-only, --tidy-only, -j N (clang-tidy processes; default: nproc),
#            -p DIR (the build folder whose compile_commands.json to use; default build)
#
# Exit 0: clean; 1: a finding (each printed with file:line); 2: bad usage or a missing
# tool or build folder. fuzz/ is formatted but not tidied unless -p names a folder
# built with -DWSE_BUILD_FUZZERS=ON (clang only; build-san/), since build/ compiles none
# of it.
#
# Time of --all, measured on the 2-core development machine (Debian 12, clang-tidy 14)
# while other builds shared it (load about 3): clang-format 46 s (6 s of CPU; 349
# files); clang-tidy about 24 min at -j 2 (176 of the 207 translation units took 1215 s).
# A unit costs 4.3 s of CPU on average (21 units in 91 s; about 2 s of each parses
# SystemC, gtest and the STL), so on two free cores --all takes about 8 min: for CI,
# tidy the changed files (--base) and format-check all. The default (a commit's files)
# takes under a minute on free cores.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '/^#   scripts\/lint.sh /,/^#            -p/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

mode=changed
base=""
do_format=1
do_tidy=1
jobs="$(nproc)"
build=build
while (($#)); do
  case "$1" in
    --all) mode=all ;;
    --base)
      [[ $# -ge 2 ]] || usage
      mode=base
      base="$2"
      shift
      ;;
    --format-only) do_tidy=0 ;;
    --tidy-only) do_format=0 ;;
    -j)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || usage
      jobs="$2"
      shift
      ;;
    -p)
      [[ $# -ge 2 ]] || usage
      build="$2"
      shift
      ;;
    -h | --help) usage ;;
    *)
      echo "lint.sh: unknown argument '$1'" >&2
      usage
      ;;
  esac
  shift
done

# The Debian 12 tools (version 14): another version formats some constructs otherwise.
pick() {
  if command -v "$1-14" > /dev/null; then
    echo "$1-14"
  elif command -v "$1" > /dev/null; then
    echo "$1"
  else
    echo "lint.sh: $1 is not installed; run scripts/install_deps.sh (Debian package $1)" >&2
    exit 2
  fi
}

# Project C++ files, one per line, relative to the root.
cxx_filter() { grep -E '\.(h|cpp)$' | while read -r f; do [[ -f "$f" ]] && echo "$f"; done || true; }
case "$mode" in
  all) files="$(git ls-files -- '*.h' '*.cpp' | cxx_filter)" ;;
  changed)
    since="HEAD~1"
    git rev-parse -q --verify HEAD~1 > /dev/null || since="$(git hash-object -t tree /dev/null)"
    files="$({ git diff --name-only "$since" --; git ls-files --others --exclude-standard; } | sort -u | cxx_filter)"
    ;;
  base)
    if ! merge_base="$(git merge-base "$base" HEAD 2> /dev/null)"; then
      echo "lint.sh: --base $base: not a commit with a common ancestor with HEAD (try origin/main or main)" >&2
      exit 2
    fi
    files="$({ git diff --name-only "$merge_base" --; git ls-files --others --exclude-standard; } | sort -u | cxx_filter)"
    ;;
esac
if [[ -z "$files" ]]; then
  echo "lint.sh: no C++ files to check"
  exit 0
fi
count=$(wc -l <<< "$files")
status=0

if ((do_format)); then
  clang_format="$(pick clang-format)"
  start=$SECONDS
  if ! xargs -d '\n' "$clang_format" --dry-run -Werror <<< "$files"; then
    unformatted="$(while read -r f; do "$clang_format" "$f" | cmp -s - "$f" || echo "$f"; done <<< "$files")"
    echo "lint.sh: $(wc -l <<< "$unformatted") of $count file(s) not clang-format clean; scripts/format.sh FILE... formats them" >&2
    status=1
  fi
  echo "lint.sh: clang-format on $count file(s): $((SECONDS - start)) s"
fi

if ((do_tidy)); then
  clang_tidy="$(pick clang-tidy)"
  db="$build/compile_commands.json"
  if [[ ! -f "$db" ]]; then
    echo "lint.sh: $db not found; configure the build first (scripts/build.sh, or -p DIR)" >&2
    exit 2
  fi
  # The translation units of the compilation database, relative to the root.
  root="$(pwd)"
  units="$(python3 -c '
import json, os, sys
root = sys.argv[2]
for e in json.load(open(sys.argv[1])):
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    if f.startswith(root + "/"):
        print(os.path.relpath(f, root))
' "$db" "$root" | sort -u)"
  # Each file to tidy: a .cpp in the database itself; a header through its own .cpp,
  # else the first unit that includes it (a header only other headers include is
  # checked by --all, through the units that include those).
  targets="$(while read -r f; do
    case "$f" in
      *.cpp) if grep -qxF "$f" <<< "$units"; then echo "$f"; fi ;;
      *.h)
        if grep -qxF "${f%.h}.cpp" <<< "$units"; then
          echo "${f%.h}.cpp"
        else
          xargs -d '\n' grep -lF "#include \"$f\"" <<< "$units" | head -1 || true
        fi
        ;;
    esac
  done <<< "$files" | sort -u)"
  skipped=$(comm -23 <(grep '\.cpp$' <<< "$files" | sort) <(sort <<< "$units") | wc -l)
  if [[ -z "$targets" ]]; then
    echo "lint.sh: clang-tidy: no translation unit of $db to check"
  else
    start=$SECONDS
    n=$(wc -l <<< "$targets")
    # --quiet drops clang-tidy's count of findings suppressed in system headers.
    if ! xargs -d '\n' -n 1 -P "$jobs" "$clang_tidy" -p "$build" --quiet --warnings-as-errors='*' \
      <<< "$targets" 2> >(grep -v ' warnings\? generated\.$' >&2); then
      status=1
      echo "lint.sh: clang-tidy found problems (above)" >&2
    fi
    echo "lint.sh: clang-tidy on $n translation unit(s), -j $jobs: $((SECONDS - start)) s" \
      "($skipped changed .cpp file(s) not in $db skipped)"
  fi
fi
exit $status
