// GEMV on tiled fidelity against the per-PE GEMV on grids where per-PE is affordable.
#include "wse_mesh/kernels/gemv_tiled.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class GemvTiledTest : public wse::testing::SystemCTest {};

GemvConfig gemv_cfg(std::uint64_t m, std::uint64_t n, std::uint32_t P, std::uint32_t Q) {
  GemvConfig g;
  g.rows = m;
  g.cols = n;
  g.grid_rows = P;
  g.grid_cols = Q;
  return g;
}

// The figures a GEMV reports that two mappings of the same run must share.
void expect_same_times(const GemvResult& a, const GemvResult& b) {
  EXPECT_EQ(a.total_cycles, b.total_cycles);
  EXPECT_EQ(a.first_vector_cycles, b.first_vector_cycles);
  EXPECT_EQ(a.multicast_cycles, b.multicast_cycles);
  EXPECT_EQ(a.compute_done_cycles, b.compute_done_cycles);
  EXPECT_EQ(a.wavelet_hops, b.wavelet_hops);
  EXPECT_EQ(a.sram_bytes_per_pe, b.sram_bytes_per_pe);
}

std::int64_t diff(const GemvResult& a, const GemvResult& b) {
  return static_cast<std::int64_t>(a.total_cycles) - static_cast<std::int64_t>(b.total_cycles);
}

TEST_F(GemvTiledTest, OnePePerNodeIsThePerPeGemv) {
  // k = 1: every node is one PE, one lane; the mapping is run_gemv's, cycle for cycle,
  // for one vector and for GEMMs of m vectors (the same PE engine: adds before FMACs).
  for (std::uint32_t m : {1u, 3u, 8u}) {
    for (GemvConfig g : {gemv_cfg(16, 16, 4, 4), gemv_cfg(256, 256, 16, 16), gemv_cfg(100, 70, 6, 5)}) {
      g.vectors = m;
      SCOPED_TRACE("m " + std::to_string(m) + ", grid " + std::to_string(g.grid_rows) + "x" +
                   std::to_string(g.grid_cols));
      const GemvResult per_pe = run_gemv(FabricConfig{}, PeConfig{}, g);
      expect_same_times(run_gemv_tiled(FabricConfig{}, 1, PeConfig{}, g), per_pe);
    }
  }
  // The 4 x 4 GEMM of 3 vectors derived by hand in gemv_test.cpp: 46 cycles.
  GemvConfig g = gemv_cfg(16, 16, 4, 4);
  g.accumulate = Accumulate::kFp16;
  g.vectors = 3;
  EXPECT_EQ(run_gemv_tiled(FabricConfig{}, 1, PeConfig{}, g).total_cycles, 46u);
}

TEST_F(GemvTiledTest, GemmStaysWithinTheNodeBound) {
  // m vectors: the node's PE rows still get x at its first row's time and the root
  // node's last k - 1 PE columns are still crossed without their hops, so the bound
  // -2 (k - 1) H <= tiled - per-PE <= 0 holds for the GEMM too (16 x 16 grid: per-PE
  // 2264 cycles for 8 vectors, tiled 2263 / 2259 / 2251 for k = 2 / 4 / 8).
  const PeConfig pe;
  const FabricConfig fc;
  for (GemvConfig g : {gemv_cfg(256, 256, 16, 16), gemv_cfg(100, 70, 10, 6)}) {
    g.vectors = 8;
    const GemvResult per_pe = run_gemv(fc, pe, g);
    for (std::uint32_t k : {2u, 4u, 8u}) {
      const GemvResult t = run_gemv_tiled(fc, k, pe, g);
      SCOPED_TRACE("grid " + std::to_string(g.grid_rows) + "x" + std::to_string(g.grid_cols) + " k " +
                   std::to_string(k) + ": per-PE " + std::to_string(per_pe.total_cycles) + ", tiled " +
                   std::to_string(t.total_cycles));
      EXPECT_LE(diff(t, per_pe), 0);
      EXPECT_GE(diff(t, per_pe), -2 * static_cast<std::int64_t>(k - 1));
      EXPECT_LE(t.compute_done_cycles, per_pe.compute_done_cycles);
    }
  }
}

