// GEMV on a PE grid and the PE cost model, with cycle counts derived by hand.
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/gemv_tiled.h"

#include <array>
#include <string>

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class GemvTest : public wse::testing::SystemCTest {};

PeConfig wse2_pe() { return PeConfig{}; }  // the defaults are the WSE-2 datasheet values

TEST_F(GemvTest, InstructionCostsFollowSimdAndPorts) {
  const PeConfig pe = wse2_pe();
  // fp16 FMAC over 8 elements: SIMD 4 -> 2 cycles; reads 8 x (16 + 16) bits over
  // 2 x 32 bits -> 4 cycles; writes 8 x 16 over 32 -> 4 cycles: the ports bind, 4.
  EXPECT_EQ(fmac_cycles(pe, Accumulate::kFp16, 8), 4u);
  // fp32 accumulate: writes 8 x 32 bits over 32 -> 8 cycles.
  EXPECT_EQ(fmac_cycles(pe, Accumulate::kFp32, 8), 8u);
  // Wider ports (64 bits): fp16 FMAC is SIMD-bound at 4 wide -> 2 cycles; reads 8 x 32 /
  // 128 = 2, writes 8 x 16 / 64 = 2.
  PeConfig wide = pe;
  wide.sram_port_bits = 64;
  EXPECT_EQ(fmac_cycles(wide, Accumulate::kFp16, 8), 2u);
  // WSE-3 SIMD 8 with 64-bit ports: reads bind at 2 cycles for 8 elements.
  PeConfig wse3 = wide;
  wse3.simd_fp16_fmac = 8;
  EXPECT_EQ(fmac_cycles(wse3, Accumulate::kFp16, 16), 4u);
  // fp32 add of 1 element: 1 cycle.
  EXPECT_EQ(add_cycles(pe, Accumulate::kFp32, 1), 1u);
}

TEST_F(GemvTest, FourByFourGemvExactCycles) {
  // y = W x, W 16 x 16 fp16, on a 4 x 4 grid, fp16 accumulation, WSE-2 PE, fabric with
  // 1-cycle hops and ramps. Each PE holds a 4 x 4 tile; x segment = 4 fp16 = 2 wavelets;
  // partial sums = 4 fp16 = 2 wavelets. One FMAC over 4 accumulators costs 2 cycles
  // (ports: 4 x 32 bits read over 64 per cycle); one add of a 2-element wavelet, 1.
  // Top row: x in SRAM, 4 elements x 2 = 8 cycles of FMAC, done at T0 = 8.
  // Multicast: wavelet k reaches PE row i at k + 1 (ramp) + i (hops) + 1 (ramp) = k + i + 2.
  //   Row i >= 1: w0 at i+2, FMACs i+3..i+7; w1 at i+3, waits, FMACs i+7..i+11: T_i = i + 11.
  //   Row 3 gets its last x wavelet at 6: multicast time 7; compute done at T_3 = 14.
  // Reduction along row i (chain east): PE 0 sends 2 wavelets at T, T+1; each stage is
  //   ramp + hop + ramp (3) + 1 (next cycle) + add (1) = 5 cycles per wavelet, and the
  //   second wavelet follows one cycle behind: east PE done at T + 3 * 5 + 1 = T + 16.
  // Total: row 3 finishes last at 14 + 16 = 30; reduction exposed = 30 - 14 = 16.
  FabricConfig fc;
  GemvConfig g;
  g.rows = 16;
  g.cols = 16;
  g.grid_rows = 4;
  g.grid_cols = 4;
  g.accumulate = Accumulate::kFp16;
  const GemvResult r = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(r.tile_rows, 4u);
  EXPECT_EQ(r.tile_cols, 4u);
  EXPECT_EQ(r.compute_cycles, 8u);
  EXPECT_EQ(r.multicast_cycles, 7u);
  EXPECT_EQ(r.compute_done_cycles, 14u);
  EXPECT_EQ(r.total_cycles, 30u);
  EXPECT_EQ(r.reduction_cycles, 16u);
  // x: 4 columns x 2 wavelets x 3 hops; sums: 4 rows x 3 links x 2 wavelets.
  EXPECT_EQ(r.wavelet_hops, 4u * 2 * 3 + 4u * 3 * 2);
  EXPECT_EQ(r.sram_bytes_per_pe, 4u * 4 * 2 + 4 * 2 + 4 * 2);
}

