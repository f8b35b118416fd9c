// A Trainium chip running one program per NeuronCore: engines execute in order and
// concurrently, wait on their dependencies, and the DMA queues of every core share the
// chip's HBM. Discrete-event and plain C++ (time in integer picoseconds).
//
// Timing equations (docs/neuroncore.md):
//   tensor matmul (K, M, N, dtype), with stationary preload:
//     load_start   = max(ready, previous load_end, previous stream_start)
//     load_end     = load_start + ceil(K / stationary_rows_per_cycle) cycles
//     stream_start = max(load_end, previous stream_end)
//     stream_end   = stream_start + ceil(N / moving_per_cycle(dtype)) cycles
//     done         = stream_end + (K + M) cycles  (fill and drain of the array)
//   element-wise (vector/scalar/GpSimd): start = max(ready, engine free);
//     done = start + overhead + ceil(elements / elements_per_cycle(dtype)) cycles
//   DMA instruction on a queue: start = max(ready, queue free);
//     data starts after instruction_overhead; chunks leave at the queue's bandwidth with
//     at most chunks_in_flight outstanding; done when the last chunk's HBM access ends.
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <vector>

#include "neuroncore/core/hbm_backend.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/core/program.h"
#include "systemc_models/sim/event_heap.h"

namespace wse::neuron {

struct InstructionTiming {
  std::uint64_t start_ps = 0;
  std::uint64_t end_ps = 0;
};

struct CoreResult {
  std::vector<InstructionTiming> timing;  // by instruction index
  std::uint64_t end_ps = 0;
  std::uint64_t tensor_stream_ps = 0;  // time the array streams moving data
  double tensor_full_array_ps = 0.0;   // stream time weighted by the array fraction used
  std::uint64_t vector_busy_ps = 0;
  std::uint64_t scalar_busy_ps = 0;
  std::uint64_t gpsimd_busy_ps = 0;
  std::uint64_t dma_busy_ps = 0;  // summed over queues
  std::uint64_t dma_bytes = 0;
  std::uint64_t flops = 0;  // 2 x MACs of the matmuls
};

struct ChipResult {
  std::uint64_t end_ps = 0;
  std::vector<CoreResult> cores;
  std::uint64_t hbm_busy_ps = 0;
  double hbm_lanes = 1.0;
  // Fraction of the tensor engine's peak (for the dtypes used) achieved by `core`.
  double tensor_utilization(std::size_t core) const;
  double hbm_utilization() const;
};

class ChipSim {
 public:
  explicit ChipSim(const ChipConfig& cfg);
  // One program per core (at most cfg.cores); runs until every instruction is done.
  ChipResult run(const std::vector<Program>& programs);

  // Time of one matmul alone (operands ready, array idle), in cycles.
  static std::uint64_t matmul_cycles(const TensorEngineConfig& t, std::uint32_t k, std::uint32_t m,
                                     std::uint32_t n, DType d);

 private:
  struct DmaQueue {
    std::vector<std::uint32_t> order;
    std::size_t head = 0;
    bool busy = false;
    std::uint32_t current = 0;
    std::uint64_t chunks = 0;
    std::uint64_t issued = 0;
    std::uint64_t completed = 0;
    std::uint32_t in_flight = 0;
    std::uint64_t next_issue_ps = 0;
    bool issue_pending = false;
    std::uint64_t last_done_ps = 0;
    std::uint64_t free_ps = 0;
  };
  struct EngineQueue {
    std::vector<std::uint32_t> order;
    std::size_t head = 0;
    std::uint64_t free_ps = 0;
  };
  struct Core {
    const Program* program = nullptr;
    std::vector<std::uint32_t> pending_deps;
    std::vector<std::uint64_t> ready_ps;
    std::vector<std::vector<std::uint32_t>> dependents;
    EngineQueue tensor, vector, scalar, gpsimd;
    // Tensor engine pipeline state.
    std::uint64_t load_end_ps = 0;
    std::uint64_t stream_start_ps = 0;
    std::uint64_t stream_end_ps = 0;
    std::vector<DmaQueue> queues;
    std::size_t done = 0;
    CoreResult result;
  };
  enum class EventKind : std::uint8_t { kComplete, kDmaIssue };
  struct Event {
    std::uint64_t at_ps;
    std::uint64_t seq;
    EventKind kind;
    std::uint32_t core;
    std::uint32_t index;  // instruction (kComplete) or queue (kDmaIssue)
    bool operator>(const Event& o) const { return at_ps != o.at_ps ? at_ps > o.at_ps : seq > o.seq; }
  };

  void push(std::uint64_t at, EventKind k, std::uint32_t core, std::uint32_t index);
  void dispatch(std::uint32_t c, EngineQueue& e);
  void dispatch_dma(std::uint32_t c, std::uint32_t q, std::uint64_t now);
  void issue_chunks(std::uint32_t c, std::uint32_t q, std::uint64_t now);
  void complete(std::uint32_t c, std::uint32_t i, std::uint64_t now);
  void on_chunk_done(std::uint64_t tag, std::uint64_t done_ps);
  std::uint64_t cycles_to_ps(double cycles, Frequency f) const;

  ChipConfig cfg_;
  std::unique_ptr<HbmBackend> hbm_;
  std::vector<Core> cores_;
  sim::EventHeap<Event> events_;  // (time, sequence) order
  std::uint64_t seq_ = 0;
  std::uint64_t now_ps_ = 0;
};

}  // namespace wse::neuron
