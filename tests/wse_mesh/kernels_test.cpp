// Attention over a KV cache and the vector kernels on the per-PE fabric, with cycle
// counts derived by hand.
//
// Common facts (default fabric: H = R = C = 1, 4-wavelet buffers; default PE = WSE-2:
// 2 x 32-bit reads and 1 x 32-bit write per cycle, @fmachs 2, @fadds 2, @fmacs 2,
// @fmach 4, @faddh 4, exp 8 FMAC passes, rsqrt 7, 1/x 5):
//  - a wavelet handed to the ramp at t reaches the PE h hops away at t + 1 + h + 1 and
//    is usable there from t + h + 3; an instruction over it starts then, or when the
//    PE's engine is free;
//  - a PE sending on two colors alternates them on its ramp, one wavelet per cycle,
//    starting with the color queued second (round-robin from the first);
//  - vector_cycles(simd, e, read bits, write bits) = max(ceil(e / simd),
//    ceil(e * read / 64), ceil(e * write / 32)).
// Attention costs with head_dim D = 4, fp16 K/V (16 bits):
//  - score FMAC over T tokens (K 16 + score 32 read, 32 written): max(T/2, 48T/64, T) = T;
//  - softmax and P V of one query over T tokens: max 1 + sum 1 (T = 2: ceil(2/2)) +
//    exp 8 x 2 = 16 + P V 2 x max(2, 3, 4) = 8: 26 for T = 2; for T = 1: 1 + 1 + 8 + 4 = 14;
//  - one query of 4 elements over T = 2: 4 x 2 + 26 = 34;
//  - append store: a K wavelet (2 fp16, strided: SIMD 1) 2 cycles, a V wavelet 1;
//    a token is 2 K + 2 V wavelets;
//  - combine: m wavelet 1 (max) + 2 x 8 (two exps) = 17, l and o wavelets 2 x 1 = 2;
//    the root's normalisation 5 (1/l) + max(2, 2, 4) = 4 (o x 1/l): 9.
#include <gtest/gtest.h>

#include <string>

