// Runs the `decode` benchmark without the wse-emu command: wse_decode_run OUT_DIR [--quick]
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "wse_mesh/decode/decode_bench.h"

// The SystemC library provides main() and calls sc_main().
int sc_main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [--quick]\n", argv[0]);
    return 2;
  }
  wse::sim::BenchArgs args;
  args.out_dir = argv[1];
  args.quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  try {
    std::filesystem::create_directories(args.out_dir);
    for (const auto& f : wse::wafer::bench_decode(args)) std::printf("wrote %s\n", (args.out_dir / f).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