GemvConfig four_by_four(std::uint32_t vectors) {
  GemvConfig g;
  g.rows = 16;
  g.cols = 16;
  g.grid_rows = 4;
  g.grid_cols = 4;
  g.accumulate = Accumulate::kFp16;
  g.vectors = vectors;
  return g;
}

TEST_F(GemvTest, FourByFourGemmOfTwoAndThreeVectorsExactCycles) {
  // The 4 x 4 GEMV above (f = 2 cycles per FMAC element, 4 elements = 2 x wavelets per
  // vector, 2 wavelets of sums per vector, a = 1 per add, chain stage 5 cycles), now
  // with m vectors. Row 3 binds, as for m = 1. The top PE of each column sends 2m x
  // wavelets back to back: x wavelet w reaches row 3 at w + 5, its FMACs may start at
  // w + 6. Adds take the engine first, so they delay the FMACs they overlap.
  // m = 2, row 3 (F_v = PE's FMACs of vector v done):
  //  PE 0 (no adds): F0 = 6+4+4 = 14, F1 = 14+4+4 = 22; sends v0 at 14, 15 and v1 at 22, 23.
  //  PE 1: v0 arrives 17, 18 -> adds [18,19), [19,20): sums final 19, 20. FMACs of v1:
  //    x wavelet 2 in 14..18, wavelet 3 waits out the two adds: 20..24, F1 = 24. v1 sums
  //    arrive 25, 26 -> adds [26,27), [27,28): final 27, 28.
  //  PE 2: v0 from PE 1 (sent 19, 20) arrives 22, 23 -> final 24, 25; F1 = 22 (its adds
  //    come later); v1 (sent 27, 28) arrives 30, 31 -> final 32, 33.
  //  PE 3: v0 arrives 27, 28 -> final 29, 30 (the m = 1 figure); F1 = 22; v1 arrives 35,
  //    36 -> adds [36,37), [37,38): total 38. Rows 1 and 2 are 2 and 1 cycles earlier, row
  //    0 (x in SRAM) ends at 32.
  //  compute done: PE 1's F1 = 24; exposed reduction 38 - 24 = 14; multicast: x wavelet
  //  3 reaches row 3 at 8, 9 cycles.
  GemvResult r = run_gemv(FabricConfig{}, wse2_pe(), four_by_four(2));
  EXPECT_EQ(r.total_cycles, 38u);
  EXPECT_EQ(r.first_vector_cycles, 30u);
  EXPECT_EQ(r.compute_done_cycles, 24u);
  EXPECT_EQ(r.reduction_cycles, 14u);
  EXPECT_EQ(r.multicast_cycles, 9u);
  EXPECT_EQ(r.compute_cycles, 2u * 8);
  // m = 3, row 3; x wavelets 4, 5 may start FMACs at 10, 11 (long before the engine
  // gets to them). PE 0: F2 = 30, sends v2 at 30, 31.
  //  PE 1: adds at [18,20) (v0), [26,28) (v1); F2: wavelet 4 runs 24..26, waits out the
  //    v1 adds, 28..30, wavelet 5 30..34: F2 = 34. v2 arrives 33, 34 -> adds [34,36):
  //    final 35, 36.
  //  PE 2: adds at [23,25) (v0), [31,33) (v1); F2: wavelet 4 22..23, adds, 25..28;
  //    wavelet 5 28..31, adds, 33..34: F2 = 34. v2 (sent 35, 36) arrives 38, 39 -> adds
  //    [39,41): final 40, 41.
  //  PE 3: adds at [28,30) (v0), [36,38) (v1); F2 = 32; v2 (sent 40, 41) arrives 43, 44
  //    -> adds [44,46): total 46.
  //  compute done 34 (PEs 1 and 2); multicast: x wavelet 5 at row 3 at 10, 11 cycles.
  r = run_gemv(FabricConfig{}, wse2_pe(), four_by_four(3));
  EXPECT_EQ(r.total_cycles, 46u);
  EXPECT_EQ(r.first_vector_cycles, 30u);
  EXPECT_EQ(r.compute_done_cycles, 34u);
  EXPECT_EQ(r.reduction_cycles, 12u);
  EXPECT_EQ(r.multicast_cycles, 11u);
  // x: 4 columns x 2m wavelets x 3 hops; sums: 4 rows x 3 links x 2m wavelets.
  EXPECT_EQ(r.wavelet_hops, 3u * (4 * 2 * 3 + 4 * 3 * 2));
}

