// Decode attention on tiled fidelity (attention_tiled.h) against the per-PE kernel
// (attention.h): k = 1 equal cycle for cycle, k > 1 within its stated bound, and a small
// case derived by hand.
//
// Facts used by hand (default fabric: H = R = C = 1; default PE = WSE-2; head_dim 4,
// fp16 K/V, one query, 2 tokens per PE: the costs listed in kernels_test.cpp):
//  - one query over T = 2 tokens: 4 score FMACs of 2 cycles + softmax and P V 26 = 34;
//  - append store: 2 K wavelets of 2 cycles, 2 V wavelets of 1: 6 cycles;
//  - combine: m wavelet 17 cycles, each l and o wavelet 2; normalise at the root 9;
//    payload 1 x (4 + 2) = 6 wavelets;
//  - a tiled node of k x k PEs: hop k H, link k wide, ramp k^2 wide.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention_test_util.h"
#include "util/systemc_test.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/attention_tiled.h"
#include "wse_mesh/kernels/kernel_cache.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer {
namespace {

class AttentionTiledTest : public wse::testing::SystemCTest {};

using test::small_attention;

void expect_same(const AttentionResult& t, const AttentionResult& p, const std::string& what) {
  EXPECT_EQ(t.total_cycles, p.total_cycles) << what;
  EXPECT_EQ(t.append_cycles, p.append_cycles) << what;
  EXPECT_EQ(t.query_cycles, p.query_cycles) << what;
  EXPECT_EQ(t.compute_cycles, p.compute_cycles) << what;
  EXPECT_EQ(t.compute_done_cycles, p.compute_done_cycles) << what;
  EXPECT_EQ(t.combine_cycles, p.combine_cycles) << what;
  EXPECT_EQ(t.wavelet_hops, p.wavelet_hops) << what;
  EXPECT_EQ(t.grid_rows, p.grid_rows) << what;
  EXPECT_EQ(t.grid_cols, p.grid_cols) << what;
  EXPECT_EQ(t.sram_bytes_per_pe, p.sram_bytes_per_pe) << what;
}

// A 1 x 8 head (context 15 + 1 = 16 tokens = 8 blocks of 2; the new token on PE 7) with
// the chain combine, by hand per-PE and at k = 4 (nodes of PEs 0-3 and 4-7).
//
// Per-PE. The source PE 0 sends q (2 wavelets) at 0, 2 and K/V (4 wavelets) at 1, 3, 4,
// 5 (its ramp alternates the colors, the query first); a wavelet sent at t reaches PE c
// at t + c + 2. PE 7 gets K/V at 10, 12, 13, 14: stores end at 13, 15, 16, 17 (append
// done 17); q at 9 and 11, held back: FMACs 17..21, 21..25, softmax and P V to 51. PE c
// of 1..6 gets q at c + 2, c + 4 and is done at c + 37 (PE 6: 43), PE 0 at 34.
// The chain: PE 7 sends its 6 wavelets at 51..56; PE 6 gets wavelet j at 54 + j and ends
// its m step at 55 + 17 = 72, sending it on at once; each further PE ends its m step
// 3 (ramp, hop, ramp) + 1 + 17 = 21 cycles after the one before: PE 0 at 72 + 6 x 21 =
// 198; its other 5 wavelets (arrived long before) take 2 cycles each: 208; normalised
// at 217.
//
// k = 4. The node fabric is 2 x 1 nodes, hop 4. The source's node sends the same
// wavelets at the same cycles (paced, query first); node 1 gets each at t + 1 + 4 + 1, PE
// 4's per-PE time, and PE 7 three PE hops later: the per-PE cycles, so PE 7 is done at 51
// again. PE 7 -> 6 -> 5 -> 4 are edges inside node 1, delivered 2R = 2 cycles after the
// send (their PE hop is in the node hop): a stage of 20. PE 6's m step ends at 53 + 1 +
// 17 = 71, PE 5's at 91, PE 4's at 111. PE 4 -> 3 crosses nodes: 1 + 4 + 1 = 6 cycles,
// PE 3's m step ends at 111 + 6 + 1 + 17 = 135, the per-PE cycle again. PE 3 -> 2 -> 1
// -> 0 are inside node 0: PE 0's m step ends at 135 + 3 x 20 = 195, its output is
// normalised at 195 + 10 + 9 = 214: 3 = (k - 1) H cycles before the per-PE run.
TEST_F(AttentionTiledTest, OneByEightHeadByHandPerPeAndAtKFour) {
  const AttentionConfig a = small_attention(15, Reduction::kChain);
  const AttentionResult p = run_attention(FabricConfig{}, PeConfig{}, a);
  EXPECT_EQ(p.grid_cols, 8u);
  EXPECT_EQ(p.append_cycles, 17u);
  EXPECT_EQ(p.query_cycles, 12u);
  EXPECT_EQ(p.compute_done_cycles, 51u);
  EXPECT_EQ(p.total_cycles, 217u);
  const AttentionResult t = run_attention_tiled(FabricConfig{}, 4, PeConfig{}, a);
  EXPECT_EQ(t.append_cycles, 17u);
  EXPECT_EQ(t.query_cycles, 12u);
  EXPECT_EQ(t.compute_done_cycles, 51u);
  EXPECT_EQ(t.total_cycles, 214u);
  EXPECT_EQ(t.wavelet_hops, p.wavelet_hops);  // the per-PE routes' hops
}

// k = 1 is the per-PE fabric with the node mapping: every figure equals run_attention's,
// decode and a prefill chunk, chain and tree, one to seven rows (folded from five), hop
// latencies 1 and 2.
TEST_F(AttentionTiledTest, OnePePerNodeIsThePerPeAttention) {
  int cases = 0;
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t hop : {1u, 2u}) {
      for (const std::uint32_t qt : {1u, 3u}) {
        for (const std::uint64_t blocks : {1ull, 3ull, 8ull, 13ull, 20ull, 35ull}) {
          AttentionConfig a = small_attention(0, red);
          a.q_heads = 4;
          a.kv_heads = 2;
          a.head_dim = 8;
          a.query_tokens = qt;
          a.max_grid_cols = 6;
          a.context = blocks * a.tokens_per_pe - qt;
          FabricConfig fc;
          fc.hop_latency_cycles = hop;
          const std::string what = std::string(reduction_name(red)) + " hop " + std::to_string(hop) + " qt " +
                                   std::to_string(qt) + " blocks " + std::to_string(blocks);
          expect_same(run_attention_tiled(fc, 1, PeConfig{}, a), run_attention(fc, PeConfig{}, a), what);
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 48);
}

// The bound for k > 1, decode (one query token): over 1 to 7 rows a head, 4 and 8 queries
// per KV head, both combines and k = 2, 4, 8, the tiled total is within 1% of the
// per-PE total (docs/wse_mesh.md, "Attention on tiled fidelity", states the measured
// worst), never later than the per-PE total by more than (k - 1) H, and every other
// figure but the combine's follows: the local work is the same per PE, the append and the
// query within (k - 1) H per dimension, the hops equal. The attention floor stays below
// every tiled total.
TEST_F(AttentionTiledTest, DecodeStaysWithinTheBound) {
  int cases = 0;
  double worst = 0.0;
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t G : {4u, 8u}) {
      for (const std::uint32_t Q : {16u, 24u}) {
        for (const std::uint64_t blocks : {Q - 3ull, 2ull * Q + 5, 4ull * Q - 1, 7ull * Q - 2}) {
          AttentionConfig a = small_attention(0, red);
          a.q_heads = 2 * G;
          a.kv_heads = 2;
          a.head_dim = 16;
          a.tokens_per_pe = 4;
          a.max_grid_cols = Q;
          a.context = blocks * a.tokens_per_pe - 1;
          const AttentionResult p = run_attention(FabricConfig{}, PeConfig{}, a);
          for (const std::uint32_t k : {2u, 4u, 8u}) {
            const std::string what = std::string(reduction_name(red)) + " G " + std::to_string(G) + " Q " +
                                     std::to_string(Q) + " blocks " + std::to_string(blocks) + " k " +
                                     std::to_string(k);
            const AttentionResult t = run_attention_tiled(FabricConfig{}, k, PeConfig{}, a);
            const double err =
                std::abs(static_cast<double>(t.total_cycles) - static_cast<double>(p.total_cycles)) /
                static_cast<double>(p.total_cycles);
            worst = std::max(worst, err);
            EXPECT_LE(err, 0.01) << what << ": tiled " << t.total_cycles << ", per-PE " << p.total_cycles;
            EXPECT_LE(t.total_cycles, p.total_cycles + (k - 1)) << what;
            EXPECT_EQ(t.compute_cycles, p.compute_cycles) << what;
            EXPECT_EQ(t.wavelet_hops, p.wavelet_hops) << what;
            EXPECT_LE(attention_decode_floor(PeConfig{}, a), t.total_cycles) << what;
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 96);
  std::printf("worst relative error of the tiled decode attention: %.5f\n", worst);
}

TEST_F(AttentionTiledTest, BadNodeSizesAreRefused) {
  const AttentionConfig chain = small_attention(15, Reduction::kChain);
  EXPECT_THROW(run_attention_tiled(FabricConfig{}, 0, PeConfig{}, chain), std::invalid_argument);
  EXPECT_NO_THROW(run_attention_tiled(FabricConfig{}, 3, PeConfig{}, chain));
  EXPECT_THROW(run_attention_tiled(FabricConfig{}, 3, PeConfig{}, small_attention(15, Reduction::kTree)),
               std::invalid_argument);
}

}  // namespace
}  // namespace wse::wafer
