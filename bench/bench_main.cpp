// main() of every Google Benchmark program in bench/: SystemC's kernel starts first
// (so benchmarks may build modules and call sc_start), then sc_main runs the
// benchmarks. SystemC's banner is kept off the benchmark table.
#include <cstdlib>

#include <benchmark/benchmark.h>
#include <systemc>

int sc_main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

int main(int argc, char** argv) {
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
