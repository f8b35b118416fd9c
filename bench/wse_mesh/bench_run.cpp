// Runs one of the wafer's registered microbenchmarks: wse_mesh_bench_run NAME OUT_DIR [--quick]
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "systemc_models/sim/registry.h"
#include "wse_mesh/register.h"

// The SystemC library provides main() and calls sc_main().
int sc_main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s fabric|gemv|gemv_tiled|collectives OUT_DIR [--quick]\n", argv[0]);
    return 2;
  }
  wse::sim::Registry registry;
  wse::wafer::register_wse_mesh(registry);
  const wse::sim::Bench* bench = registry.bench(argv[1]);
  if (!bench) {
    std::fprintf(stderr, "unknown bench '%s'\n", argv[1]);
    return 2;
  }
  wse::sim::BenchArgs args;
  args.out_dir = argv[2];
  args.quick = argc > 3 && std::strcmp(argv[3], "--quick") == 0;
  try {
    std::filesystem::create_directories(args.out_dir);
    for (const auto& f : bench->run(args)) std::printf("wrote %s\n", (args.out_dir / f).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
