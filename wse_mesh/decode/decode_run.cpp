// Runs the `decode` benchmark without the wse-emu command: wse_decode_run OUT_DIR [--quick]
// [--prefill] (--prefill: the `prefill-wafer` benchmark instead)
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "wse_mesh/benches/decode_bench.h"

// The SystemC library provides main() and calls sc_main().
int sc_main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [--quick] [--prefill]\n", argv[0]);
    return 2;
  }
  wse::sim::BenchArgs args;
  args.out_dir = argv[1];
  bool prefill = false;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) args.quick = true;
    if (std::strcmp(argv[i], "--prefill") == 0) prefill = true;
  }
  try {
    std::filesystem::create_directories(args.out_dir);
    const auto files = prefill ? wse::wafer::bench_prefill_wafer(args) : wse::wafer::bench_decode(args);
    for (const auto& f : files) std::printf("wrote %s\n", (args.out_dir / f).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