TEST_F(GemvTest, ComputeBoundGemmGrowsByFmacsPlusAddsPerVector) {
  // The same 4 x 4 GEMM with many vectors. Per vector, a chain PE that adds (columns
  // 1..3) spends 4 elements x 2 = 8 cycles of FMACs and 2 adds x 1 cycle on its engine:
  // 10 cycles; the leaf spends 8; each column's multicast carries 2 wavelets (2 cycles)
  // and each link of the chain 2 wavelets of sums per vector. The engines of the adding
  // PEs bind and the FMACs are 8 of their 10 cycles: once their backlog is built (from
  // m = 4 on: 56 - 46), each further vector adds exactly 10 cycles.
  const GemvResult r4 = run_gemv(FabricConfig{}, wse2_pe(), four_by_four(4));
  const GemvResult r8 = run_gemv(FabricConfig{}, wse2_pe(), four_by_four(8));
  const GemvResult r16 = run_gemv(FabricConfig{}, wse2_pe(), four_by_four(16));
  EXPECT_EQ(r4.total_cycles, 46u + 10);
  EXPECT_EQ(r8.total_cycles - r4.total_cycles, 4u * 10);
  EXPECT_EQ(r16.total_cycles - r8.total_cycles, 8u * 10);
  // The exposed reduction stays the last vector's trip down the chain.
  EXPECT_EQ(r16.reduction_cycles, r4.reduction_cycles);
}

TEST_F(GemvTest, ReductionBoundGemmGrowsByTheRootsAdds) {
  // One row of 4 PEs, tree reduction, W 8 x 4 fp32 (Mt = 8, Kt = 1): a PE's FMACs take
  // 1 x max(8/2, 8*48/64, 8*32/32) = 8 cycles per vector; 8 wavelets of sums per vector,
  // 1 cycle per add. The root PE 0 adds two streams (PE 1, round 0; PE 2, round 1): 16
  // cycles of adds + 8 of FMACs = 24 per vector; PE 2 needs 16, PEs 1 and 3 need 8, the
  // link PE 1 -> PE 0 carries both streams: 16 wavelets. The root's adds bind (16 of its
  // 24 cycles): once its backlog is built, each vector adds exactly 24 cycles, against
  // 10 for a compute-bound engine of the same FMAC time.
  // m = 1 by hand: all PEs finish FMACs at 8 (x in SRAM, P = 1). Round 0: PEs 1 and 3
  //   send at 8..15, sums arrive 11..18; PE 2's adds end 13..20 and it sends them on 2
  //   hops: they arrive at PE 0 at 17..24. PE 0 adds in arrival order: round 0's wavelets
  //   0..5 at [12,18), then the cycles 17 and 18 each bring one of each stream ->
  //   [18,22); round 1's wavelets 2..7 arrive 19..24 -> [22,28): total 28.
  GemvConfig g;
  g.rows = 8;
  g.cols = 4;
  g.grid_rows = 1;
  g.grid_cols = 4;
  g.reduction = Reduction::kTree;
  EXPECT_EQ(run_gemv(FabricConfig{}, wse2_pe(), g).total_cycles, 28u);
  g.vectors = 4;
  const GemvResult r4 = run_gemv(FabricConfig{}, wse2_pe(), g);
  g.vectors = 8;
  const GemvResult r8 = run_gemv(FabricConfig{}, wse2_pe(), g);
  EXPECT_EQ(r8.total_cycles - r4.total_cycles, 4u * 24);
  EXPECT_EQ(r8.compute_cycles, 8u * 8);
}

