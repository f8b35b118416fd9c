// The weight-stationary Cannon GEMM (gemm_cannon.h): steps and a small GEMM derived by
// hand, the folded ring, tiled against per-PE, and the SRAM paths.
#include "wse_mesh/kernels/gemm_cannon.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "wse_mesh/benches/benches.h"

namespace wse::wafer {
namespace {

GemmCannonConfig cannon(std::uint64_t rows, std::uint64_t cols, std::uint64_t tokens, std::uint32_t P,
                        std::uint32_t Q) {
  GemmCannonConfig g;
  g.rows = rows;
  g.cols = cols;
  g.tokens = tokens;
  g.grid_rows = P;
  g.grid_cols = Q;
  g.accumulate = Accumulate::kFp16;
  return g;
}

TEST(GemmCannon, FoldedRingIsAtMostTwoHops) {
  // Q = 5: ring positions 0..4 on PE columns 0, 2, 4, 3, 1: neighbours 2, 2, 1, 2 and 1
  // (the wrap from position 4 back to 0) columns apart.
  const std::vector<std::uint32_t> cols5 = {0, 2, 4, 3, 1};
  for (std::uint32_t l = 0; l < 5; ++l) {
    EXPECT_EQ(folded_column(l, 5), cols5[l]);
    EXPECT_EQ(folded_position(cols5[l], 5), l);
  }
  // Q = 4: 0, 2, 3, 1.
  const std::vector<std::uint32_t> cols4 = {0, 2, 3, 1};
  for (std::uint32_t l = 0; l < 4; ++l) EXPECT_EQ(folded_column(l, 4), cols4[l]);
  for (std::uint32_t q : {2u, 3u, 7u, 190u, 191u}) {
    for (std::uint32_t l = 0; l < q; ++l) {
      const std::uint32_t a = folded_column(l, q), b = folded_column((l + 1) % q, q);
      EXPECT_LE(a > b ? a - b : b - a, 2u) << "q " << q << " l " << l;
      EXPECT_EQ(folded_position(a, q), l);
    }
  }
  // The result names the longest ring edge: 2 hops from Q = 3, 1 for Q = 2.
  EXPECT_EQ(run_gemm_cannon(FabricConfig{}, PeConfig{}, cannon(6, 6, 3, 1, 3)).max_ring_hops, 2u);
  EXPECT_EQ(run_gemm_cannon(FabricConfig{}, PeConfig{}, cannon(4, 4, 2, 1, 2)).max_ring_hops, 1u);
}

TEST(GemmCannon, TwoByTwoStepByHand) {
  // W 4 x 4 on 2 x 2 PEs (Mt = Kt = 2), m = 2 tokens: one round of Q = 2 blocks of one
  // token. WSE-2 PE (fp16 FMAC 4 wide, 2 x 32-bit reads and 1 x 32-bit write a cycle),
  // fp16 sums: fmac(2) = max(ceil(2/4), ceil(2 x 32 / 64), ceil(2 x 16 / 32)) = 1 cycle, so
  // a token costs C1 = Kt x 1 = 2 cycles. H = R = 1.
  //  - Activations: D = (P - 1) H + 2R = 3; a block is ceil(1 x 2 x 2 B / 4 B) = 1 wavelet.
  //    Step 0's block is usable at 0 + 1 + 3 = 4 (the fill), step 1's (the column link
  //    free at 1) at 1 + 1 + 3 = 5.
  //  - Step 0: every PE starts its token at 4 and ends at 6; the token's sums (2 fp16 =
  //    1 wavelet) go to the other PE of the ring (1 hop): 6 + 1 H + 1 + 2R = 10.
  //  - Step 1: the engine is free at 6 and x at 5, but the sums arrive at 10: the token runs
  //    10 .. 12 (so one step takes max(b C1, C1 + shift) = 2 + 4 = 6 cycles here: a
  //    one-token block cannot hide the shift). The sums are final; they leave through the
  //    ramp as 1 wavelet of fp16 outputs: 12 + 1 + 2R = 15.
  const GemmCannonResult r = run_gemm_cannon(FabricConfig{}, PeConfig{}, cannon(4, 4, 2, 2, 2));
  EXPECT_EQ(r.block_tokens, 1u);
  EXPECT_EQ(r.rounds, 1u);
  EXPECT_EQ(r.steps, 2u);
  EXPECT_EQ(r.fill_cycles, 4u);
  EXPECT_EQ(r.compute_done_cycles, 12u);
  EXPECT_EQ(r.total_cycles, 15u);
  EXPECT_EQ(r.drain_cycles, 3u);
  EXPECT_EQ(r.compute_cycles, 4u);  // m x C1
  EXPECT_EQ(r.busy_cycles, 16u);    // 4 PEs
  // Links: each ring edge carries the one block that is not final at its receiver (1
  // wavelet); each column link both blocks (2): the busiest carries 2. Hops: 2 rows x 2
  // edges x 1 wavelet x 1 hop + 2 columns x 2 wavelets x 1 link = 8.
  EXPECT_EQ(r.shift_cycles, 2u);
  EXPECT_EQ(r.wavelet_hops, 8u);
  // SRAM: tile 8 B, two activation blocks 8 B, two sum blocks 8 B, one output block 4 B.
  EXPECT_EQ(r.sram_bytes_per_pe, 28u);
}

TEST(GemmCannon, SmallGemmByHand) {
  // The same W and grid, m = 8 tokens: blocks of b = 4 tokens, C1 = 2 (above).
  //  - Step 0's block: ceil(4 x 2 x 2 / 4) = 4 wavelets, usable at 4 + 3 = 7 (the fill).
  //    The PEs run their 4 tokens 7 .. 15, sending each token's sums as it is done (9, 11,
  //    13, 15): they arrive at the other PE 4 cycles later, 13 .. 19.
  //  - Step 1's block (column link free at 4) is usable at 4 + 4 + 3 = 11. Each PE starts at
  //    15 (its engine; the first sums came at 13) and every later token's sums are in
  //    before its turn: 17, 19, 21, 23. Four tokens hide the shift, so the step adds
  //    b C1 = 8 and the GEMM is compute-bound: m C1 = 16 cycles of FMACs between the fill
  //    and the drain.
  //  - Outputs leave as each token is final: the last at 23 + 1 + 2R = 26 = 7 + 16 + 3.
  const GemmCannonResult r = run_gemm_cannon(FabricConfig{}, PeConfig{}, cannon(4, 4, 8, 2, 2));
  EXPECT_EQ(r.block_tokens, 4u);
  EXPECT_EQ(r.fill_cycles, 7u);
  EXPECT_EQ(r.compute_cycles, 16u);
  EXPECT_EQ(r.compute_done_cycles, 23u);
  EXPECT_EQ(r.total_cycles, 26u);
  EXPECT_EQ(r.total_cycles, r.fill_cycles + r.compute_cycles + r.drain_cycles);
}

TEST(GemmCannon, SplitKRingsByHand) {
  // W 4 x 8 on a row of 4 PEs (Mt = 4, Kt = 2), two tokens, split into G = 2 rings of 2
  // PEs (columns 0-1 and 2-3, K 4 each). WSE-2 PE, fp16 sums, H = R = 1: C1 = 2 fmac(4) =
  // 2 x 2 = 4; a token's sums are 2 wavelets, one hop: L = 1 + 2 + 2R = 5; D = 0 + 2R = 2.
  //  - Each ring: step 0 from 3 (1 wavelet of x + D) to 7; the sums arrive at 7 + 5 = 12;
  //    step 1 runs 12 .. 16.
  //  - Ring 0's final sums go q = 2 columns east to the PE of ring 1 that holds the same
  //    block and are added there: a stage of 2 H + 2 wavelets + 2R + add(4) (= max(4/4,
  //    4 x 16 / 64, 4 x 16 / 32) = 2) = 8: done at 16 + 8 = 24; the fp16 outputs (2
  //    wavelets) out through the ramp: 24 + 2 + 2R = 28.
  GemmCannonConfig g = cannon(4, 8, 2, 1, 4);
  g.groups = 2;
  const GemmCannonResult split = run_gemm_cannon(FabricConfig{}, PeConfig{}, g);
  EXPECT_EQ(split.groups, 2u);
  EXPECT_EQ(split.steps, 2u);
  EXPECT_EQ(split.compute_done_cycles, 24u);
  EXPECT_EQ(split.total_cycles, 28u);
  EXPECT_EQ(split.compute_cycles, 8u);  // m C1: each PE still multiplies every token
  EXPECT_EQ(run_gemm_cannon_tiled(FabricConfig{}, 1, PeConfig{}, g).total_cycles, 28u);
  // One ring of 4 for two tokens takes 4 steps: each token's sums visit all four PEs.
  g.groups = 1;
  EXPECT_GT(run_gemm_cannon(FabricConfig{}, PeConfig{}, g).total_cycles, split.total_cycles);
  // Groups must divide the ring.
  g.groups = 3;
  EXPECT_THROW(run_gemm_cannon(FabricConfig{}, PeConfig{}, g), std::invalid_argument);
}

TEST(GemmCannon, TiledWithinKMinusOneHopsOfPerPe) {
  // k = 1 is the per-PE kernel a block at a time: equal to the cycle, uneven tiles and
  // blocks included, one ring a row or split K. With nodes of k x k PEs a node row's broadcast reaches all
  // its PE rows at the time of its first (up to (k - 1) H early) and runs as its largest tile; measured on
  // these shapes: -(k - 1) H <= tiled - per-PE <= 0.
  struct Shape {
    std::uint64_t rows, cols, tokens;
    std::uint32_t P, Q;
  };
  const std::vector<Shape> shapes = {{64, 64, 16, 4, 4},   {60, 62, 13, 4, 4},      {100, 90, 37, 12, 10},
                                     {100, 90, 7, 12, 10}, {257, 129, 500, 16, 16}, {1000, 999, 64, 33, 17},
                                     {50, 300, 40, 7, 30}, {64, 64, 100, 8, 8}};
  for (const PeConfig& pe : {PeConfig{}, wse3_pe_config()}) {
    for (const Shape& s : shapes) {
      for (std::uint32_t groups : {1u, 2u}) {  // one ring a row, and split K in two
        if (s.Q % groups != 0) continue;
        GemmCannonConfig g = cannon(s.rows, s.cols, s.tokens, s.P, s.Q);
        g.buffer_bytes = 40000;
        g.groups = groups;
        const GemmCannonResult per_pe = run_gemm_cannon(FabricConfig{}, pe, g);
        SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.cols) + " m " +
                     std::to_string(s.tokens) + " on " + std::to_string(s.P) + "x" + std::to_string(s.Q) +
                     " groups " + std::to_string(groups));
        EXPECT_EQ(run_gemm_cannon_tiled(FabricConfig{}, 1, pe, g).total_cycles, per_pe.total_cycles);
        for (std::uint32_t k : {2u, 4u, 8u}) {
          const GemmCannonResult t = run_gemm_cannon_tiled(FabricConfig{}, k, pe, g);
          const auto d =
              static_cast<std::int64_t>(t.total_cycles) - static_cast<std::int64_t>(per_pe.total_cycles);
          EXPECT_LE(d, 0) << "k " << k;
          EXPECT_GE(d, -static_cast<std::int64_t>(k - 1)) << "k " << k;
          EXPECT_EQ(t.wavelet_hops, per_pe.wavelet_hops);  // counted per PE link at both fidelities
          EXPECT_EQ(t.compute_cycles, per_pe.compute_cycles);
        }
      }
    }
  }
}

