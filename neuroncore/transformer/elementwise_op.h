// Per-token operators (docs/neuroncore.md, "Transformer prefill"): element-wise operators
// (norms, RoPE, activations, residual adds, router, combine) are sequence-parallel, each
// core taking 1/P of the values in tiles (load, engine passes, store); the embedding is one
// DMA gather per token row.
#pragma once

#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

class ElementwiseMapping {
 public:
  explicit ElementwiseMapping(MappingContext& ctx) : ctx_(ctx) {}

  // The operator (embedding or element-wise) simulated as it is.
  EngineBusy run(const workloads::Operator& op);
  // With token_grain: linear in the pass's token count between two sample operators of the
  // same per-token shape (operators not per token, as they are).
  EngineBusy run_sampled(const workloads::Operator& op);
  EngineBusy run_elementwise(const workloads::Operator& op);
  EngineBusy run_embedding(const workloads::Operator& op);

 private:
  MappingContext& ctx_;
};

}  // namespace wse::neuron