TEST_F(GemvTest, TooManyVectorsRaiseCapacityErrorNamingTheAccumulators) {
  // 4 x 4 tiles of 16 x 16, fp16: W 32 B, per vector 8 B of x segment (top row) and 8 B
  // of accumulators: 32 + 16 m <= 48 KiB up to m = 3070, which fills the SRAM exactly.
  GemvConfig g = four_by_four(3070);
  EXPECT_EQ(run_gemv(FabricConfig{}, wse2_pe(), g).sram_bytes_per_pe, 48u * 1024);
  g.vectors = 4000;  // x segments 32000 B fit after W; the accumulators (32000 B) do not
  try {
    run_gemv(FabricConfig{}, wse2_pe(), g);
    FAIL() << "expected CapacityError";
  } catch (const CapacityError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("y partial sums (4000 x 4 fp16)"), std::string::npos) << msg;
    EXPECT_EQ(e.shortfall_bytes(), 32u + 32000 + 32000 - 48 * 1024);
  }
  g.vectors = 0;
  EXPECT_THROW(run_gemv(FabricConfig{}, wse2_pe(), g), std::invalid_argument);
}

TEST_F(GemvTest, SteadyStateShortcutMatchesSimulatingEveryVector) {
  // 256 x 256 on 16 x 16, 64 vectors: simulating 8 and adding the steady-state period
  // gives the full simulation's total, compute done, hops and SRAM (the pipeline is
  // periodic from its third vector on). The multicast and first-vector figures are the
  // simulated part's (the multicast extended when the x stream is periodic): never later
  // than the full run's, whose later x wavelets still share the PEs' ramps with vector
  // 0's sums (here 364 against 379 cycles for vector 0).
  GemvConfig g;
  g.rows = 256;
  g.cols = 256;
  g.grid_rows = 16;
  g.grid_cols = 16;
  g.vectors = 64;
  g.simulated_vectors = 0;
  const GemvResult full = run_gemv(FabricConfig{}, wse2_pe(), g);
  g.simulated_vectors = 8;
  const GemvResult shortcut = run_gemv(FabricConfig{}, wse2_pe(), g);
  EXPECT_EQ(full.vectors_simulated, 64u);
  EXPECT_EQ(shortcut.vectors_simulated, 8u);
  EXPECT_EQ(shortcut.total_cycles, full.total_cycles);
  EXPECT_EQ(shortcut.compute_done_cycles, full.compute_done_cycles);
  EXPECT_LE(shortcut.first_vector_cycles, full.first_vector_cycles);
  EXPECT_EQ(shortcut.wavelet_hops, full.wavelet_hops);
  EXPECT_EQ(shortcut.compute_cycles, full.compute_cycles);
  EXPECT_EQ(shortcut.sram_bytes_per_pe, full.sram_bytes_per_pe);
  EXPECT_LE(shortcut.multicast_cycles, full.multicast_cycles);

  // The 1 x 4 tree GEMM (ReductionBoundGemmGrowsByTheRootsAdds) completes its vectors
  // 21, 23, then 24 cycles apart: 6 simulated vectors show increments 23, 24, 24, 24, not
  // yet periodic, so all 12 are simulated; from 8 on the period is found.
  GemvConfig t;
  t.rows = 8;
  t.cols = 4;
  t.grid_rows = 1;
  t.grid_cols = 4;
  t.reduction = Reduction::kTree;
  t.vectors = 12;
  t.simulated_vectors = 0;
  const GemvResult tree_full = run_gemv(FabricConfig{}, wse2_pe(), t);
  t.simulated_vectors = 6;
  const GemvResult tree6 = run_gemv(FabricConfig{}, wse2_pe(), t);
  EXPECT_EQ(tree6.vectors_simulated, 12u);
  EXPECT_EQ(tree6.total_cycles, tree_full.total_cycles);
  t.simulated_vectors = 8;
  const GemvResult tree8 = run_gemv(FabricConfig{}, wse2_pe(), t);
  EXPECT_EQ(tree8.vectors_simulated, 8u);
  EXPECT_EQ(tree8.total_cycles, tree_full.total_cycles);
  t.simulated_vectors = 5;  // too few to see 4 increments after the fill
  EXPECT_THROW(run_gemv(FabricConfig{}, wse2_pe(), t), std::invalid_argument);
}

