// The small decode attention the attention kernel tests derive by hand: one KV head of
// head_dim 4 with one query, 2 cached tokens per PE (kernels_test.cpp, attention_tiled_test.cpp).
#pragma once

#include <cstdint>

#include "wse_mesh/kernels/attention.h"

namespace wse::wafer::test {

inline AttentionConfig small_attention(std::uint64_t context, Reduction red) {
  AttentionConfig a;
  a.q_heads = 1;
  a.kv_heads = 1;
  a.head_dim = 4;
  a.context = context;
  a.tokens_per_pe = 2;
  a.reduction = red;
  return a;
}

}  // namespace wse::wafer::test
