// GEMMs of the transformer mapping (docs/neuroncore.md, "Transformer prefill"):
// column-parallel (N / P per core: q/k/v, gate/up, experts' gate/up, router, LM head) or
// row-parallel (K / P per core: o_proj, down_proj, followed by the all-reduce of the
// partial sums, collective_op.h), lowered with the tiled GEMM of core/gemm.h, weights
// stationary, token rows simulated in blocks of gemm_token_block; `count` instances
// (experts) one after another. GEMMs of few token rows (M <= one moving pass: decode
// steps, the LM head of a prefill) run as a weight-streaming kernel instead: the core's
// weight slice cut into large DMA instructions over the load queues, streamed once through
// a ring of SBUF buffers, each 128 x 128 weight tile stationary while the tokens stream.
#pragma once

#include <cstdint>

#include "neuroncore/core/gemm.h"
#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

class GemmMapping {
 public:
  explicit GemmMapping(MappingContext& ctx) : ctx_(ctx) {}

  // A GEMM operator on the group, its all-reduce included when it is row-parallel.
  EngineBusy run(const workloads::Operator& op);
  // A GEMM of `tokens` rows (K = k per core) runs as the weight-streaming kernel: tokens
  // within one moving pass, X^T and the C buffers within half of SBUF.
  bool streams_weights(std::uint64_t k, std::uint64_t tokens, DType t) const;
  // A GEMM of `tokens` <= max_moving rows on every simulated core: C^T[out x tokens] =
  // W^T[out x k] X^T[k x tokens], the weights streamed once; `count` instances in one kernel.
  EngineBusy streamed(std::uint64_t out_features, std::uint64_t k, std::uint64_t tokens, DType t,
                      std::uint64_t count);
  // One tiled GEMM of shape `s` on every simulated core (each its own operands in HBM).
  EngineBusy piece(const GemmShape& s);

 private:
  MappingContext& ctx_;
};

}  // namespace wse::neuron