TEST_F(GemvTest, TreeReductionExactCycles) {
  // Same 4 x 4 GEMV with a binary-tree reduction to the west PE of each row. Row i's
  // PEs finish their FMACs at T (8, 12, 13, 14 as above).
  // Round 0 (1 hop): PEs 1 and 3 send at T, T+1; PEs 0 and 2 get them at T+3, T+4 and add
  //   them at T+4..T+5 and T+5..T+6.
  // Round 1 (2 hops): PE 2 sends its sums as they complete, at T+5 and T+6; PE 0 gets
  //   them at T+5+1+2+1 = T+9 and T+10, adds at T+10..T+11 and T+11..T+12.
  // Row 3 ends at 14 + 12 = 26 (the chain needs 30); exposed reduction 12.
  FabricConfig fc;
  GemvConfig g;
  g.rows = 16;
  g.cols = 16;
  g.grid_rows = 4;
  g.grid_cols = 4;
  g.accumulate = Accumulate::kFp16;
  g.reduction = Reduction::kTree;
  const GemvResult r = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(r.compute_done_cycles, 14u);
  EXPECT_EQ(r.total_cycles, 26u);
  EXPECT_EQ(r.reduction_cycles, 12u);
  // Sums: per row, round 0 two senders x 1 hop, round 1 one sender x 2 hops, 2 wavelets.
  EXPECT_EQ(r.wavelet_hops, 4u * 2 * 3 + 4u * (2 * 1 + 1 * 2) * 2);

  // One row of 4 PEs (no multicast): T = 8, ends at 8 + 12 = 20.
  g.rows = 4;
  g.grid_rows = 1;
  EXPECT_EQ(run_gemv(fc, wse2_pe(), g).total_cycles, 20u);
}

TEST_F(GemvTest, KTreeReductionExactCycles) {
  // Same 4 x 4 GEMV with a K-tree of groups of 2: row i's PEs finish their FMACs at T
  // (8, 12, 13, 14 as above).
  // Phase 1 (chains inside the groups {0, 1}, {2, 3}): PEs 0 and 2 send at T, T+1; PEs 1
  //   and 3 get them at T+3, T+4 and add them at T+4..T+5 and T+5..T+6.
  // Phase 2 (group root 1 -> row root 3, 2 hops): PE 1 sends at T+5, T+6; PE 3 gets them
  //   at T+5+1+2+1 = T+9, T+10 and adds them at T+10..T+11 and T+11..T+12.
  // Row 3 ends at 14 + 12 = 26: the tree's figure (its mirror image here).
  FabricConfig fc;
  GemvConfig g;
  g.rows = 16;
  g.cols = 16;
  g.grid_rows = 4;
  g.grid_cols = 4;
  g.accumulate = Accumulate::kFp16;
  g.reduction = Reduction::kKTree;
  g.ktree_group = 2;
  GemvResult r = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(r.compute_done_cycles, 14u);
  EXPECT_EQ(r.total_cycles, 26u);
  EXPECT_EQ(r.wavelet_hops, 4u * 2 * 3 + 4u * (2 * 1 + 1 * 2) * 2);
  // Groups of 4 (one group: the chain) and of 1 (every PE a root: a chain over the
  // roots, one hop a stage): the chain's 30 cycles, on other colors for g = 1.
  g.ktree_group = 4;
  EXPECT_EQ(run_gemv(fc, wse2_pe(), g).total_cycles, 30u);
  g.ktree_group = 1;
  EXPECT_EQ(run_gemv(fc, wse2_pe(), g).total_cycles, 30u);

  // One row of 9 PEs, W 1 x 9 fp32: Kt = Mt = 1, one FMAC of 1 cycle (x in SRAM): T = 1;
  // one wavelet of sums; add 1 cycle. Groups of 3 {0,1,2} {3,4,5} {6,7,8}, roots 2, 5, 8.
  // Phase 1: PE 0 sends at 1, PE 1 gets it at 4, adds in 5, sends at 6; PE 2 gets it at
  //   9, adds in 10: final at 11 (roots 2 and 5; PE 8 has added PE 7's at 11 too).
  // Phase 2 (3 hops a stage): PE 2 sends at 11, PE 5 gets it at 11 + 1 + 3 + 1 = 16, adds
  //   in 17, sends at 18; PE 8 gets it at 23, adds in 24: total 25 = T + ktree_latency
  //   (9, 3) = 1 + 2 x 5 + 2 x (2 + 3 + 1 + 1). The chain: 1 + 8 x 5 = 41.
  // Auto group (ktree_group 0): ktree_latency over g = 1, 2, 3, 4, 5, 9 is 40, 29, 24,
  //   31, 29, 40: g = 3.
  g.rows = 1;
  g.cols = 9;
  g.grid_rows = 1;
  g.grid_cols = 9;
  g.accumulate = Accumulate::kFp32;
  g.ktree_group = 3;
  r = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(r.total_cycles, 25u);
  EXPECT_EQ(r.wavelet_hops, 6u * 1 + 2u * 3);
  EXPECT_EQ(ktree_latency(9, 3, 1, 1, 1), 24u);
  EXPECT_EQ(ktree_auto_group(9, 1, 1, 1), 3u);
  g.ktree_group = 0;
  EXPECT_EQ(run_gemv(fc, wse2_pe(), g).total_cycles, 25u);
  g.reduction = Reduction::kChain;
  EXPECT_EQ(run_gemv(fc, wse2_pe(), g).total_cycles, 41u);
  // Colors: the K-tree's four must be distinct and apart from x_color.
  g.reduction = Reduction::kKTree;
  g.ktree_colors = {2, 4};  // psum_colors are 1, 2
  EXPECT_THROW(run_gemv(fc, wse2_pe(), g), std::invalid_argument);
}

