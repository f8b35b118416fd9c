// The operators of a lowered forward pass timed by the wse_mesh kernels on the grids of
// the placement (docs/wse_mesh.md, "Decode on the wafer", "Operators as kernels"):
//  - gemm: the GEMV of gemv.h with `vectors` = m (the microbatch's tokens; in passes of
//    at most `gemm_vectors`, one after another) on the weight's P x Q grid (or turned),
//    the configured accumulation, the fastest reduction (fastest_gemv); tiled fidelity
//    (run_gemv_tiled, k = wafer.tile) when k > 1. With m > 1 the weight-stationary
//    Cannon GEMM of gemm_cannon.h runs instead when it is faster (gemm_algorithm auto, on
//    the grid or turned), its buffers within what the layer's placement leaves a PE. The `count` instances
//    (experts) sit on their own grids and run at once: the time is one instance's. A GEMM without a placed
//    tensor of its name (MLA's absorbed per-head products) runs on the auto grid of its
//    shape. Weights narrower than 16 bits are timed as the fp16 kernel (the SDK lists
//    fp16 FMACs only: the PE is taken to widen them on the way), with the kernel's SRAM
//    check scaled by the same packing factor as the placement used;
//  - attention: run_attention per sequence (KV spread over its own PEs, the layer's
//    tokens per PE; a decode on tiled fidelity, run_attention_tiled, when k = wafer.tile
//    > 1 and attention_tiled); the sequences of a microbatch hold disjoint PEs and run at once; a
//    decode context is rounded up to fill its last block of tokens_per_pe tokens (the
//    kernel's time depends on the block count only), so one result serves a whole block;
//    query vectors that do not fit beside the cache run in parts one after another: a
//    prefill chunk as sub-chunks of half (a quarter, ...) the tokens, then the query
//    heads of a KV head in groups (MLA decode: 128 heads share one latent head); a
//    prefill chunk (query_tokens > 1) runs instead, or when faster (prefill_attention
//    auto), the streamed kernel of attention_stream.h (K and V shifted past stationary
//    queries), which the statistics count;
//  - norm (RMSNorm), router (softmax over the experts), activation, rope, residual_add,
//    expert_combine (elementwise, operations per value as the lowering counts them):
//    run_vector_kernel on a line of PEs as long as the layer's input grid is wide (its
//    top row holds the x segments of the next GEMV), or longer when the values of all the
//    microbatch's tokens need more PEs' SRAM;
//  - embedding: a lookup, composed: each of the table grid's Q columns reads its Kt
//    values of each token's row and sends them to the input grid as one message per
//    column (fabric rule: h x H + n + 2R for n wavelets over h hops, fabric_test);
//  - moves between layers: the output grid's P rows each send their share of the
//    hidden state to the next layer's input grid, min(P, Q) messages in parallel, timed
//    by the same message rule over the Manhattan distance between the grids.
// Every kernel result is reused through KernelCache (every layer runs the same shapes).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "wse_mesh/decode/kernel_timer.h"
#include "wse_mesh/decode/placement.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/kernel_cache.h"
#include "wse_mesh/kernels/vector_kernels.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer {

struct SimulatedKernelOptions {
  PlacementOptions placement;  // for the auto grid of unplaced GEMMs
  std::uint32_t attention_max_grid_cols = 256;
  Reduction attention_combine = Reduction::kChain;
  // Decode attention over more than this many token blocks per head is simulated at
  // multiples of it and interpolated in between, or taken from the ends of a plateau of
  // equal times; a prefill sub-chunk at the two ends of the block counts that wrap onto
  // as many PE rows as its own (0: all simulated).
  std::uint32_t attention_block_grain = 16;
  // Decode attention (one query token) on tiled fidelity (run_attention_tiled, k =
  // wafer.tile) when k > 1 (the tree combine: when k is also a power of two); false: the
  // per-PE kernel at every k (decode.attention.fidelity: per_pe).
  bool attention_tiled = true;
  Accumulate accumulate = Accumulate::kFp16;  // GEMV partial sums
  bool reduction_auto = true;                 // GEMV: the fastest of chain, tree, K-tree per kernel
  Reduction reduction = Reduction::kTree;     // GEMV, when not auto
  // GEMMs of m > 1 tokens: the GEMV passes (the timer's own default, as before the
  // Cannon GEMM), the faster of them and the Cannon GEMM (auto: what WaferDecoder passes
  // from decode.gemm_algorithm), or Cannon (gemm_cannon.h, GemmAlgorithm).
  GemmAlgorithm gemm_algorithm = GemmAlgorithm::kGemv;
  // Attention of a prefill chunk (query_tokens > 1): the decode kernel in sub-chunks (the
  // timer's own default, as before the streamed kernel), the faster of it and the
  // streamed kernel (auto: what WaferDecoder passes from decode.prefill_attention), or the
  // streamed kernel wherever it fits (attention_stream.h, PrefillAttention).
  PrefillAttention prefill_attention = PrefillAttention::kCombine;
};