#include "attention_test_util.h"
#include "util/systemc_test.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/vector_kernels.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer {
namespace {

class KernelsTest : public wse::testing::SystemCTest {};

using test::small_attention;  // one KV head of head_dim 4, one query, 2 tokens per PE

TEST_F(KernelsTest, DecodeAttentionOnFourPesExactCycles) {
  // context 7 + 1 new token = 8 tokens = 4 blocks: a 1 x 4 row; the new token (position
  // 7) belongs to PE 3. The source PE 0 sends q (2 wavelets) at 0, 2 and K/V (4
  // wavelets) at 1, 3, 4, 5 (its ramp alternates the two colors).
  //  - PE c (1, 2) gets q at 3 + (c - 1), 5 + (c - 1): FMACs 4 cycles from usable, then
  //    4 + 26: PE 1 done at 8 + 30 = 38, PE 2 at 39. PE 0 computes from SRAM: 34.
  //  - PE 3 gets q at 5, 7 (held back until its append is stored) and K/V at 6, 8, 9,
  //    10: stores 7..9, 9..11, 11..12, 12..13: append done at 13. Then 13 + 4 = 17 and
  //    17 + 30 = 47.
  //  - Tree: PE 1 -> 0 and PE 3 -> 2 (1 hop), PE 2 -> 0 (2 hops); 6 wavelets each.
  //    PE 3 sends at 47.., PE 2 gets wavelet k at 50 + k: m at 51..68, then one every 2
  //    cycles: sends at 68, 70, .., 78, reaching PE 0 at 72, 74, .., 82.
  //    PE 0 adds PE 1's (delivered 41..46) from 42 to 69, then PE 2's m at 73..90 and the
  //    rest at 92, .., 100; normalised at 109.
  const AttentionResult r = run_attention(FabricConfig{}, PeConfig{}, small_attention(7, Reduction::kTree));
  EXPECT_EQ(r.grid_rows, 1u);
  EXPECT_EQ(r.grid_cols, 4u);
  EXPECT_EQ(r.append_cycles, 13u);
  EXPECT_EQ(r.query_cycles, 8u);     // PE 3's second q wavelet at 7, usable at 8
  EXPECT_EQ(r.compute_cycles, 40u);  // PE 3: stores 6 + 34
  EXPECT_EQ(r.compute_done_cycles, 47u);
  EXPECT_EQ(r.total_cycles, 109u);
  EXPECT_EQ(r.combine_cycles, 109u - 47u);
  EXPECT_EQ(r.wavelet_hops, 4u * 3 + 2u * 3 + 6u * (1 + 1 + 2));
  // SRAM of PE 0: K 2 x 4 fp16 + V 16 B + q 8 B + scores 8 B + outputs 6 fp32.
  EXPECT_EQ(r.sram_bytes_per_pe, 16u + 16u + 8u + 8u + 24u);
}

TEST_F(KernelsTest, CombineChainVersusTree) {
  // The same attention with a chain to the west: PE 3 -> 2 -> 1 -> 0. PE 2 sends at 68,
  // 70, .., 78 (as above), PE 1 gets them at 71, 73, .., 81: m at 72..89, then 91, ..,
  // 99; PE 0 gets them at 92, 94, .., 102: m at 93..110, then 112, .., 120; normalised
  // at 129: 20 cycles more than the tree, whose two streams into PE 0 overlap PE 3's
  // late start.
  const AttentionResult chain =
      run_attention(FabricConfig{}, PeConfig{}, small_attention(7, Reduction::kChain));
  EXPECT_EQ(chain.compute_done_cycles, 47u);
  EXPECT_EQ(chain.total_cycles, 129u);
  EXPECT_EQ(chain.wavelet_hops, 4u * 3 + 2u * 3 + 6u * 3);
  const AttentionResult tree =
      run_attention(FabricConfig{}, PeConfig{}, small_attention(7, Reduction::kTree));
  EXPECT_LT(tree.total_cycles, chain.total_cycles);
}

// attention_decode_floor, the bound the decoder's tokens-per-PE search prunes with: a PE
// holding a full block does, per query, D score FMACs over its tokens and the softmax
// and P V. The 1 x 4 head above (1 query, D = 4, T = 2): 4 x 2 + 26 = 34, below its PE
// 3's 40 (stores 6 + 34) and its total 109. Across shapes (1 to 4 queries per KV head,
// 1 to 8 tokens per PE, contexts inside and beyond one block, both combines) the floor
// never exceeds the busiest PE's engine time, so never the total.
TEST_F(KernelsTest, DecodeAttentionFloorByHandAndBelowEveryRun) {
  EXPECT_EQ(attention_decode_floor(PeConfig{}, small_attention(7, Reduction::kTree)), 34u);
  int cases = 0;
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t G : {1u, 4u}) {
      for (const std::uint32_t tpp : {1u, 2u, 8u}) {
        for (const std::uint64_t context : {0ull, 5ull, 40ull}) {
          AttentionConfig a = small_attention(context, red);
          a.q_heads = 2 * G;
          a.kv_heads = 2;
          a.tokens_per_pe = tpp;
          a.max_grid_cols = 8;
          const AttentionResult r = run_attention(FabricConfig{}, PeConfig{}, a);
          const std::uint64_t floor = attention_decode_floor(PeConfig{}, a);
          EXPECT_LE(floor, r.compute_cycles) << "G " << G << ", tpp " << tpp << ", context " << context;
          EXPECT_LE(floor, r.total_cycles);
          EXPECT_GT(floor, 0u);
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 36);
}

// Folded rows (AttentionConfig::fold_rows): a head of 5 rows or more whose new tokens
// land in its last row is simulated as its first, one middle and its last row, then its
// column 0 with the rows' deliveries replayed one hop later per row. Every field equals
// the whole head's, for both combines, hop latencies 1 and 2, a last row full or not,
// decode and a 3-token prefill chunk (8 queries per KV head, head_dim 32, 4 tokens per
// PE, 8 and 12 columns, 5 to 9 rows), but the end of a chunk's query multicast (within 2%).
TEST_F(KernelsTest, FoldedRowsGiveTheWholeHeadsResult) {
  int folded_cases = 0;
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t hop : {1u, 2u}) {
      for (const std::uint32_t Q : {8u, 12u}) {
        for (const std::uint64_t blocks : {4 * Q + 2, 5 * Q, 6 * Q + Q / 2, 9 * Q - 1}) {
          for (const std::uint32_t query_tokens : {1u, 3u}) {
            AttentionConfig a;
            a.q_heads = 16;
            a.kv_heads = 2;
            a.head_dim = 32;
            a.tokens_per_pe = 4;
            a.max_grid_cols = Q;
            a.reduction = red;
            a.query_tokens = query_tokens;
            a.context = blocks * 4 - query_tokens;
            FabricConfig fc;
            fc.hop_latency_cycles = hop;
            a.fold_rows = false;
            const AttentionResult whole = run_attention(fc, PeConfig{}, a);
            a.fold_rows = true;
            const AttentionResult f = run_attention(fc, PeConfig{}, a);
            const std::string where = std::string(reduction_name(red)) + ", hop " + std::to_string(hop) +
                                      ", " + std::to_string(Q) + " columns, " + std::to_string(blocks) +
                                      " blocks, " + std::to_string(query_tokens) + " query tokens";
            EXPECT_EQ(whole.rows_simulated, (blocks + Q - 1) / Q) << where;
            EXPECT_EQ(f.rows_simulated, 3u) << where;
            folded_cases += f.rows_simulated == 3u;
            EXPECT_EQ(f.total_cycles, whole.total_cycles) << where;
            EXPECT_EQ(f.append_cycles, whole.append_cycles) << where;
            if (query_tokens == 1) {
              EXPECT_EQ(f.query_cycles, whole.query_cycles) << where;
            } else {
              // A chunk's new tokens share column c's south links with the query
              // multicast through every row, and their interleaving is not quite a
              // shift of three rows': the last query wavelet's delivery moves by up to
              // 9 of ~580 cycles (measured), while every other figure stays equal.
              EXPECT_NEAR(static_cast<double>(f.query_cycles), static_cast<double>(whole.query_cycles),
                          0.02 * static_cast<double>(whole.query_cycles))
                  << where;
            }
            EXPECT_EQ(f.compute_cycles, whole.compute_cycles) << where;
            EXPECT_EQ(f.compute_done_cycles, whole.compute_done_cycles) << where;
            EXPECT_EQ(f.combine_cycles, whole.combine_cycles) << where;
            EXPECT_EQ(f.wavelet_hops, whole.wavelet_hops) << where;
            EXPECT_EQ(f.sram_bytes_per_pe, whole.sram_bytes_per_pe) << where;
            EXPECT_EQ(f.grid_rows, whole.grid_rows) << where;
          }
        }
      }
    }
  }
  EXPECT_EQ(folded_cases, 64);
  // A head of 4 rows, or new tokens on an earlier row, is simulated whole.
  AttentionConfig a = small_attention(4 * 4 * 2 - 1, Reduction::kChain);
  a.max_grid_cols = 4;
  EXPECT_EQ(run_attention(FabricConfig{}, PeConfig{}, a).rows_simulated, 4u);
  a.context = 31;  // 5 rows (40 tokens), but a 9-token chunk starting on row 3 (block 15)
  a.query_tokens = 9;
  EXPECT_EQ(run_attention(FabricConfig{}, PeConfig{}, a).rows_simulated, 5u);
}