TEST_F(GemvTiledTest, TiledStaysWithinTheNodeBound) {
  // The tiled fabric delivers x to a node's k PE rows at its first row's time, and the
  // root PE's last k - 1 columns are crossed without their hop: each is up to (k - 1) H
  // early. Node FMACs finish when its slowest lane does, which can only be later. Bound
  // (docs/wse_mesh.md): -2 (k - 1) H <= tiled - per-PE <= 0 on even splits; measured here
  // on 16 x 16 and 32 x 32 grids and on a grid with partial edge nodes (10 x 6).
  const PeConfig pe;
  const FabricConfig fc;  // H = 1
  for (const GemvConfig& g :
       {gemv_cfg(256, 256, 16, 16), gemv_cfg(512, 512, 32, 32), gemv_cfg(100, 70, 10, 6)}) {
    const GemvResult per_pe = run_gemv(fc, pe, g);
    for (std::uint32_t k : {2u, 4u, 8u}) {
      const GemvResult t = run_gemv_tiled(fc, k, pe, g);
      const std::int64_t d = diff(t, per_pe);
      SCOPED_TRACE("grid " + std::to_string(g.grid_rows) + "x" + std::to_string(g.grid_cols) + " k " +
                   std::to_string(k) + ": per-PE " + std::to_string(per_pe.total_cycles) + ", tiled " +
                   std::to_string(t.total_cycles));
      const std::int64_t bound = 2 * static_cast<std::int64_t>(k - 1);
      if (g.grid_rows % k == 0 && g.grid_cols % k == 0) {
        // Even split: the last node row's x arrives (k - 1) H early and the root's last
        // k - 1 PE columns are crossed without their hops: exactly 2 (k - 1) H early
        // (16 x 16: per-PE 364, tiled 362 / 358 / 350 for k = 2 / 4 / 8).
        EXPECT_EQ(d, -bound);
        EXPECT_EQ(t.multicast_cycles + (k - 1), per_pe.multicast_cycles);
      } else {
        EXPECT_LE(d, 0);
        EXPECT_GE(d, -bound);
      }
      EXPECT_LT(t.wavelet_hops, per_pe.wavelet_hops);  // fewer, wider hops: the point of tiling
    }
  }
}

// Grids for the tree and K-tree bounds: even splits (16 x 16, 32 x 32) and partial edge
// nodes (10 x 6; 12 x 18, whose 18 columns leave a last node of 2 for k = 4 and 8).
std::vector<GemvConfig> bound_grids() {
  return {gemv_cfg(256, 256, 16, 16), gemv_cfg(512, 512, 32, 32), gemv_cfg(100, 70, 10, 6),
          gemv_cfg(100, 90, 12, 18)};
}

// x skew a node hides (docs/wse_mesh.md): per-PE, PE row i of the grid gets x wavelet w at
// w + 2R + i H and starts on it one cycle later; a tiled node hands it to all its PE rows
// at its first row's time, and the top node row takes it from SRAM for all its rows: up
// to (k - 1) H + 2R + 1 early (R = H = 1 here).
// Nodes split the grid evenly and PEs the matrix evenly.
bool even(const GemvConfig& g, std::uint32_t k) {
  return g.grid_rows % k == 0 && g.grid_cols % k == 0 && g.rows % g.grid_rows == 0 &&
         g.cols % g.grid_cols == 0;
}

std::int64_t x_skew(std::uint32_t k) { return static_cast<std::int64_t>(k - 1) + 3; }

TEST_F(GemvTiledTest, TreeAndKTreeOnOnePePerNodeAreThePerPeGemv) {
  // k = 1: every node is one PE; the node mapping of the tree and the K-tree is
  // run_gemv's, cycle for cycle, for one vector and for a GEMM of 8.
  for (Reduction red : {Reduction::kTree, Reduction::kKTree}) {
    for (std::uint32_t m : {1u, 8u}) {
      for (GemvConfig g : {gemv_cfg(16, 16, 4, 4), gemv_cfg(256, 256, 16, 16), gemv_cfg(100, 70, 10, 6),
                           gemv_cfg(100, 90, 12, 18)}) {
        for (std::uint32_t group : {0u, 4u}) {
          if (red == Reduction::kTree && group != 0) continue;
          g.vectors = m;
          g.reduction = red;
          g.ktree_group = group;
          SCOPED_TRACE(std::string(reduction_name(red)) + " m " + std::to_string(m) + ", grid " +
                       std::to_string(g.grid_rows) + "x" + std::to_string(g.grid_cols) + " group " +
                       std::to_string(group));
          const GemvResult per_pe = run_gemv(FabricConfig{}, PeConfig{}, g);
          expect_same_times(run_gemv_tiled(FabricConfig{}, 1, PeConfig{}, g), per_pe);
        }
      }
    }
  }
  // The hand-derived 4 x 4 figures of gemv_test.cpp: tree 26, K-tree (groups of 2) 26.
  GemvConfig g = gemv_cfg(16, 16, 4, 4);
  g.accumulate = Accumulate::kFp16;
  g.reduction = Reduction::kTree;
  EXPECT_EQ(run_gemv_tiled(FabricConfig{}, 1, PeConfig{}, g).total_cycles, 26u);
  g.reduction = Reduction::kKTree;
  g.ktree_group = 2;
  EXPECT_EQ(run_gemv_tiled(FabricConfig{}, 1, PeConfig{}, g).total_cycles, 26u);
}