// A lower bound on the cycles of the GEMV (GEMM of c.vectors vectors) `c`, from its root
// PE's engine alone: a PE of the first PE row (ceil(M / P) rows) runs its FMACs over at
// least floor(K / Q) x elements per vector and, on the same engine, adds every wavelet of
// sums of each stream it receives (the tree's root one per round, ceil(log2 Q); the
// chain's and the K-tree's at least one). SimulatedKernels::fastest_gemv skips a
// candidate whose bound cannot beat the best result found.
std::uint64_t gemv_root_engine_floor(const PeConfig& pe, const GemvConfig& c);

class SimulatedKernels : public KernelTimer {
 public:
  SimulatedKernels(const WaferConfig& wafer, const SimulatedKernelOptions& opt, KernelCache& cache);

  KernelTiming time(const workloads::Operator& op, const LayerPlan& layer) override;
  KernelTiming move(const LayerPlan& from, const LayerPlan& to, std::uint64_t tokens,
                    std::uint64_t bytes) override;
  KernelTiming handoff(const TensorGrid& grid, std::uint64_t tokens) override;
  std::map<std::string, std::uint64_t> reductions_chosen() const override;
  std::map<std::string, std::uint64_t> gemm_algorithms_chosen() const override;
  void set_gemm_algorithm(GemmAlgorithm a) override { opt_.gemm_algorithm = a; }
  std::map<std::string, std::uint64_t> prefill_attention_chosen() const override;
  std::uint64_t choices_version() const override { return choices_version_; }
  // attention_decode_floor of the kernel time() would simulate (decode: one query token).
  std::uint64_t attention_floor(const workloads::Operator& op, const LayerPlan& layer) const override;
  void set_prefill_attention(PrefillAttention a) override { opt_.prefill_attention = a; }
  std::uint64_t reused() const override { return cache_.hits(); }
  std::uint64_t simulated() const override { return cache_.misses(); }

  // The kernel configurations an operator maps to (exposed for tests and reports).
  GemvConfig gemv_config(const workloads::Operator& op, const LayerPlan& layer) const;
  AttentionConfig attention_config(const workloads::Operator& op, const LayerPlan& layer) const;
  VectorKernelConfig vector_config(const workloads::Operator& op, const LayerPlan& layer) const;

 private:
  KernelTiming gemm(const workloads::Operator& op, const LayerPlan& layer);
  // The Cannon GEMM of `c`'s matrix and m tokens on its grid and, for a spread tensor,
  // turned: the faster (throws CapacityError when neither fits).
  GemmCannonResult fastest_cannon(const GemvConfig& c, std::uint64_t tokens, const TensorGrid* t,
                                  const LayerPlan& layer, const PeConfig& pe);
  // The GEMV (or GEMM pass) `c` on its grid and, for a spread tensor, on its grid turned
  // by 90 degrees, with each reduction allowed: the fastest run.
  GemvResult fastest_gemv(const GemvConfig& c, const TensorGrid* t, const PeConfig& pe);
  KernelTiming attention(const workloads::Operator& op, const LayerPlan& layer);
  // The decode kernel of attention.h for `a`, in parts that fit (sub-chunks, head groups).
  KernelTiming attention_combine(const AttentionConfig& a);
  KernelTiming vector(const workloads::Operator& op, const LayerPlan& layer);
  KernelTiming embedding(const workloads::Operator& op, const LayerPlan& layer) const;
  // One attention kernel call: through the cache, or for a decode of many blocks,
  // interpolated between the two neighbouring multiples of attention_block_grain.
  struct AttentionCost {
    double cycles = 0, hops = 0, pe_busy = 0;
  };
  // The cost of each part is kept (attention_costs_): the layers of a microbatch, and the
  // microbatches of later passes with the same blocks, ask for the same parts, and
  // finding a part's sample points takes many cache lookups.
  AttentionCost attention_cost(const AttentionConfig& part);
  AttentionCost sampled_attention_cost(const AttentionConfig& part);
  // The node size the attention kernel `a` runs at: 0 per-PE, k tiled (see
  // SimulatedKernelOptions::attention_tiled).
  std::uint32_t attention_tile(const AttentionConfig& a) const;
  // n wavelets over h hops as one uncontended message (fabric rule 1-3).
  std::uint64_t message_cycles(std::uint64_t hops, std::uint64_t wavelets) const;

  WaferConfig wafer_;
  SimulatedKernelOptions opt_;
  KernelCache& cache_;
  std::map<std::string, std::string> chosen_;     // GEMV kernel -> the reduction it took
  std::map<std::string, std::string> algorithm_;  // GEMM kernel (shape, grid, tokens) -> gemv or cannon
  std::map<std::string, std::string> prefill_attention_;  // prefill attention kernel -> stream or combine
  std::uint64_t choices_version_ = 0;                     // counts the assignments to the three maps above
  std::set<std::pair<const TensorGrid*, std::uint64_t>> cannon_outputs_;  // (grid, tokens) run as Cannon
  std::set<std::string> cannon_misfits_;  // Cannon kernels (cache keys) whose buffers did not fit
  std::map<std::string, std::pair<std::size_t, Reduction>>
      choice_;  // shape family -> (orientation, reduction)
  // attention_cost by part (KernelCache::shape_key and the node size): a function of the
  // part alone on this wafer, kept while the cache reuses results.
  std::unordered_map<std::string, AttentionCost> attention_costs_;
};

}  // namespace wse::wafer
