// Speed of the HBM model at saturation: accesses (32 B column commands) simulated per
// second, sequential and random, for the model core and through TLM-2.0.
//
//   build/bin/neuroncore_speed_bench
//
// The counter `accesses_per_cpu_s` (per second of CPU time, so that other work on a
// shared machine does not count) is the figure to compare with the 1 M/s target (a
// cycle-accurate simulator manages 15-80 thousand per second on the same machines).
#include <vector>

#include <benchmark/benchmark.h>
#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "neuroncore/hbm/hbm.h"
#include "neuroncore/hbm/hbm_presets.h"
#include "neuroncore/hbm/hbm_traffic.h"

namespace {

using namespace wse::neuron;

void core(benchmark::State& state, HbmPattern pattern, HbmScope scope) {
  HbmTrafficSpec spec;
  spec.pattern = pattern;
  spec.scope = scope;
  spec.requests = 400000;
  HbmTrafficResult r;
  double accesses = 0;
  for (auto _ : state) {
    r = run_hbm_traffic(trainium2_hbm(), spec);
    accesses += static_cast<double>(r.accesses);
  }
  state.counters["accesses_per_cpu_s"] = benchmark::Counter(accesses, benchmark::Counter::kIsRate);
  state.counters["efficiency"] = r.efficiency;
}

void BM_HbmCoreSequentialChip(benchmark::State& s) {
  core(s, HbmPattern::kSequential, HbmScope::kAllChannels);
}
void BM_HbmCoreRandomChip(benchmark::State& s) { core(s, HbmPattern::kRandom, HbmScope::kAllChannels); }
void BM_HbmCoreSequentialChannel(benchmark::State& s) {
  core(s, HbmPattern::kSequential, HbmScope::kOneChannel);
}
void BM_HbmCoreRandomChannel(benchmark::State& s) { core(s, HbmPattern::kRandom, HbmScope::kOneChannel); }
BENCHMARK(BM_HbmCoreSequentialChip)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HbmCoreRandomChip)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HbmCoreSequentialChannel)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HbmCoreRandomChannel)->Unit(benchmark::kMillisecond);

// Closed-loop random 32 B reads through the TLM socket (nb_transport), as a core's DMA
// engines would send them.
struct RandomReader : sc_core::sc_module {
  SC_HAS_PROCESS(RandomReader);
  tlm_utils::simple_initiator_socket<RandomReader> socket;
  std::vector<tlm::tlm_generic_payload> payloads;
  std::uint64_t remaining;
  std::uint64_t completed = 0;
  std::uint64_t state = 88172645463325252ULL;
  std::uint64_t capacity;
  unsigned char buf[32] = {};
  RandomReader(const sc_core::sc_module_name& n, std::uint64_t count, std::size_t window, std::uint64_t cap)
      : sc_core::sc_module(n), socket("socket"), payloads(window), remaining(count), capacity(cap) {
    socket.register_nb_transport_bw(this, &RandomReader::nb_transport_bw);
    SC_METHOD(start);
  }
  std::uint64_t next() {  // xorshift64
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  void send(tlm::tlm_generic_payload& p) {
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_address(next() % (capacity / 32) * 32);
    p.set_data_ptr(buf);
    p.set_data_length(32);
    tlm::tlm_phase phase = tlm::BEGIN_REQ;
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    --remaining;
    socket->nb_transport_fw(p, phase, d);
  }
  void start() {
    for (auto& p : payloads) send(p);
  }
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload& p, tlm::tlm_phase&, sc_core::sc_time&) {
    ++completed;
    if (remaining > 0) send(p);
    return tlm::TLM_COMPLETED;
  }
};

void BM_HbmTlmRandomChip(benchmark::State& state) {
  // One SystemC elaboration per process: run once.
  const HbmConfig cfg = trainium2_hbm();
  Hbm hbm("hbm", cfg);
  const std::uint64_t n = 1000000;
  RandomReader reader("reader", n, 2ULL * cfg.queue_depth * cfg.channels(), cfg.capacity().bytes);
  reader.socket.bind(hbm.socket);
  for (auto _ : state) sc_core::sc_start();
  state.counters["accesses_per_cpu_s"] =
      benchmark::Counter(static_cast<double>(reader.completed), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_HbmTlmRandomChip)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