TEST_F(KernelsTest, HeadsRunSideBySideOnTheirOwnRows) {
  // Two KV heads on a 2 x 4 grid of a shared fabric: each head on its own row with its
  // own source, no route leaves its row, so each takes the 109 cycles of the test above
  // and the fabric carries twice the wavelet-hops.
  AttentionConfig a = small_attention(7, Reduction::kTree);
  a.q_heads = 2;
  a.kv_heads = 2;
  EXPECT_EQ(attention_grid(a), (std::pair<std::uint32_t, std::uint32_t>{2, 4}));
  FabricConfig fc;
  fc.width = 4;
  fc.height = 2;
  Fabric fabric(fc);
  const AttentionResult r = run_attention(fabric, PeConfig{}, a);
  EXPECT_EQ(r.grid_rows, 2u);
  EXPECT_EQ(r.total_cycles, 109u);
  EXPECT_EQ(r.wavelet_hops, 2u * 42u);
}

TEST_F(KernelsTest, HeadSpanningTwoRowsAppendsToTheFarPe) {
  // context 15 + 1 = 16 tokens = 8 blocks on at most 4 columns: 2 rows x 4 columns; the
  // new token goes to block 7, the far PE (3, 1): east along row 0, then south.
  // q reaches PE (c, 0) at t + 2 + c and PE (c, 1) at t + 3 + c (t = 0, 2); K/V are handed
  // to the ramp at 1, 3, 4, 5 and reach (3, 1) after 4 + 1 hops at 7, 9, 10, 11: stored
  // 8..10, 10..12, 12..13, 13..14: append done at 14.
  // Local work: (c, 0) done at 37 + c, (c, 1) at 38 + c for c < 3, (3, 1) at 14 + 4 + 30
  // = 48, PE (0, 0) at 34.
  // Combine (tree) per row, then (0, 1) -> (0, 0):
  //  - row 1: (1, 1) -> (0, 1) delivered 42..47, added 43..70; (3, 1) -> (2, 1) at 51..,
  //    (2, 1) sends at 69, 71, .., 79, reaching (0, 1) at 73, .., 83: added 74..91, ..,
  //    101; (0, 1) sends north at 91, 93, .., 101, reaching (0, 0) at 94, 96, .., 104;
  //  - row 0: (1, 0) -> (0, 0) delivered 41..46, added 42..69; (3, 0) -> (2, 0) at
  //    43..48, (2, 0) sends at 61, 63, .., 71, reaching (0, 0) at 65, .., 75, added
  //    69..86, .., 96;
  //  - (0, 0) adds (0, 1)'s m at 96..113, the rest at 115, .., 123; normalised at 132.
  AttentionConfig a = small_attention(15, Reduction::kTree);
  a.max_grid_cols = 4;
  EXPECT_EQ(attention_grid(a), (std::pair<std::uint32_t, std::uint32_t>{2, 4}));
  const AttentionResult r = run_attention(FabricConfig{}, PeConfig{}, a);
  EXPECT_EQ(r.grid_rows, 2u);
  EXPECT_EQ(r.grid_cols, 4u);
  EXPECT_EQ(r.append_cycles, 14u);
  EXPECT_EQ(r.query_cycles, 9u);
  EXPECT_EQ(r.compute_done_cycles, 48u);
  EXPECT_EQ(r.total_cycles, 132u);
}

