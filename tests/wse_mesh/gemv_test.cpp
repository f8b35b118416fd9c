// GEMV on a PE grid and the PE cost model, with cycle counts derived by hand.
#include "wse_mesh/gemv.h"

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