TEST_F(GemvTiledTest, TreeStaysWithinItsNodeBound) {
  // Rounds of span 2^s >= k join node column 0s over 2^s / k node hops of k H: exactly the
  // per-PE hops; rounds of span < k are crossed inside the node with the per-PE costs
  // (2R + 2^s H + 1 + a). What the node does not see: the x skew (up to x_skew(k) early),
  // and inside a node the sharing of links and of the receivers' ramps between the
  // log2 k inner rounds' streams of n wavelets (per-PE, every round into PE column 0
  // crosses the link 1 -> 0), at most log2(k) n a cycles. Bound:
  //   -(x_skew(k) + log2(k) n a) <= tiled - per-PE <= 0.
  // Even splits (of nodes and tiles): exactly -(k - 1) H, the last node row's x skew (16 x 16: per-PE 342,
  // tiled 341 / 339 / 335 for k = 2 / 4 / 8; 32 x 32: 378 against 377 / 375 / 371); the
  // 12 x 18 grid (n = 9) shows the inner rounds' sharing: 108 against 100 / 96 / 95.
  const PeConfig pe;
  const FabricConfig fc;
  for (std::uint32_t m : {1u, 8u}) {
    for (GemvConfig g : bound_grids()) {
      g.reduction = Reduction::kTree;
      g.vectors = m;
      const GemvResult per_pe = run_gemv(fc, pe, g);
      const std::int64_t n = static_cast<std::int64_t>((g.rows + g.grid_rows - 1) / g.grid_rows);  // fp32
      for (std::uint32_t k : {2u, 4u, 8u}) {
        const GemvResult t = run_gemv_tiled(fc, k, pe, g);
        const std::int64_t d = diff(t, per_pe);
        SCOPED_TRACE("m " + std::to_string(m) + " grid " + std::to_string(g.grid_rows) + "x" +
                     std::to_string(g.grid_cols) + " k " + std::to_string(k) + ": per-PE " +
                     std::to_string(per_pe.total_cycles) + ", tiled " + std::to_string(t.total_cycles));
        EXPECT_LE(d, 0);
        EXPECT_GE(d, -(x_skew(k) + static_cast<std::int64_t>(tree_rounds(k)) * n));
        if (even(g, k)) {
          EXPECT_EQ(d, -static_cast<std::int64_t>(k - 1));
        }
        EXPECT_LE(t.compute_done_cycles, per_pe.compute_done_cycles);
      }
    }
  }
}

TEST_F(GemvTiledTest, KTreeStaysWithinItsNodeBound) {
  // Groups of whole nodes (g a multiple of k; here g = max(k, 4), the same g per-PE).
  // Inside a group the chain is the tiled chain's (the H of a PE link inside the k H node
  // hop: a group's last node's k - 1 hops are not counted), and the chain over the roots
  // runs g / k node hops of k H a stage: the per-PE hops, except the last stage into a
  // partial east node of kc < k PE columns, which a node hop of k H makes (k - kc) H late.
  // Bound: -(x_skew(k) + (k - 1) H) <= tiled - per-PE <= (k - kc) H (0 on even splits).
  // Even splits (of nodes and tiles), one vector: exactly -2 (k - 1) H, as the chain (16 x 16: per-PE 336 for
  // g = 4, 340 for g = 8; tiled 334 / 330 / 326 for k = 2 / 4 / 8).
  const PeConfig pe;
  const FabricConfig fc;
  for (std::uint32_t m : {1u, 8u}) {
    for (GemvConfig g : bound_grids()) {
      g.reduction = Reduction::kKTree;
      g.vectors = m;
      for (std::uint32_t k : {2u, 4u, 8u}) {
        g.ktree_group = std::max(k, 4u);
        const GemvResult per_pe = run_gemv(fc, pe, g);
        const GemvResult t = run_gemv_tiled(fc, k, pe, g);
        const std::int64_t d = diff(t, per_pe);
        SCOPED_TRACE("m " + std::to_string(m) + " grid " + std::to_string(g.grid_rows) + "x" +
                     std::to_string(g.grid_cols) + " k " + std::to_string(k) + ": per-PE " +
                     std::to_string(per_pe.total_cycles) + ", tiled " + std::to_string(t.total_cycles));
        const std::uint32_t kc = g.grid_cols % k;
        EXPECT_LE(d, kc == 0 ? 0 : static_cast<std::int64_t>(k - kc));
        EXPECT_GE(d, -(x_skew(k) + static_cast<std::int64_t>(k - 1)));
        if (m == 1 && even(g, k)) {
          EXPECT_EQ(d, -2 * static_cast<std::int64_t>(k - 1));
        }
      }
    }
  }
}