TEST_F(KernelsTest, PrefillChunkIsCausal) {
  // context 2, 2 new tokens (positions 2 and 3) = 2 blocks, PE 1 owns both new tokens.
  // Source: q (4 wavelets) at 0, 2, 4, 6 and K/V (8 wavelets) at 1, 3, 5, 7, 8, 9, 10, 11;
  // PE 1 gets them 3 cycles later. Stores: 5..7, 7..9, 9..10, 11..12, 12..14, 14..16,
  // 16..17, 17..18: append done at 18.
  // Causal: query token 0 (position 2) sees 1 token of PE 1, token 1 sees 2: PE 1's
  // FMACs: 2 x 1, then 2 x 1 + 14 (T = 1), then 2 x 2, then 2 x 2 + 26: 18 + 52 = 70.
  // PE 1's query 0 is done at 18 + 2 + 16 = 36, query 1 at 70. PE 0 sees 2 tokens for
  // both: query 0 done at 34, query 1 at 68 (its engine runs both from SRAM at once).
  // Combine, query by query: PE 1 sends query 0's 6 wavelets at 36.., reaching PE 0 at
  // 39..44, and query 1's at 70.., reaching it at 73..78. PE 0 is busy until 68: query
  // 0's m 68..85, the rest to 95, normalised at 104; query 1's m 104..121, the rest to
  // 131, normalised at 140.
  AttentionConfig a = small_attention(2, Reduction::kTree);
  a.query_tokens = 2;
  const AttentionResult r = run_attention(FabricConfig{}, PeConfig{}, a);
  EXPECT_EQ(r.grid_cols, 2u);
  EXPECT_EQ(r.append_cycles, 18u);
  EXPECT_EQ(r.compute_cycles, 68u);  // PE 0; PE 1 has 12 of stores + 52
  EXPECT_EQ(r.compute_done_cycles, 70u);
  EXPECT_EQ(r.total_cycles, 140u);
}

