#!/usr/bin/env bash
# Installs the Debian packages wse-emu needs to build and test; skips what is present.
#   scripts/install_deps.sh [--sanitizers]   (also clang, its sanitizer and libFuzzer
#                                             runtimes and llvm-symbolizer: build-san/)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  ccache                    # compiled objects reused across build folders and checkouts
  libsystemc-dev            # SystemC 2.3.4 + TLM-2.0
  libyaml-cpp-dev           # configuration files
  libboost-program-options-dev
  nlohmann-json3-dev        # JSON results and traces
  libfmt-dev
  libjemalloc-dev           # the wse-emu program's allocator (CMake WSE_JEMALLOC; same results, faster)
  googletest libgtest-dev libgmock-dev
  libbenchmark-dev          # speed benchmarks in bench/
  clang-format clang-tidy   # scripts/lint.sh and scripts/format.sh (.clang-format, .clang-tidy)
  python3 python3-matplotlib python3-pandas  # the wse_emu package (python/) and the plots (scripts/plot_*.py)
  python3-pytest python3-pip python3-venv     # its tests, and `pip install -e python` (docs/python.md)
  slurm-wlm munge           # sweep --backend slurm and its one-node test cluster
)
if [[ "${1:-}" == --sanitizers ]]; then
  packages+=(
    clang                   # scripts/test_sanitizers.sh, scripts/fuzz.sh
    libclang-rt-dev         # ASan/UBSan runtimes and libFuzzer (-fsanitize=fuzzer)
    llvm                    # llvm-symbolizer: source lines in sanitizer reports
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
