// GEMV on tiled fidelity against the per-PE GEMV on grids where per-PE is affordable.
#include "wse_mesh/gemv_tiled.h"

#include <cstdint>
#include <cstdlib>
#include <string>

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
      const GemvResult tiled1 = run_gemv_tiled(FabricConfig{}, 1, PeConfig{}, g);
      EXPECT_EQ(tiled1.total_cycles, per_pe.total_cycles);
      EXPECT_EQ(tiled1.first_vector_cycles, per_pe.first_vector_cycles);
      EXPECT_EQ(tiled1.multicast_cycles, per_pe.multicast_cycles);
      EXPECT_EQ(tiled1.compute_done_cycles, per_pe.compute_done_cycles);
      EXPECT_EQ(tiled1.wavelet_hops, per_pe.wavelet_hops);
      EXPECT_EQ(tiled1.sram_bytes_per_pe, per_pe.sram_bytes_per_pe);
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

TEST_F(GemvTiledTest, RejectsTheTree) {
  GemvConfig g = gemv_cfg(64, 64, 4, 4);
  g.reduction = Reduction::kTree;
  EXPECT_THROW(run_gemv_tiled(FabricConfig{}, 2, PeConfig{}, g), std::invalid_argument);
  EXPECT_THROW(run_gemv_tiled(FabricConfig{}, 2, PeConfig{}, gemv_cfg(32768, 32768, 4, 4)), CapacityError);
}

}  // namespace
}  // namespace wse::wafer
