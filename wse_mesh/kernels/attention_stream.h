// Prefill attention with K and V streamed past stationary queries (docs/wse_mesh.md,
// "Prefill attention: K and V streamed past stationary queries"): the Cannon of
// attention, for a prefill chunk of query_tokens > 1, where attention.h runs the decode
// kernel (queries multicast to the KV, partial results combined across the head's PEs)
// in sub-chunks one after another.
//
// Mapping (one KV head; the KV heads run side by side on their own rows, as in attention.h):
//  - The KV cache lies as attention.h lays it (attention_grid): block b (tpp tokens) on
//    the head's PE (column b mod Q, row b / Q), nb = ceil(N / tpp) blocks, N = context +
//    query_tokens. The chunk's new K and V are appended to their owner PEs first.
//  - Stream blocks: the blocks that move are the cache's (stream_tokens_per_pe = 0) or
//    pieces of them of stream_tokens_per_pe tokens, laid out as attention.h would lay a
//    cache of that many tokens a PE: the head then spans ceil(N / that) PEs (more PEs, each
//    fewer tokens a step). Each piece of the cache is first sent, in token order, from the
//    PE that caches it to the PE that starts with it (h H + its wavelets + 2R, then stored),
//    and the working copies are dropped at the end (the cache stays where it was).
//    The decoder's planner tries the cache's blocks, half, a quarter, ... while the
//    heads fit the layer region's rows, and keeps the fastest.
//  - Rings: the head's PEs form rings along which the blocks move one ring position a
//    step; a ring of n PEs is folded as gemm_cannon.h's (position l on the path's PE
//    folded_column(l, n)), so ring neighbours are at most 2 hops apart on a straight path.
//      rows:  one ring per head row (the last, partial row merged with the row above it
//             into one ring along a two-row path); every query lives on the PE of its
//             column in every ring, and after the rings a chain up each column combines
//             the rings' partial (max, sum, output) into row 0 (R - 1 stages of one hop);
//      snake: one ring through all the head's PEs along a boustrophedon path, every
//             query on one PE, no combine at all.
//    kAuto times both and keeps the faster (they are the same ring for a one-row head).
//  - Queries: the G x qt query vectors (G = q_heads / kv_heads) are dealt round-robin to
//    the ring's query slots (the Q columns for rows, the nb PEs for snake), qv at most a PE.
//  - Step s: ring position l holds the block first held by position (l + s) mod n and
//    updates each of its queries with it by online softmax (flash attention):
//      scores  D x FMAC over T tokens (vector_cycles(@fmachs, T, kv + 32, 32)),
//      max and sum over T (@fadds, 32-bit reads), m' = max(m, max), alpha = exp(m - m')
//      (1 add + exp of one value), exp(s - m') (exp_cycles(T)), l = alpha l + sum (one
//      fp32 multiply-add), o = alpha o (fp32_scale_cycles(D)), P V as T FMACs over D;
//    T is the block's tokens at or before the query's position (causal): a block entirely
//    after it is skipped (no instruction; the PE still passes the block on), a block that
//    straddles it is cut to its attended tokens (as attention.h does). The costs are those
//    of attention.h's local work plus the online rescale.
//  - Shifts: after using (or while using) its block, position l sends it to l - 1: a
//    message of W = tokens x kv_token_wavelets wavelets over the ring edge's h hops (fabric
//    rule: h H + W + 2R), K already transposed so that the receiver stores it contiguously;
//    the send starts once the sender has the block, its link has sent the previous block,
//    and the receiver's buffer is free. A PE holds its own block in its cache and receives
//    into two buffers (double buffering): the block of step s + 1 (s + 1 >= 3) goes into the
//    buffer of step s - 1, once that step's FMACs are done and that block was passed on.
//    Storing an arriving block takes the write port ceil(W x 32 / write port bits) cycles
//    of the receiver's engine, interleaved with its compute: its FMACs on the block start
//    at max(block arrived, engine free + store). So a step costs max(compute + store,
//    shift) in the steady state (closed form below).
//  - Input: the head's source (the west PE of its first row, as attention.h) sends the
//    new tokens' K and V (owner stores: kv_token_store_cycles a token, the strided K
//    writes), then the queries slot by slot, one stream through its ramp multicast over
//    the head's PEs (each keeps its own): a slot's queries are in place h H + 2R + 1 after
//    its last wavelet leaves the source. A PE starts once its queries and its own block are in.
//  - End: (rows) the chain: row r's PE adds the rings below into its own result as
//    attention.h's combine does (per query: m, then l and o[D] rescaled), store-and-forward
//    of the PE's qv (D + 2) fp32 values a stage; then row 0's (snake: every) PE divides each
//    query's output by its sum (reciprocal + fp32 scale of D) and drains the fp16 outputs
//    through its ramp (ceil(qv D / 2) wavelets + 2R).
// SRAM of the fullest PE: its KV block (tpp tokens of K and V, the cache), two receive
// buffers of a block, its qv query vectors (fp16), qv x tpp fp32 scores and qv (D + 2)
// fp32 accumulators (max, sum, output). When a PE's queries do not fit, the chunk runs in
// rounds of fewer queries a PE, one after another (each round its own queries' input and
// ring pass); CapacityError names the tensor and the shortfall when one query does not.
// Closed form (uniform full blocks, every block attended, every ring edge h hops):
//   w = qv cost(tpp), c = w + store(W), L = h H + W + 2R,
//   T_ring = t_in + w + (n - 1) max(c, L) (+ the chain and the drain),
// tested as a bound on the per-PE recurrences (attention_stream_test.cpp).
// Simplifications: one source streams the input (conservative: the projections' outputs
// are spread in fact); the ring links are taken as each ring edge's own (checked on the
// Fabric for 1x4 and 2x2 rings; the row turns of a merged or snake ring are not checked for
// contention); the sender's SRAM reads (fabout) and the receiver's stores are not checked
// against the FMACs' read ports, only the store against the engine; a straddling block is
// computed on its attended tokens only (masking would cost the whole block); the chain is
// store-and-forward a stage (attention.h pipelines per wavelet).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

