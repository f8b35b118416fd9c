// Shared by the tests of the transformer mapping's operator kinds: one core, or a group of
// the trn2.48xlarge, every token count simulated exactly and the runtime off.
#pragma once

#include <cstdint>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/prefill_config.h"
#include "workloads/model/operators.h"

namespace wse::neuron::testing_ops {

// TP `tp` x LNC `lnc` on a trn2.48xlarge, token_grain 0, runtime off.
inline PrefillConfig exact(std::uint32_t tp = 1, std::uint32_t lnc = 1) {
  PrefillConfig p;
  p.tp_degree = tp;
  p.lnc = lnc;
  p.token_grain = 0;
  p.runtime = false;
  return p;
}

inline MappingContext context(const PrefillConfig& p, const ChipConfig& chip = trainium2_chip()) {
  return MappingContext(chip, InstanceConfig{}, p);
}

inline workloads::Operator elementwise(workloads::OpKind kind, const char* name, std::uint64_t values,
                                       std::uint64_t passes, std::uint64_t inputs) {
  workloads::Operator e;
  e.kind = kind;
  e.name = name;
  e.layer = 0;
  e.elements = values;
  e.vector_ops = passes * values;
  e.input_bytes = inputs * 2 * values;
  e.output_bytes = 2 * values;
  return e;
}

inline workloads::Operator gemm(const char* name, std::uint64_t m, std::uint64_t k, std::uint64_t n) {
  workloads::Operator o;
  o.kind = workloads::OpKind::gemm;
  o.name = name;
  o.layer = 0;
  o.m = m;
  o.k = k;
  o.n = n;
  return o;
}

inline workloads::Operator attention(std::uint64_t queries, std::uint32_t heads, std::uint32_t kv_heads) {
  workloads::Operator a;
  a.kind = workloads::OpKind::attention;
  a.name = "self_attn";
  a.layer = 0;
  a.q_heads = heads;
  a.kv_heads = kv_heads;
  a.qk_head_dim = 128;
  a.v_head_dim = 128;
  a.query_len = queries;
  a.kv_len = queries;
  return a;
}

}  // namespace wse::neuron::testing_ops