TEST(GemmCannon, LargeChunkIsComputeBound) {
  // Llama-3.1-8B's fused q/k/v (6144 x 4096) on a 144 x 184 grid, 4096 tokens, WSE-3 PE:
  // a token costs Kt fmac(Mt) = 23 x 11 = 253 cycles on the fullest PE; with blocks of 23
  // tokens every shift hides behind the FMACs, and the GEMM takes m C1 plus its fill and
  // drain (under 0.1% more), where 4096 GEMV passes would pay the multicast and reduction
  // latency every token.
  GemmCannonConfig g = cannon(6144, 4096, 4096, 144, 184);
  g.buffer_bytes = 20000;
  const GemmCannonResult r = run_gemm_cannon_tiled(FabricConfig{}, 8, wse3_pe_config(), g);
  EXPECT_EQ(r.compute_cycles, 4096u * 253u);
  EXPECT_LT(r.total_cycles, r.compute_cycles + r.compute_cycles / 1000);
  EXPECT_EQ(r.block_tokens, 23u);
  EXPECT_EQ(r.max_ring_hops, 2u);
}

TEST(GemmCannon, BuffersCutTheTokensIntoMoreBlocksThenFail) {
  // W 64 x 64 on 4 x 4 (16 x 16 tiles, 512 B), 64 tokens, fp16 sums. Beside the tile a PE
  // keeps two activation blocks and two sum blocks of b tokens (2 x 2 x b x 16 x 2 B) and
  // one output block of each round (R x b x 16 x 2 B). With 1500 B: one round (b = 16)
  // needs 1024 + 1024 + 512 = 2560, two (b = 8) 512 + 512 + 512 = 1536, three (b =
  // ceil(64 / 12) = 6) 384 + 384 + 576 = 1344: three rounds of 4 blocks.
  GemmCannonConfig g = cannon(64, 64, 64, 4, 4);
  g.buffer_bytes = 1500;
  const GemmCannonResult r = run_gemm_cannon(FabricConfig{}, PeConfig{}, g);
  EXPECT_EQ(r.rounds, 3u);
  EXPECT_EQ(r.block_tokens, 6u);
  EXPECT_EQ(r.steps, 12u);
  EXPECT_EQ(r.sram_bytes_per_pe, 512u + 1344u);
  // More, smaller blocks cost no FMAC time (m C1 either way) and here even save some: the
  // first block enters the grid sooner (its broadcast is shorter), and 6 tokens a block
  // still hide each shift behind the FMACs (measured 8255 against 8335 cycles).
  g.buffer_bytes = 0;  // the whole 48 KiB: one round
  const GemmCannonResult one = run_gemm_cannon(FabricConfig{}, PeConfig{}, g);
  EXPECT_EQ(one.rounds, 1u);
  EXPECT_EQ(one.compute_cycles, r.compute_cycles);
  EXPECT_LT(r.fill_cycles, one.fill_cycles);
  EXPECT_LT(r.total_cycles, one.total_cycles);
  // block_tokens caps the blocks.
  g.block_tokens = 2;
  EXPECT_EQ(run_gemm_cannon(FabricConfig{}, PeConfig{}, g).rounds, 8u);

  // Even one-token blocks do not fit 200 B: 16 rounds need 64 + 64 + 16 x 32 = 640 B, the
  // output blocks short by 640 - 200 = 440 B.
  g.block_tokens = 0;
  g.buffer_bytes = 200;
  try {
    run_gemm_cannon(FabricConfig{}, PeConfig{}, g);
    FAIL() << "expected CapacityError";
  } catch (const CapacityError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("output blocks (16 x 1 tokens x 16 fp16)"), std::string::npos) << what;
    EXPECT_EQ(e.shortfall_bytes(), 440u);
  }
  EXPECT_THROW(run_gemm_cannon_tiled(FabricConfig{}, 4, PeConfig{}, g), CapacityError);
  // A grid larger than the matrix, or no tokens, is a configuration error.
  EXPECT_THROW(run_gemm_cannon(FabricConfig{}, PeConfig{}, cannon(3, 64, 8, 4, 4)), std::invalid_argument);
  EXPECT_THROW(run_gemm_cannon(FabricConfig{}, PeConfig{}, cannon(64, 64, 0, 4, 4)), std::invalid_argument);
}

}  // namespace
}  // namespace wse::wafer