TEST_F(KernelsTest, CacheLargerThanSramIsACapacityError) {
  // 128 tokens x 128 values x fp16 = 32 KiB of K, and as much of V: V is 16 KiB short.
  AttentionConfig a;
  a.q_heads = 4;
  a.kv_heads = 1;
  a.head_dim = 128;
  a.context = 1024;
  a.tokens_per_pe = 128;
  try {
    run_attention(FabricConfig{}, PeConfig{}, a);
    FAIL() << "expected a CapacityError";
  } catch (const CapacityError& e) {
    EXPECT_EQ(e.shortfall_bytes(), 16u * 1024);
    EXPECT_NE(std::string(e.what()).find("V cache"), std::string::npos) << e.what();
  }
  a.q_heads = 3;
  a.kv_heads = 2;
  EXPECT_THROW(attention_grid(a), std::invalid_argument);  // not a multiple of kv_heads
}

VectorKernelConfig line(VectorOp op, std::uint64_t elements, std::uint32_t pes, Reduction red) {
  VectorKernelConfig v;
  v.op = op;
  v.elements = elements;
  v.pes = pes;
  v.reduction = red;
  return v;
}

TEST_F(KernelsTest, RmsNormOnFourPesExactCycles) {
  // 16 fp16 values, 4 per PE. Sum of squares: max(4/2, 4 x 32 / 64, 0) = 2. Root: mean
  // + eps 1 + rsqrt 7 = 8. Scale: x * s max(1, 1, 2) = 2, then * w max(1, 2, 2) = 2: 4.
  // Tree: PE 1 -> 0, PE 3 -> 2 delivered at 5, added 6..7; PE 2 sends at 7, reaching
  // PE 0 at 11, added 12..13; scale 13..21; broadcast at 21 reaches PE j at 23 + j,
  // usable 24 + j; PE 3 done at 27 + 4 = 31.
  const VectorKernelResult t =
      run_vector_kernel(FabricConfig{}, PeConfig{}, line(VectorOp::kRmsNorm, 16, 4, Reduction::kTree));
  EXPECT_EQ(t.total_cycles, 31u);
  EXPECT_EQ(t.local_cycles, 6u);
  EXPECT_EQ(t.reduce_cycles, 21u - 2u);
  EXPECT_EQ(t.broadcast_cycles, 27u - 21u);
  EXPECT_EQ(t.wavelet_hops, 4u + 3u);
  // Chain to the east: 5 cycles a stage (PE 3 adds at 16..17), scale 17..25, broadcast
  // west from 25: PE 0 gets it at 30, usable 31: done at 35.
  const VectorKernelResult c =
      run_vector_kernel(FabricConfig{}, PeConfig{}, line(VectorOp::kRmsNorm, 16, 4, Reduction::kChain));
  EXPECT_EQ(c.total_cycles, 35u);
}

TEST_F(KernelsTest, SoftmaxOnTwoPesExactCycles) {
  // 4 fp32 values, 2 per PE. Max: max(1, 1, 0) = 1. exp: 8 x max(1, 1, 2) = 16, sum 1:
  // 17. Scale: max(1, 1, 2) = 2. PE 1's max reaches PE 0 at 4, max 5..6, broadcast at 6
  // reaches PE 1 at 9; PE 0 exps 6..23, PE 1 10..27 and sends its sum, at PE 0 at 30,
  // added 31..32, 1 / sum 32..37, broadcast at 37 reaches PE 1 at 40; PE 1 scales
  // 41..43.
  VectorKernelConfig v = line(VectorOp::kSoftmax, 4, 2, Reduction::kTree);
  v.dtype = Accumulate::kFp32;
  const VectorKernelResult r = run_vector_kernel(FabricConfig{}, PeConfig{}, v);
  EXPECT_EQ(r.total_cycles, 43u);
  EXPECT_EQ(r.local_cycles, 1u + 17u + 2u);
  EXPECT_EQ(r.reduce_cycles, (6u - 1u) + (37u - 27u));
  EXPECT_EQ(r.broadcast_cycles, 4u + 4u);
}

