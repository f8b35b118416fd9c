// Data entering through the wafer's I/O edge and reaching a far PE.
#include "wse_mesh/fabric/io_edge.h"

#include <vector>

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class IoEdgeTest : public wse::testing::SystemCTest {};

TEST_F(IoEdgeTest, MessageEntersAndReachesFarPe) {
  // CS-3 edge: 1.2 Tb/s at 1.1 GHz = 136.4 B per cycle. 64 B (16 wavelets) for PE
  // (100, 5): the edge holds the message ceil(64 / 136.4) = 1 cycle; its first wavelet is
  // across at cycle 1 and enters edge PE (0, 5)'s ramp; then ramp 1 + 100 hops + ramp 1:
  // first wavelet at PE (100, 5) at 1 + 1 + 100 + 1 = 103, the 16th at 118.
  FabricConfig fc;
  fc.width = 128;
  fc.height = 8;
  Fabric f(fc);
  IoEdge edge(f, IoEdgeConfig{});
  std::vector<std::uint64_t> got;
  f.on_delivery([&](PeCoord pe, MessageId, std::uint64_t c) {
    EXPECT_EQ(pe, (PeCoord{100, 5}));
    got.push_back(c);
  });
  edge.send({100, 5}, 64, 0);
  f.run_until_idle();
  ASSERT_EQ(got.size(), 16u);
  EXPECT_EQ(got.front(), 103u);
  EXPECT_EQ(got.back(), 118u);
  EXPECT_EQ(f.link_wavelets({50, 5}, Port::kEast), 16u);
}

TEST_F(IoEdgeTest, EdgeBandwidthIsShared) {
  // A 0.1 Tb/s edge at 1 GHz moves 12.5 B per cycle. Two 100 B messages arriving at
  // cycle 0 for two rows: the first holds the edge for ceil(100 / 12.5) = 8 cycles, so the
  // second starts crossing at 8 and its first wavelet is across at 9. Each goes to the
  // PE 3 hops in: first wavelet at PE after ready + 1 + 3 + 1, 25 wavelets, the last 24
  // cycles later. Second message: 9 + 5 + 24 = 38.
  FabricConfig fc;
  fc.width = 4;
  fc.height = 2;
  Fabric f(fc);
  IoEdgeConfig ec;
  ec.bandwidth = Bandwidth{0.1e12 / 8};
  ec.clock = Frequency{1e9};
  IoEdge edge(f, ec);
  std::vector<std::uint64_t> last(2, 0);
  f.on_delivery([&](PeCoord pe, MessageId, std::uint64_t c) { last[pe.y] = c; });
  edge.send({3, 0}, 100, 0);
  edge.send({3, 1}, 100, 0);
  f.run_until_idle();
  EXPECT_EQ(last[0], 1u + 5 + 24);
  EXPECT_EQ(last[1], 9u + 5 + 24);
  EXPECT_EQ(edge.busy_cycles(), 16u);
}

}  // namespace
}  // namespace wse::wafer