// How a decoder times the attention of a prefill chunk (query_tokens > 1): kAuto the
// faster of this kernel and attention.h's (as tuned software would), kStream this kernel
// (attention.h where it does not fit), kCombine attention.h's in sub-chunks (the ablation).
enum class PrefillAttention : std::uint8_t { kAuto, kStream, kCombine };
// "auto", "stream", "combine".
const char* prefill_attention_name(PrefillAttention a);
// Parses one of prefill_attention_name's names; false (and `a` unchanged) for anything else.
bool parse_prefill_attention(std::string_view name, PrefillAttention& a);

// The rings of a head (see the header comment).
enum class StreamRing : std::uint8_t { kAuto, kRows, kSnake };
const char* stream_ring_name(StreamRing r);

struct AttentionStreamConfig {
  std::uint32_t q_heads = 32;
  std::uint32_t kv_heads = 8;
  std::uint32_t head_dim = 128;
  std::uint64_t context = 0;         // tokens cached before the chunk
  std::uint32_t query_tokens = 64;   // the chunk
  std::uint32_t tokens_per_pe = 16;  // the KV layout (attention.h)
  // Tokens of a block streamed around the rings (at most tokens_per_pe; 0 = tokens_per_pe):
  // smaller blocks spread the head over more PEs (ceil(N / this) of them, laid out as
  // attention.h lays a cache of this many tokens a PE), each cached block first sent in
  // pieces from the PE that caches it.
  std::uint32_t stream_tokens_per_pe = 0;
  std::uint32_t max_grid_cols = 256;  // the KV layout (attention.h)
  std::uint32_t kv_bytes = 2;
  StreamRing ring = StreamRing::kAuto;
  // SRAM of a PE for the cache, buffers, queries and accumulators; 0 = the PE's SRAM.
  std::uint64_t sram_bytes = 0;
};

// The same shapes as an attention.h kernel (ring kAuto, the PE's SRAM).
AttentionStreamConfig stream_config(const AttentionConfig& a);

struct AttentionStreamResult {
  std::uint32_t grid_rows = 0;  // kv_heads x rows per head of the stream blocks' layout
  std::uint32_t grid_cols = 0;
  StreamRing ring = StreamRing::kRows;  // the rings timed (kAuto: the faster)
  std::uint32_t rings = 0;              // per head
  std::uint32_t ring_length = 0;        // PEs of the longest ring (its steps)
  std::uint32_t queries_per_pe = 0;     // qv of the fullest PE in a round
  std::uint32_t rounds = 0;
  std::uint64_t sram_bytes_per_pe = 0;
  std::uint64_t total_cycles = 0;         // the last output out of its PE's ramp
  std::uint64_t input_cycles = 0;         // the last PE's queries and own block in place
  std::uint64_t compute_cycles = 0;       // the busiest PE's engine (FMACs, softmax, stores)
  std::uint64_t compute_done_cycles = 0;  // the last ring step done
  std::uint64_t combine_cycles = 0;       // the chain's end - compute done (rows)
  std::uint64_t drain_cycles = 0;         // total - the chain's (or compute's) end
  std::uint64_t shift_cycles = 0;         // the busiest ring edge's wavelets
  std::uint64_t busy_cycles = 0;          // engine cycles of all PEs, all heads
  std::uint64_t wavelet_hops = 0;         // all heads
  std::uint64_t skipped_blocks = 0;       // (PE, block) pairs skipped as causal, one head
  std::uint32_t max_ring_hops = 0;
  double wall_seconds = 0.0;
};

// Per-PE fidelity: every PE of one head, every step, its own queries and blocks; the heads
// alike (hops and busy cycles x kv_heads). Throws CapacityError when one query a PE does
// not fit beside its block and buffers.
AttentionStreamResult run_attention_stream(const FabricConfig& fabric, const PeConfig& pe,
                                           const AttentionStreamConfig& a);

// The closed form above for `ring` (kRows or kSnake) on uniform full blocks, every block
// attended, every ring edge `hops` hops: the bound the tests hold the recurrences to.
std::uint64_t attention_stream_closed_form(const FabricConfig& fabric, const PeConfig& pe,
                                           const AttentionStreamConfig& a, StreamRing ring,
                                           std::uint32_t hops);

// The online-softmax update of one query by T tokens of a block (0 for T = 0), and the
// cycles to store an arriving block of `tokens` tokens (exposed for the tests).
std::uint64_t stream_query_cycles(const PeConfig& pe, std::uint64_t head_dim, std::uint32_t kv_bytes,
                                  std::uint64_t tokens);
std::uint64_t stream_block_store_cycles(const PeConfig& pe, std::uint64_t head_dim, std::uint32_t kv_bytes,
                                        std::uint64_t tokens);

}  // namespace wse::wafer
