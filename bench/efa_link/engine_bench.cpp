// Event throughput of the SRD engine: one striped write over a trn2.48xlarge attachment
// at packet and burst grain, and eight concurrent writes contending for the adapters.
// Counters: simulated packets and engine events per second of wall time.
#include <cstdint>

#include <benchmark/benchmark.h>

#include "efa_link/efa_bench.h"
#include "efa_link/srd_engine.h"

namespace {

using wse::efa::Grain;

void run_writes(benchmark::State& state, Grain grain, std::uint32_t writes) {
  wse::efa::EfaNetworkConfig cfg = wse::efa::shipped_config("trn2_48xlarge");
  cfg.srd.grain = grain;
  const std::uint64_t bytes = static_cast<std::uint64_t>(state.range(0)) << 20;
  std::uint64_t packets = 0, events = 0;
  for (auto _ : state) {
    wse::efa::SrdEngine e(cfg);
    for (std::uint32_t i = 0; i < writes; ++i) {
      wse::efa::WorkRequest wr;
      wr.initiator = 0;
      wr.target = 1;
      wr.bytes = bytes;
      e.post(wr, 0);
    }
    e.run();
    packets += e.packets_sent();
    events += e.events_processed();
    benchmark::DoNotOptimize(e.completions().back().completed_ps);
  }
  state.counters["packets/s"] = benchmark::Counter(static_cast<double>(packets), benchmark::Counter::kIsRate);
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}

void BM_PacketGrain(benchmark::State& s) { run_writes(s, Grain::Packet, 1); }
void BM_BurstGrain(benchmark::State& s) { run_writes(s, Grain::Burst, 1); }
void BM_PacketGrain8Writes(benchmark::State& s) { run_writes(s, Grain::Packet, 8); }
void BM_BurstGrain8Writes(benchmark::State& s) { run_writes(s, Grain::Burst, 8); }

BENCHMARK(BM_PacketGrain)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BurstGrain)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PacketGrain8Writes)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BurstGrain8Writes)->Arg(32)->Unit(benchmark::kMillisecond);

}  // namespace
