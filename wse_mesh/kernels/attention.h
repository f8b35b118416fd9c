// Attention of one sequence in one layer over its KV cache spread across a grid of PEs,
// timed by the per-PE fabric (decode: one query token; a prefill chunk: several).
//
// Mapping (documented with its equations in docs/wse_mesh.md, "Attention"):
//  - The KV cache of the sequence in this layer is spread over a grid of PEs: each KV
//    head owns `rows_per_kv_head` grid rows; its cached tokens are dealt to the PEs of
//    those rows in blocks of `tokens_per_pe` (token t of head h on PE column
//    (t / tokens_per_pe) mod Q of row h * rows_per_kv_head + (t / tokens_per_pe) / Q).
//    A PE holds K and V (head_dim values each, kv dtype) of its tokens.
//  - Append: the new token's K and V (the k/v projection's output for this head) are
//    sent from the west PE of the head's first row to the PE that owns position
//    `context` and written into its SRAM.
//  - Query: the G = q_heads / kv_heads query vectors of the head are multicast along the
//    head's rows (and down its rows when it has several).
//  - Scores and softmax, flash-decoding style: each PE computes q . k for its tokens and
//    G queries (FMACs at the SIMD width and SRAM-port limit of pe.h), its local maximum,
//    exp (polynomial of `PeConfig` FMACs), local sum and its partial P V (head_dim
//    accumulators per query).
//  - Combine: one reduction along the head's rows (and then its column when it has
//    several rows) of G x (head_dim + 2) fp32 values per PE (max, sum, output), each
//    combine step rescaling by exp(m_a - m_b) and adding; result on the head's root PE.
//    The combine runs toward the west (chain or tree), then up column 0 (north), so the
//    root is the head's source PE, the west PE of its first row, which divides each
//    query's output by its sum at the end.
// All time comes from the fabric simulation and the PE instruction costs. No route leaves
// its head's rows, so heads never share a link: the FabricConfig overload simulates one
// head (all take the same cycles on an empty fabric); the Fabric& overload simulates all.
#pragma once

#include <cstdint>
#include <string_view>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

struct AttentionConfig {
  std::uint32_t q_heads = 32;              // query heads of the layer
  std::uint32_t kv_heads = 8;              // KV heads (GQA); q_heads / kv_heads queries share one
  std::uint32_t head_dim = 128;            // values per head in K, V and q
  std::uint64_t context = 1024;            // tokens cached before this step
  std::uint32_t query_tokens = 1;          // new tokens (1 for decode, a chunk for prefill)
  std::uint32_t tokens_per_pe = 16;        // cached tokens of one KV head a PE holds (the mapping's choice)
  std::uint32_t max_grid_cols = 256;       // PE columns per head row; more tokens wrap onto more rows
  std::uint32_t kv_bytes = 2;              // bytes per cached value (bf16/fp16: 2, fp8: 1)
  Reduction reduction = Reduction::kTree;  // the combine along a head's rows
  PeCoord origin{0, 0};                    // north-west PE of the grid on the fabric
  // Simulation choice (FabricConfig overload, a head of 5 rows or more whose new tokens
  // land in its last row): rows 1 .. R-2 of a head are alike, each one hop later than
  // the one above, so one of them is simulated, with the head's first and last rows, and
  // the column phase of the combine is then simulated on the head's column 0 with each
  // row's deliveries there replayed, shifted. Within 0.1% of the whole head's time, and
  // equal in most cases (tested; docs/wse_mesh.md, "Attention"); false simulates every row.
  bool fold_rows = true;
};

struct AttentionResult {
  std::uint32_t grid_rows = 0;            // P = kv_heads x rows per head
  std::uint32_t grid_cols = 0;            // Q
  std::uint64_t sram_bytes_per_pe = 0;    // K, V and working values of the fullest PE
  std::uint64_t total_cycles = 0;         // the last head's output complete at its root
  std::uint64_t append_cycles = 0;        // the new K/V written at its owner PE
  std::uint64_t query_cycles = 0;         // the last query wavelet delivered
  std::uint64_t compute_cycles = 0;       // scores, exp, sums and P V of the fullest PE
  std::uint64_t compute_done_cycles = 0;  // the last PE's local work done
  std::uint64_t combine_cycles = 0;       // total - compute_done: the exposed combine
  std::uint64_t wavelet_hops = 0;
  std::uint64_t fabric_cycles_simulated = 0;
  std::uint32_t rows_simulated = 0;  // a head's rows simulated in full (3 when folded)
  double wall_seconds = 0.0;
};

// Runs the attention on `fabric` (which must contain the grid at `origin`). Throws
// CapacityError when a PE's share of the cache does not fit its SRAM.
AttentionResult run_attention(Fabric& fabric, const PeConfig& pe, const AttentionConfig& a);
// The same on a fresh per-PE fabric exactly the size of the grid.
AttentionResult run_attention(const FabricConfig& fabric, const PeConfig& pe, const AttentionConfig& a);
// The grid the mapping needs (rows, cols), without simulating.
std::pair<std::uint32_t, std::uint32_t> attention_grid(const AttentionConfig& a);

// The head shape both attention kernels need (q_heads a positive multiple of kv_heads;
// head_dim, query_tokens, tokens_per_pe and max_grid_cols at least 1; kv_bytes 1, 2 or
// 4); throws std::invalid_argument "<kernel>: ..." naming the first that is not.
struct AttentionShape {
  std::uint32_t q_heads, kv_heads, head_dim, query_tokens, tokens_per_pe, max_grid_cols, kv_bytes;
};
void require_attention_shape(std::string_view kernel, const AttentionShape& s);

// One cached token's K and V on the fabric: 2 ceil(D / values per 32-bit wavelet)
// wavelets at kv_bytes a value.
std::uint64_t kv_token_wavelets(std::uint64_t head_dim, std::uint32_t kv_bytes);
// Cycles a PE takes to store K/V wavelet `idx` of a token (idx < kv_token_wavelets, K's
// first): a K wavelet goes into a column of K^T (a strided write: SIMD width 1, SDK), a V
// wavelet contiguously. The append's store, and a KV layout move's.
std::uint64_t kv_wavelet_store_cycles(const PeConfig& pe, std::uint64_t head_dim, std::uint32_t kv_bytes,
                                      std::uint64_t idx);
// All of one token's wavelets stored.
std::uint64_t kv_token_store_cycles(const PeConfig& pe, std::uint64_t head_dim, std::uint32_t kv_bytes);

// The instruction costs of a PE's local work over T cached tokens (docs/wse_mesh.md,
// "Attention", phase 3): one score FMAC s[0:T] += q[d] K^T[d][0:T] per query element, and
// per query the max, exp(s - m), sum and P V (T FMACs of D values).
std::uint64_t attention_score_fmac_cycles(const PeConfig& pe, std::uint64_t T, std::uint32_t kv_bytes);
std::uint64_t attention_softmax_pv_cycles(const PeConfig& pe, std::uint64_t T, std::uint64_t head_dim,
                                          std::uint32_t kv_bytes);

// A lower bound on a decode's (query_tokens 1) total cycles: a PE holding a full block
// (min(tokens_per_pe, context + 1) tokens) does, for each of the q_heads / kv_heads
// queries, head_dim score FMACs and the softmax and P V over its tokens on its one
// engine before the head's output can be complete. The decoder's search for the fastest
// tokens per PE skips a candidate whose floor cannot beat the best time found, as the
// GEMV search does with its root-engine floor.
std::uint64_t attention_decode_floor(const PeConfig& pe, const AttentionConfig& a);

}  // namespace wse::wafer