TEST_F(GemvTest, ReductionNames) {
  for (Reduction r : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
    Reduction parsed = Reduction::kChain;
    EXPECT_TRUE(parse_reduction(reduction_name(r), parsed));
    EXPECT_EQ(parsed, r);
  }
  EXPECT_STREQ(reduction_name(Reduction::kKTree), "ktree");
  Reduction r = Reduction::kTree;
  EXPECT_FALSE(parse_reduction("k-tree", r));
  EXPECT_EQ(r, Reduction::kTree);
  // About sqrt(n) on the default fabric: 4g + 4n/g + n - 9 is least at g = sqrt(n).
  EXPECT_EQ(ktree_auto_group(16, 1, 1, 1), 4u);
  EXPECT_EQ(ktree_auto_group(64, 1, 1, 1), 8u);
  EXPECT_EQ(ktree_auto_group(64, 1, 1, 1, 16), 16u);  // multiples of 16 only
}

PeConfig wse3_pe() {  // cs3.yaml: SIMD 8 (fp16 FMAC and add), 4 (fp16-in fp32 FMAC, fp32 add), 64-bit ports
  PeConfig pe;
  pe.simd_fp16_fmac = 8;
  pe.simd_fp16_fp32_fmac = 4;
  pe.simd_fp32_add = 4;
  pe.simd_fp16_add = 8;
  pe.simd_fp32_fmac = 4;
  pe.sram_port_bits = 64;
  return pe;
}

TEST_F(GemvTest, Fp16AccumulationOnWse3ExactCycles) {
  // 16 x 16 on 4 x 4 (4 x 4 tiles), WSE-3 PE, chain, H = R = 1.
  // fp16 accumulation (@fmach, as the SDK's gemv-checkerboard and WaferLLM):
  //  FMAC over 4 fp16 accumulators: max(4/8, 4 x 32 / 128, 4 x 16 / 64) -> 1 cycle; an
  //  x wavelet (2 elements) is 2 cycles of FMACs. Sums: 4 fp16 = 2 wavelets, add of 2 fp16
  //  = max(2/8, 32/128, 32/64) -> 1 cycle.
  //  Top row: 4 elements x 1 = 4. Row i >= 1: x wavelet w arrives at w + i + 2; w0's
  //  FMACs run i+3..i+5, w1's i+5..i+7: T_i = i + 7, row 3 at 10.
  //  Chain: 3 stages of 5 (ramp, hop, ramp, issue, add), the second wavelet one behind:
  //  T + 16. Total 10 + 16 = 26.
  // fp32 accumulation (@fmachs): FMAC over 4 fp32: max(4/4, 4 x 48 / 128, 4 x 32 / 64) -> 2;
  //  a wavelet of x is 4 cycles; row i: w0 i+3..i+7, w1 i+7..i+11: T_3 = 14. Sums: 4 fp32
  //  = 4 wavelets, add 1 cycle: wavelet k final at the east PE at T + k + 15: 14 + 18 = 32.
  GemvConfig g = four_by_four(1);
  const GemvResult h = run_gemv(FabricConfig{}, wse3_pe(), g);
  EXPECT_EQ(h.compute_cycles, 4u);
  EXPECT_EQ(h.compute_done_cycles, 10u);
  EXPECT_EQ(h.multicast_cycles, 7u);
  EXPECT_EQ(h.total_cycles, 26u);
  EXPECT_EQ(h.wavelet_hops, 4u * 2 * 3 + 4u * 3 * 2);
  g.accumulate = Accumulate::kFp32;
  const GemvResult f = run_gemv(FabricConfig{}, wse3_pe(), g);
  EXPECT_EQ(f.compute_cycles, 8u);
  EXPECT_EQ(f.compute_done_cycles, 14u);
  EXPECT_EQ(f.total_cycles, 32u);
  EXPECT_EQ(f.wavelet_hops, 4u * 2 * 3 + 4u * 3 * 4);
  // The same on tiled fidelity k = 1, and a GEMM: every reduction, both accumulations.
  for (Reduction red : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
    for (Accumulate acc : {Accumulate::kFp16, Accumulate::kFp32}) {
      for (std::uint32_t m : {1u, 8u}) {
        GemvConfig x = four_by_four(m);
        x.accumulate = acc;
        x.reduction = red;
        EXPECT_EQ(run_gemv_tiled(FabricConfig{}, 1, wse3_pe(), x).total_cycles,
                  run_gemv(FabricConfig{}, wse3_pe(), x).total_cycles);
      }
    }
  }
}