TEST_F(KernelsTest, ElementwiseIsLocal) {
  // 10 fp16 values on 4 PEs (3, 3, 2, 2), 3 instructions each: 3 x max(1, 96 / 64,
  // 48 / 32) = 6 cycles, no fabric traffic.
  VectorKernelConfig v = line(VectorOp::kElementwise, 10, 4, Reduction::kTree);
  v.ops_per_element = 3;
  const VectorKernelResult r = run_vector_kernel(FabricConfig{}, PeConfig{}, v);
  EXPECT_EQ(r.total_cycles, 6u);
  EXPECT_EQ(r.wavelet_hops, 0u);
}

TEST_F(KernelsTest, TwoVectorsPipeline) {
  // RMSNorm of two tokens on the 4 PEs of the test above: every PE computes both sums of
  // squares first (0..2, 2..4). Vector 0 as before reaches PE 0 at 11 and is scaled there
  // by 21 (done at 25); vector 1's sums reach PE 0 at 7 and 13, are added 8..9 and
  // 25..26 (after PE 0's own scaling), scale 26..34, broadcast at 34, usable at PE 3 at
  // 40: done at 44, against 2 x 31 = 62 one after the other.
  VectorKernelConfig v = line(VectorOp::kRmsNorm, 16, 4, Reduction::kTree);
  v.vectors = 2;
  const VectorKernelResult r = run_vector_kernel(FabricConfig{}, PeConfig{}, v);
  EXPECT_EQ(r.total_cycles, 44u);
  EXPECT_EQ(r.local_cycles, 2u * 6u);
}

TEST_F(KernelsTest, VectorKernelErrors) {
  EXPECT_THROW(
      run_vector_kernel(FabricConfig{}, PeConfig{}, line(VectorOp::kRmsNorm, 3, 4, Reduction::kTree)),
      std::invalid_argument);  // fewer values than PEs
  VectorKernelConfig big = line(VectorOp::kRmsNorm, 64 * 1024, 1, Reduction::kTree);
  EXPECT_THROW(run_vector_kernel(FabricConfig{}, PeConfig{}, big), CapacityError);  // 128 KiB on one PE
}

TEST_F(KernelsTest, PeCostKeysComeFromTheHardwareFiles) {
  auto pe_of = [](const std::string& relative) {
    config::Document doc = config::load(wse::testing::source_path(relative));
    config::Section root = doc.root();
    config::Section w = root.section("wafer", "the wafer");
    const WaferConfig c = read_wafer_config(w);
    doc.finish();
    return c.pe;
  };
  const PeConfig wse3 = pe_of("configs/hardware/cs3.yaml");
  EXPECT_EQ(wse3.simd_fp32_fmac, 4u);
  EXPECT_EQ(wse3.exp_fmacs_per_element, 8u);
  EXPECT_EQ(wse3.rsqrt_fmacs_per_element, 7u);
  EXPECT_EQ(wse3.reciprocal_fmacs_per_element, 5u);
  // WSE-3, 64-bit ports: an fp32 pass over 8 values is max(8 / 4, 256 / 128, 256 / 64) = 4
  // cycles; exp is 8 of them.
  EXPECT_EQ(exp_cycles(wse3, 8), 32u);
  const PeConfig wse2 = pe_of("configs/hardware/wse2.yaml");
  EXPECT_EQ(wse2.simd_fp32_fmac, 2u);
  EXPECT_EQ(exp_cycles(wse2, 8), 8u * 8u);  // max(4, 4, 8) = 8 a pass
  // A cheaper exp shortens the softmax: 4 passes instead of 8 save 4 x 2 cycles on each
  // PE of the 2-PE softmax above (43 cycles).
  config::Document doc = config::parse("pe:\n  exp_fmacs_per_element: 4\n", "pe.yaml");
  config::Section root = doc.root();
  config::Section pe_section = root.section("pe", "the PE");
  const PeConfig fast_exp = read_pe_config(pe_section);
  VectorKernelConfig v = line(VectorOp::kSoftmax, 4, 2, Reduction::kTree);
  v.dtype = Accumulate::kFp32;
  EXPECT_EQ(run_vector_kernel(FabricConfig{}, fast_exp, v).total_cycles, 43u - 8u);
  PeConfig broken;
  broken.exp_fmacs_per_element = 0;
  EXPECT_THROW(validate(broken), std::invalid_argument);
}

}  // namespace
}  // namespace wse::wafer