TEST_F(GemvTiledTest, FoldedNodeRowsGiveTheWholeGridsResult) {
  // GemvConfig::fold_rows simulates the top node row and the last node row of each run of
  // node rows with the same tile heights, and shifts the others by the x multicast's node
  // hop. It is a shortcut, not an approximation: every figure equals the whole grid's, for
  // each reduction, one vector and GEMMs (also past simulated_vectors), fp16 and fp32,
  // grids whose rows are not a multiple of k, and M not a multiple of P (taller tiles in
  // the first rows, ending inside a node row or at its edge).
  struct Shape {
    std::uint64_t m, n;
    std::uint32_t P, Q;
  };
  const std::vector<Shape> shapes = {{1000, 512, 64, 32}, {1024, 512, 64, 32}, {700, 300, 37, 40},
                                     {333, 256, 45, 16},  {4096, 640, 60, 64}, {600, 128, 50, 8}};
  int folded = 0;
  for (const Shape& s : shapes) {
    for (Reduction red : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
      for (std::uint32_t m : {1u, 3u, 12u}) {
        for (Accumulate acc : {Accumulate::kFp16, Accumulate::kFp32}) {
          GemvConfig g = gemv_cfg(s.m, s.n, s.P, s.Q);
          g.reduction = red;
          g.vectors = m;
          g.accumulate = acc;
          SCOPED_TRACE(std::to_string(s.m) + "x" + std::to_string(s.n) + " on " + std::to_string(s.P) + "x" +
                       std::to_string(s.Q) + " " + reduction_name(red) + " m " + std::to_string(m) + " acc " +
                       std::to_string(static_cast<int>(acc)));
          g.fold_rows = false;
          const GemvResult whole = run_gemv_tiled(FabricConfig{}, 4, PeConfig{}, g);
          g.fold_rows = true;
          const GemvResult fold = run_gemv_tiled(FabricConfig{}, 4, PeConfig{}, g);
          expect_same_times(fold, whole);
          EXPECT_EQ(fold.compute_cycles, whole.compute_cycles);
          EXPECT_EQ(fold.reduction_cycles, whole.reduction_cycles);
          EXPECT_EQ(fold.vectors_simulated, whole.vectors_simulated);
          if (fold.fabric_cycles_simulated < whole.fabric_cycles_simulated) ++folded;
        }
      }
    }
  }
  EXPECT_GT(folded, 0);  // the shortcut did run
}

TEST_F(GemvTiledTest, RejectsWhatNodesCannotMap) {
  GemvConfig g = gemv_cfg(64, 64, 6, 6);
  g.reduction = Reduction::kTree;
  EXPECT_THROW(run_gemv_tiled(FabricConfig{}, 3, PeConfig{}, g), std::invalid_argument);  // k not 2^i
  g.reduction = Reduction::kKTree;
  g.ktree_group = 4;
  EXPECT_THROW(run_gemv_tiled(FabricConfig{}, 8, PeConfig{}, g), std::invalid_argument);  // g not k x i
  g.ktree_group = 0;  // auto: a multiple of k
  EXPECT_NO_THROW(run_gemv_tiled(FabricConfig{}, 3, PeConfig{}, g));
  EXPECT_THROW(run_gemv_tiled(FabricConfig{}, 2, PeConfig{}, gemv_cfg(32768, 32768, 4, 4)), CapacityError);
}

}  // namespace
}  // namespace wse::wafer