TEST_F(GemvTest, Fp16AccumulationHalvesComputeAndSumsOnABiggerGrid) {
  // 1024 x 1024 on 32 x 32 (32 x 32 tiles), WSE-3 PE. fp16: FMAC over 32 accumulators
  // max(32/8, 32 x 32 / 128, 32 x 16 / 64) = 8 cycles, x 32 elements = 256; 16 wavelets of
  // sums per PE. fp32: max(32/4, 32 x 48 / 128, 32 x 32 / 64) = 16, x 32 = 512; 32 wavelets.
  // Half the FMAC time and half the wavelets down each reduction.
  GemvConfig g;
  g.rows = g.cols = 1024;
  g.grid_rows = g.grid_cols = 32;
  for (Reduction red : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
    g.reduction = red;
    g.accumulate = Accumulate::kFp16;
    const GemvResult h = run_gemv(FabricConfig{}, wse3_pe(), g);
    g.accumulate = Accumulate::kFp32;
    const GemvResult f = run_gemv(FabricConfig{}, wse3_pe(), g);
    SCOPED_TRACE(std::string(reduction_name(red)) + ": fp16 " + std::to_string(h.total_cycles) + ", fp32 " +
                 std::to_string(f.total_cycles));
    EXPECT_EQ(h.compute_cycles, 256u);
    EXPECT_EQ(f.compute_cycles, 512u);
    EXPECT_LT(h.total_cycles + 200, f.total_cycles);
    EXPECT_LT(h.wavelet_hops, f.wavelet_hops);
  }
}

TEST_F(GemvTest, NoGemvBeatsItsFloor) {
  // gemv_floor_cycles: max(m ceil(Mt Kt / simd_fp16_fmac), (P - 1 + Q - 1) H + 2R).
  // 4 x 4 example (WSE-2): compute ceil(16 / 4) = 4, latency 6 + 2 = 8: floor 8 (30 run).
  GemvConfig g = four_by_four(1);
  EXPECT_EQ(gemv_floor_cycles(FabricConfig{}, wse2_pe(), g), 8u);
  g.vectors = 3;
  EXPECT_EQ(gemv_floor_cycles(FabricConfig{}, wse2_pe(), g), 12u);
  // Every reduction, both accumulations, both PEs, per-PE and tiled, on a few shapes.
  for (GemvConfig s : {four_by_four(1), four_by_four(8)}) {
    for (auto [m, k, p, q] : {std::array<std::uint32_t, 4>{256, 256, 16, 16},
                              {100, 90, 12, 18},
                              {64, 4096, 1, 64},
                              {4096, 64, 64, 1}}) {
      s.rows = m;
      s.cols = k;
      s.grid_rows = p;
      s.grid_cols = q;
      for (Reduction red : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
        for (Accumulate acc : {Accumulate::kFp16, Accumulate::kFp32}) {
          for (const PeConfig& pe : {wse2_pe(), wse3_pe()}) {
            s.reduction = red;
            s.accumulate = acc;
            const std::uint64_t floor = gemv_floor_cycles(FabricConfig{}, pe, s);
            EXPECT_GE(run_gemv(FabricConfig{}, pe, s).total_cycles, floor);
            EXPECT_GE(run_gemv_tiled(FabricConfig{}, 4, pe, s).total_cycles, floor);
          }
        }
      }
    }
  }
}

