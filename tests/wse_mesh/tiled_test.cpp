// Tiled fidelity (k x k PEs per node) against per-PE routing on the same kernel.
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "util/systemc_test.h"
#include "wse_mesh/fabric/fabric.h"

namespace wse::wafer {
namespace {

class TiledTest : public wse::testing::SystemCTest {};

// Column multicast (the input broadcast of a GEMV): on a `cols` x `rows` fabric every
// top-row node sends `wavelets` down its column, copied to every node below. Returns the
// cycle the last wavelet reaches the bottom row.
std::uint64_t column_multicast(const FabricConfig& fc, std::uint32_t wavelets) {
  Fabric f(fc);
  std::uint64_t last = 0;
  f.on_delivery([&](PeCoord pe, MessageId, std::uint64_t c) {
    if (pe.y + 1 == fc.height) last = std::max(last, c);
  });
  for (std::uint32_t x = 0; x < fc.width; ++x) {
    f.set_route({x, 0}, 0, mask(Port::kRamp), mask(Port::kSouth));
    for (std::uint32_t y = 1; y + 1 < fc.height; ++y) {
      f.set_route({x, y}, 0, mask(Port::kNorth), mask(Port::kSouth, Port::kRamp));
    }
    f.set_route({x, fc.height - 1}, 0, mask(Port::kNorth), mask(Port::kRamp));
    f.inject({x, 0}, 0, wavelets, 0);
  }
  f.run_until_idle();
  return last;
}

TEST_F(TiledTest, TiledConfigScalesLinks) {
  FabricConfig pe;
  pe.width = 762;
  pe.height = 1176;
  const FabricConfig t = tiled(pe, 8);
  EXPECT_EQ(t.width, 96u);  // ceil(762 / 8)
  EXPECT_EQ(t.height, 147u);
  EXPECT_EQ(t.hop_latency_cycles, 8u);
  EXPECT_EQ(t.link_wavelets_per_cycle, 8u);
  EXPECT_EQ(t.ramp_wavelets_per_cycle, 64u);
  EXPECT_EQ(t.input_buffer_wavelets, 255u);  // 4 x 64, capped at 255
  EXPECT_EQ(tiled(pe, 2).input_buffer_wavelets, 16u);
}

TEST_F(TiledTest, MulticastMatchesPerPeWithinKMinusOneHops) {
  // Per-PE, 8 x 8, 6 wavelets per column: the bottom PE (row 7) gets the last wavelet at
  // R + 7H + R + 5 = 14. Tiled with k = 2 (4 x 4 nodes, 2-wide links, 2-cycle hops):
  // each node column sends 2 x 6 = 12 wavelets, 2 per cycle from cycle 1 to 6; 3 node
  // hops of 2 cycles reach the bottom node's router at 12 and its PEs at 13: the time of
  // PE row 6, the node's first row. Tiles place a node's wavelets at its first PE row,
  // so the tiled time is early by at most (k - 1) x H for the rows inside the node.
  FabricConfig pe;
  pe.width = 8;
  pe.height = 8;
  EXPECT_EQ(column_multicast(pe, 6), 14u);
  const FabricConfig t2 = tiled(pe, 2);
  EXPECT_EQ(column_multicast(t2, 2 * 6), 13u);
  // Bound on a larger case: 32 x 32, 20 wavelets, k = 2, 4, 8.
  FabricConfig big;
  big.width = 32;
  big.height = 32;
  const std::uint64_t per_pe = column_multicast(big, 20);
  EXPECT_EQ(per_pe, 1u + 31 + 1 + 19);
  for (std::uint32_t k : {2u, 4u, 8u}) {
    const std::uint64_t tile = column_multicast(tiled(big, k), k * 20);
    EXPECT_LE(tile, per_pe) << "k = " << k;
    EXPECT_LE(per_pe - tile, (k - 1) * big.hop_latency_cycles) << "k = " << k;
  }
}

}  // namespace
}  // namespace wse::wafer
