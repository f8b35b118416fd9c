// Decode attention (query_len 1; docs/neuroncore.md, "Transformer prefill"): the attention
// operators of one layer's decode sequences run as one kernel. A chip holds the query
// heads of its logical cores (as for prefill); its (sequence, kv head) pairs, each with all
// of the chip's query heads of that kv head (GQA rows stacked), are dealt over the chip's
// physical cores (longest first, to the least loaded core); each core streams the K and V
// blocks of its pairs through a ring of SBUF buffers.
#pragma once

#include <vector>

#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

class DecodeAttentionMapping {
 public:
  explicit DecodeAttentionMapping(MappingContext& ctx) : ctx_(ctx) {}

  // The decode attention operators (is_decode_attention) of one layer as one kernel.
  EngineBusy run(const std::vector<workloads::Operator>& sequences);
  // The same through the reuse cache, keyed by decode_attention_key (sorted lengths).
  EngineBusy run_cached(const std::vector<workloads::Operator>& sequences);

 private:
  MappingContext& ctx_;
};

}  // namespace wse::neuron
