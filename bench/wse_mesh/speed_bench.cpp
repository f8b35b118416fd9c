// Speed targets of the wafer model:
//  - the per-PE fabric runs a 32 x 32 mesh at 0.05 wavelets/PE/cycle for 6,000 cycles
//    in under 1 s (BookSim 2 needs 60-90 s for that);
//  - a full WSE-3 fabric (762 x 1176 PEs) is built in under 2 s and 2 GB.
#include <sys/resource.h>

#include <benchmark/benchmark.h>

#include "wse_mesh/benches/benches.h"
#include "wse_mesh/fabric/traffic.h"
#include "wse_mesh/kernels/gemv.h"

namespace {

using namespace wse::wafer;

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void BM_Mesh32x32Uniform(benchmark::State& state) {
  FabricConfig fc;
  fc.width = fc.height = 32;
  TrafficConfig tc;
  tc.injection_rate = 0.05;
  tc.warmup_cycles = 0;
  tc.measure_cycles = 6000;
  tc.drain_cycles = 0;
  TrafficResult r;
  for (auto _ : state) {
    r = run_traffic(fc, tc);
    benchmark::DoNotOptimize(r.wavelet_hops);
  }
  state.counters["router_cycles_per_s"] =
      benchmark::Counter(static_cast<double>(r.router_cycles), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["wavelet_hops_per_s"] =
      benchmark::Counter(static_cast<double>(r.wavelet_hops), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["accepted_per_1000_pe_cycles"] = r.accepted * 1000.0;
}
BENCHMARK(BM_Mesh32x32Uniform)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BuildWse3Fabric(benchmark::State& state) {
  FabricConfig fc;
  fc.width = 762;
  fc.height = 1176;
  std::size_t bytes = 0;
  for (auto _ : state) {
    Fabric f(fc);
    bytes = f.state_bytes();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["state_MiB"] = static_cast<double>(bytes) / (1024.0 * 1024.0);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_BuildWse3Fabric)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Gemv8kOn240(benchmark::State& state) {
  GemvConfig g;
  g.rows = g.cols = 8192;
  g.grid_rows = g.grid_cols = 240;
  GemvResult r;
  for (auto _ : state) {
    r = run_gemv(FabricConfig{}, wse3_pe_config(), g);
    benchmark::DoNotOptimize(r.total_cycles);
  }
  state.counters["simulated_cycles"] = static_cast<double>(r.total_cycles);
  state.counters["wavelet_hops_per_s"] =
      benchmark::Counter(static_cast<double>(r.wavelet_hops), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_Gemv8kOn240)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
