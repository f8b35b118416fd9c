// Speed of the NeuronCore model: a tiled GEMM on one core (instructions simulated per
// wall second), with the streaming HBM and with the bank-level HBM; and a collective on
// the 4 x 4 torus.
#include <benchmark/benchmark.h>

#include "neuroncore/core/gemm.h"
#include "neuroncore/instance/torus.h"

namespace {

using namespace wse::neuron;

void gemm(benchmark::State& state, HbmFidelity f, std::uint64_t size) {
  ChipConfig chip = trainium2_chip();
  chip.hbm_fidelity = f;
  GemmResult r;
  double instructions = 0;
  for (auto _ : state) {
    r = run_gemm(chip, {size, size, size, DType::kBf16});
    instructions += static_cast<double>(r.instructions);
  }
  state.counters["instructions_per_cpu_s"] = benchmark::Counter(instructions, benchmark::Counter::kIsRate);
  state.counters["simulated_us"] = r.seconds * 1e6;
  state.counters["tensor_utilization"] = r.tensor_utilization;
}

void BM_GemmStreamingHbm4096(benchmark::State& s) { gemm(s, HbmFidelity::kStreaming, 4096); }
void BM_GemmBankHbm1024(benchmark::State& s) { gemm(s, HbmFidelity::kBanks, 1024); }
BENCHMARK(BM_GemmStreamingHbm4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GemmBankHbm1024)->Unit(benchmark::kMillisecond);

void BM_AllReduce1GiB(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(run_collective({}, Collective::kAllReduce, 1ULL << 30));
}
BENCHMARK(BM_AllReduce1GiB)->Unit(benchmark::kMicrosecond);

}  // namespace
