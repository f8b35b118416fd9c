// Prefill attention (one operator per sequence; docs/neuroncore.md, "Transformer
// prefill"): heads over logical cores, the 128-query tiles of a head over the lnc physical
// cores of its logical core. Per query tile and block of keys: QK^T matmuls, softmax
// (vector: max and subtract, plus the causal mask on blocks that cross the diagonal;
// scalar: exp with row sums), PV matmuls accumulating in PSUM; blocks above the diagonal
// are skipped; then a vector normalisation and a store. K and V of a head stay in half of
// SBUF when they fit, else they stream through a ring of key-block slots.
#pragma once

#include <cstdint>

#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

class AttentionMapping {
 public:
  explicit AttentionMapping(MappingContext& ctx) : ctx_(ctx) {}

  // The operator simulated as it is.
  EngineBusy run(const workloads::Operator& op);
  // With token_grain: bilinear in (query_len, context_offset) between the simulated
  // corners of the sample cell (sliding windows and K/V beyond half of SBUF as they are).
  EngineBusy run_sampled(const workloads::Operator& op);

 private:
  MappingContext& ctx_;
};

// Matmul flops of one chip's cores (min(tp_degree x lnc, chip_cores)) for a prefill
// attention operator as AttentionMapping::run issues them: whole key blocks of `key_block`
// from the window's edge to the diagonal, QK^T and PV.
std::uint64_t attention_matmul_flops(const workloads::Operator& op, std::uint32_t tp_degree,
                                     std::uint32_t lnc, std::uint32_t chip_cores, std::uint32_t q_tile,
                                     std::uint32_t key_block);

}  // namespace wse::neuron