TEST_F(GemvTest, TreeVersusChainOnLongRows) {
  // 64 columns, 4 grid rows. Short vectors (16 rows: 4 fp32 sums per PE): the chain pays
  // 63 stages of ~5 cycles, the tree 6 rounds of 2^s hops: the tree wins by far.
  FabricConfig fc;
  GemvConfig g;
  g.rows = 16;
  g.cols = 4096;
  g.grid_rows = 4;
  g.grid_cols = 64;
  const GemvResult chain = run_gemv(fc, wse2_pe(), g);
  g.reduction = Reduction::kTree;
  const GemvResult tree = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(chain.compute_done_cycles, tree.compute_done_cycles);
  EXPECT_GT(chain.reduction_cycles, 63u * 5);
  EXPECT_LT(tree.reduction_cycles, chain.reduction_cycles / 2);
  // Long vectors (256 rows: 64 sums per PE): the tree's root adds 6 streams of 64
  // wavelets one per cycle (>= 384 cycles) while the chain pipelines them: no gain.
  g.rows = 256;
  const GemvResult tree_long = run_gemv(fc, wse2_pe(), g);
  g.reduction = Reduction::kChain;
  const GemvResult chain_long = run_gemv(fc, wse2_pe(), g);
  EXPECT_GE(tree_long.reduction_cycles, 6u * 64);
  EXPECT_GE(tree_long.reduction_cycles + 20, chain_long.reduction_cycles);
}

TEST_F(GemvTest, SinglePeIsPureCompute) {
  // 1 x 1 grid: no fabric traffic; 8 x 6 fp32-accumulated: 6 FMACs over 8 accumulators,
  // each max(8/2, 8*48/64, 8*32/32) = 8 cycles -> 48.
  FabricConfig fc;
  GemvConfig g;
  g.rows = 8;
  g.cols = 6;
  g.grid_rows = 1;
  g.grid_cols = 1;
  const GemvResult r = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(r.total_cycles, 48u);
  EXPECT_EQ(r.wavelet_hops, 0u);
  EXPECT_EQ(r.multicast_cycles, 0u);
}

TEST_F(GemvTest, WiderGridIsFasterForLargeMatrix) {
  // 1024 x 1024: a 16 x 16 grid has 64 x 64 tiles (compute-dominated), 32 x 32 has
  // 32 x 32 tiles: compute drops by 4x, communication grows by about 2x in hops.
  FabricConfig fc;
  GemvConfig g;
  g.rows = 1024;
  g.cols = 1024;
  g.grid_rows = g.grid_cols = 16;
  const GemvResult a = run_gemv(fc, wse2_pe(), g);
  g.grid_rows = g.grid_cols = 32;
  const GemvResult b = run_gemv(fc, wse2_pe(), g);
  EXPECT_EQ(a.compute_cycles, 4 * b.compute_cycles);
  EXPECT_LT(b.total_cycles, a.total_cycles);
  EXPECT_GT(b.reduction_cycles + b.multicast_cycles, 0u);
}

TEST_F(GemvTest, CapacityErrorNamesTensorAndShortfall) {
  // 4096 x 4096 on 2 x 2: the W tile is 2048 x 2048 fp16 = 8 MiB, far above 48 KiB.
  FabricConfig fc;
  GemvConfig g;
  g.rows = 4096;
  g.cols = 4096;
  g.grid_rows = 2;
  g.grid_cols = 2;
  try {
    run_gemv(fc, wse2_pe(), g);
    FAIL() << "expected CapacityError";
  } catch (const CapacityError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("W tile 2048x2048"), std::string::npos) << msg;
    EXPECT_NE(msg.find("PE (0,0)"), std::string::npos) << msg;
    EXPECT_EQ(e.shortfall_bytes(), 2048ull * 2048 * 2 - 48 * 1024);
  }
  // A second tensor that overflows what the first left free.
  SramPlacement s({1, 2}, 48 * 1024);
  s.place("W", 40 * 1024);
  try {
    s.place("KV cache", 10 * 1024);
    FAIL() << "expected CapacityError";
  } catch (const CapacityError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'KV cache'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("short by 2 KiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("W 40 KiB"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace wse::wafer
