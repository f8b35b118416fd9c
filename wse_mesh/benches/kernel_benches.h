// Microbenchmarks of the attention and vector kernels, run by `wse-emu bench attention`.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::wafer {

// Decode attention of Llama-3.1-8B's head shape (32 query heads, 8 KV heads, head_dim
// 128) versus context (1K to 32K tokens) and tokens per PE (8 to 64), tree and chain
// combine, split into append, query multicast, compute and combine, plus the 8K cache on
// 16 to 128 columns (more rows per head); and RMSNorm and
// softmax versus line length. WSE-3 PE, per-PE fabric (quick: 1K and 4K context, 16
// tokens per PE, lines of 16 and 64 PEs). Writes attention.csv and vector_kernels.csv.
std::vector<std::string> bench_attention(const sim::BenchArgs& args);

}  // namespace wse::wafer
