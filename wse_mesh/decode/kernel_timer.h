// What the decode schedule asks of the kernels: the time of one operator of the lowered
// forward pass (workloads/model/operators.h) on the region and grids of its layer, and
// the time of moving a layer's output activations to the next layer's region. The
// schedule (schedule.h) composes these; SimulatedKernels (simulated_kernels.h) answers
// them with the wse_mesh kernels, tests answer them with hand-set cycles.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "workloads/model/operators.h"
#include "wse_mesh/decode/placement.h"
#include "wse_mesh/kernels/attention_stream.h"
#include "wse_mesh/kernels/gemm_cannon.h"

namespace wse::wafer {

struct KernelTiming {
  std::uint64_t cycles = 0;            // first input in to last output final
  std::uint64_t link_cycles = 0;       // PE-to-PE link directions busy, summed (wavelet hops)
  std::uint64_t sram_read_bytes = 0;   // read by the PEs' instructions
  std::uint64_t sram_write_bytes = 0;  // written by the PEs' instructions
  std::uint64_t pe_busy_cycles = 0;    // compute-engine busy cycles, summed over PEs
};

class KernelTimer {
 public:
  virtual ~KernelTimer() = default;
  // One operator (all its `count` instances: they run on disjoint grids at once) on
  // `layer`'s region. Operators outside the layers (embedding, final norm, LM head) are
  // given the first (embedding) or last layer's plan.
  virtual KernelTiming time(const workloads::Operator& op, const LayerPlan& layer) = 0;
  // Moving `tokens` tokens' hidden state (`bytes`) from `from`'s output grid to `to`'s
  // input grid on the same wafer.
  virtual KernelTiming move(const LayerPlan& from, const LayerPlan& to, std::uint64_t tokens,
                            std::uint64_t bytes) = 0;
  // Handing a GEMM's results (`tokens` vectors) from where its kernel leaves them to
  // where the next kernel of the layer reads its input (0 unless modelled).
  virtual KernelTiming handoff(const TensorGrid& /*grid*/, std::uint64_t /*tokens*/) { return {}; }
  // Which reduction the GEMV kernels chose, by name: distinct kernels of each choice.
  virtual std::map<std::string, std::uint64_t> reductions_chosen() const { return {}; }
  // Which algorithm the GEMMs of m > 1 tokens took ("gemv" passes or "cannon"), by name:
  // distinct kernels of each.
  virtual std::map<std::string, std::uint64_t> gemm_algorithms_chosen() const { return {}; }
  // The GEMM algorithm of later calls (an ablation on the same kernel results); ignored
  // by timers without a choice.
  virtual void set_gemm_algorithm(GemmAlgorithm /*a*/) {}
  // Which attention kernel the prefill chunks (query_tokens > 1) took ("stream" or
  // "combine"), by name: distinct kernels of each.
  virtual std::map<std::string, std::uint64_t> prefill_attention_chosen() const { return {}; }
  // The prefill attention of later calls (an ablation on the same kernel results).
  virtual void set_prefill_attention(PrefillAttention /*a*/) {}
  // A lower bound on time(op, layer).cycles for a decode attention operator, found
  // without simulating (0: no bound).
  virtual std::uint64_t attention_floor(const workloads::Operator& /*op*/, const LayerPlan& /*layer*/) const {
    return 0;
  }
  // Kernel results reused and simulated so far (0 when nothing is cached).
  virtual std::uint64_t reused() const { return 0; }
  virtual std::uint64_t simulated() const { return 0; }
  // A count that changes whenever one of the *_chosen() tallies above may have changed,
  // so that a caller reads them again only then; kChoicesUnknown: read them every time.
  static constexpr std::uint64_t kChoicesUnknown = UINT64_MAX;
  virtual std::uint64_t choices_version() const { return kChoicesUnknown; }
};

}  // namespace wse::wafer
