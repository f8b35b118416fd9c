// Per-PE fabric: exact cycle counts derived by hand from the timing rules in
// wse_mesh/fabric/fabric.h (ramp R cycles each way, H cycles per hop, one wavelet per cycle per
// link direction, credits back C cycles after a slot empties).
#include "wse_mesh/fabric/fabric.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

// Plain C++ models; the fixture also links the test runner (sc_main).
class FabricTest : public wse::testing::SystemCTest {};

struct Delivery {
  PeCoord pe;
  MessageId msg;
  std::uint64_t cycle;
};

// Records every wavelet delivered to a PE.
struct Recorder {
  std::vector<Delivery> log;
  void attach(Fabric& f) {
    f.on_delivery([this](PeCoord pe, MessageId m, std::uint64_t c) { log.push_back({pe, m, c}); });
  }
  std::vector<std::uint64_t> cycles_of(MessageId m) const {
    std::vector<std::uint64_t> out;
    for (const auto& d : log)
      if (d.msg == m) out.push_back(d.cycle);
    return out;
  }
  std::vector<std::uint64_t> cycles_at(PeCoord pe) const {
    std::vector<std::uint64_t> out;
    for (const auto& d : log)
      if (d.pe == pe) out.push_back(d.cycle);
    return out;
  }
};

// Route of `color` eastward along row y from x0 (source) to x1 (sink).
void route_east(Fabric& f, Color color, std::uint32_t y, std::uint32_t x0, std::uint32_t x1) {
  f.set_route({x0, y}, color, mask(Port::kRamp), mask(Port::kEast));
  for (std::uint32_t x = x0 + 1; x < x1; ++x)
    f.set_route({x, y}, color, mask(Port::kWest), mask(Port::kEast));
  f.set_route({x1, y}, color, mask(Port::kWest), mask(Port::kRamp));
}

FabricConfig line(std::uint32_t width, std::uint32_t hop = 1) {
  FabricConfig c;
  c.width = width;
  c.height = 1;
  c.hop_latency_cycles = hop;
  return c;
}

TEST_F(FabricTest, OneMessageOverHHops) {
  // n = 5 wavelets, h = 6 hops, ramp R = 1, hop H = 1. Wavelet k enters the ramp at
  // cycle k, reaches the source router at k + R, the sink router at k + R + 6H and the
  // sink PE at k + R + 6H + R = k + 8. Last wavelet (k = 4): cycle 12, so the message is
  // complete after 13 cycles = h*H + n + 2R = 6 + 5 + 2.
  Fabric f(line(8));
  route_east(f, 0, 0, 0, 6);
  Recorder rec;
  rec.attach(f);
  const MessageId m = f.inject({0, 0}, 0, 5, 0);
  EXPECT_EQ(f.run_until_idle(), 13u);
  EXPECT_EQ(rec.cycles_of(m), (std::vector<std::uint64_t>{8, 9, 10, 11, 12}));
  EXPECT_EQ(f.wavelet_hops(), 5u * 6u);
  EXPECT_EQ(f.link_wavelets({3, 0}, Port::kEast), 5u);
  EXPECT_EQ(f.link_wavelets({6, 0}, Port::kEast), 0u);
}

TEST_F(FabricTest, HopLatencyScalesWithHops) {
  // Same message, H = 3: last wavelet at 4 + 1 + 6*3 + 1 = 24.
  Fabric f(line(8, 3));
  route_east(f, 0, 0, 0, 6);
  Recorder rec;
  rec.attach(f);
  const MessageId m = f.inject({0, 0}, 0, 5, 10);  // ready at cycle 10: everything shifts by 10
  f.run_until_idle();
  EXPECT_EQ(rec.cycles_of(m), (std::vector<std::uint64_t>{30, 31, 32, 33, 34}));
  EXPECT_EQ(f.cycles_simulated(), 25u);  // the idle cycles 0..9 are skipped
}

TEST_F(FabricTest, TwoColorsShareALinkRoundRobin) {
  // Color 0: (0,0) -> (3,0); color 1: (1,0) -> (3,0); 4 wavelets each, both ready at 0.
  // Links (1,0)E and (2,0)E are shared. At router (1,0) color 1 (RAMP input) arrives at
  // cycles 1,2,3,4 and color 0 (WEST input) at 2,3,4,5. The EAST output serves them
  // round-robin: c1@1, c0@2, c1@3, c0@4, c1@5, c0@6, c1@7, c0@8. From (1,0)E to the
  // sink PE is 2 hops + ramp = 3 cycles: c1 delivered at 4,6,8,10, c0 at 5,7,9,11.
  // Alone, color 0 would finish its last wavelet at 3 + 1 + 3 + 1 = 8.
  Fabric f(line(4));
  route_east(f, 0, 0, 0, 3);
  route_east(f, 1, 0, 1, 3);
  Recorder rec;
  rec.attach(f);
  const MessageId a = f.inject({0, 0}, 0, 4, 0);
  const MessageId b = f.inject({1, 0}, 1, 4, 0);
  EXPECT_EQ(f.run_until_idle(), 12u);
  EXPECT_EQ(rec.cycles_of(b), (std::vector<std::uint64_t>{4, 6, 8, 10}));
  EXPECT_EQ(rec.cycles_of(a), (std::vector<std::uint64_t>{5, 7, 9, 11}));
  EXPECT_EQ(f.link_wavelets({1, 0}, Port::kEast), 8u);
}

TEST_F(FabricTest, CongestedColorDoesNotBlockAnother) {
  // Colors 1 and 2 both end at PE (3,0) and share its one-wavelet-per-cycle ramp, so
  // color 1 runs at half rate and its buffers (depth 1) back up to (0,0). Color 0 shares
  // link (0,0)E with color 1 but ends at (1,0). With one buffer shared by all colors,
  // color 0 would queue behind color 1's backlog; with a buffer per color it gets at
  // least every other cycle of the link: its 8 wavelets, alone done after
  // 1 + 1 + 1 + 8 = 11 cycles, are done at most 8 cycles later.
  FabricConfig c = line(4);
  c.input_buffer_wavelets = 1;
  Fabric f(c);
  route_east(f, 1, 0, 0, 3);
  route_east(f, 2, 0, 2, 3);
  route_east(f, 0, 0, 0, 1);
  Recorder rec;
  rec.attach(f);
  f.inject({0, 0}, 1, 40, 0);
  f.inject({2, 0}, 2, 40, 0);
  const MessageId a = f.inject({0, 0}, 0, 8, 0);
  f.run_until_idle();
  const auto got = rec.cycles_of(a);
  ASSERT_EQ(got.size(), 8u);
  EXPECT_LE(got.back() + 1, 11u + 8u);
  // Color 1 really was throttled: 40 wavelets through a shared ramp need >= 80 cycles.
  EXPECT_GE(rec.cycles_at({3, 0}).back(), 80u);
}

TEST_F(FabricTest, MulticastTree) {
  // Root (0,0) sends 3 wavelets of color 3 east. (1,0) forwards each to EAST, SOUTH and
  // its own RAMP; (2,0) and (1,2) are leaves, (1,1) forwards SOUTH and to its RAMP.
  // Wavelet k reaches router (1,0) at k + 2 (ramp + 1 hop): PE (1,0) gets it at k + 3,
  // routers (2,0) and (1,1) at k + 3 so PEs (2,0), (1,1) at k + 4, router (1,2) at k + 4
  // so PE (1,2) at k + 5. Each branch copies the wavelet in the same cycle.
  FabricConfig c;
  c.width = 3;
  c.height = 3;
  Fabric f(c);
  f.set_route({0, 0}, 3, mask(Port::kRamp), mask(Port::kEast));
  f.set_route({1, 0}, 3, mask(Port::kWest), mask(Port::kEast, Port::kSouth, Port::kRamp));
  f.set_route({2, 0}, 3, mask(Port::kWest), mask(Port::kRamp));
  f.set_route({1, 1}, 3, mask(Port::kNorth), mask(Port::kSouth, Port::kRamp));
  f.set_route({1, 2}, 3, mask(Port::kNorth), mask(Port::kRamp));
  Recorder rec;
  rec.attach(f);
  f.inject({0, 0}, 3, 3, 0);
  EXPECT_EQ(f.run_until_idle(), 8u);
  EXPECT_EQ(rec.cycles_at({1, 0}), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(rec.cycles_at({2, 0}), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(rec.cycles_at({1, 1}), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(rec.cycles_at({1, 2}), (std::vector<std::uint64_t>{5, 6, 7}));
  EXPECT_EQ(f.wavelets_delivered(), 12u);
  EXPECT_EQ(f.wavelet_hops(), 3u * 4u);  // four links carry each wavelet once
}

TEST_F(FabricTest, BackpressureFromOneSlotBuffers) {
  // Buffers of one wavelet, H = 1, credit C = 1: a slot emptied at cycle t is usable by
  // its upstream at t + C, so each link carries a wavelet every H + C = 2 cycles.
  // The PE hands wavelet k to the ramp at 2k, routers forward it at 2k+1, 2k+2, 2k+3,
  // 2k+4 (3 hops) and it reaches the sink PE at 2k + 5: the 10th at 23, against
  // 1 + 3 + 1 + 9 = 14 with enough buffering.
  FabricConfig c = line(4);
  c.input_buffer_wavelets = 1;
  Fabric f(c);
  route_east(f, 0, 0, 0, 3);
  Recorder rec;
  rec.attach(f);
  const MessageId m = f.inject({0, 0}, 0, 10, 0);
  f.run_until_idle();
  const auto got = rec.cycles_of(m);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front(), 5u);
  EXPECT_EQ(got.back(), 23u);

  FabricConfig deep = line(4);
  deep.input_buffer_wavelets = 2;  // covers the H + C round trip: full rate
  Fabric g(deep);
  route_east(g, 0, 0, 0, 3);
  Recorder rec2;
  rec2.attach(g);
  const MessageId m2 = g.inject({0, 0}, 0, 10, 0);
  g.run_until_idle();
  EXPECT_EQ(rec2.cycles_of(m2).back(), 14u);
}

TEST_F(FabricTest, DimensionOrderedMessage) {
  // (0,0) -> (3,2): 3 hops east then 2 south, 2 wavelets: last at 1 + 1 + 5 + 1 = 8.
  FabricConfig c;
  c.width = 4;
  c.height = 3;
  Fabric f(c);
  f.set_dimension_ordered(5);
  Recorder rec;
  rec.attach(f);
  const MessageId m = f.inject({0, 0}, 5, 2, 0, {3, 2});
  f.run_until_idle();
  EXPECT_EQ(rec.cycles_of(m), (std::vector<std::uint64_t>{7, 8}));
  EXPECT_EQ(f.link_wavelets({3, 0}, Port::kSouth), 2u);  // turned south at x = 3
  EXPECT_EQ(f.link_wavelets({0, 0}, Port::kSouth), 0u);
}

TEST_F(FabricTest, RouteErrorsNameThePe) {
  Fabric f(line(4));
  EXPECT_THROW(f.set_route({3, 0}, 0, mask(Port::kWest), mask(Port::kEast)), std::invalid_argument);
  EXPECT_THROW(f.set_route({0, 0}, 24, mask(Port::kRamp), mask(Port::kEast)), std::invalid_argument);
  EXPECT_THROW(f.inject({0, 0}, 0, 1, 0), RouteError);  // no route accepts the ramp
  // (1,0) accepts color 0 only from the EAST: the wavelet from the west is refused.
  f.set_route({0, 0}, 0, mask(Port::kRamp), mask(Port::kEast));
  f.set_route({1, 0}, 0, mask(Port::kEast), mask(Port::kRamp));
  f.inject({0, 0}, 0, 1, 0);
  try {
    f.run_until_idle();
    FAIL() << "expected a RouteError";
  } catch (const RouteError& e) {
    EXPECT_NE(std::string(e.what()).find("PE (1,0)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("WEST"), std::string::npos) << e.what();
  }
  // A route that forwards into a PE with no route for the color.
  Fabric g(line(4));
  g.set_route({0, 0}, 2, mask(Port::kRamp), mask(Port::kEast));
  g.inject({0, 0}, 2, 1, 0);
  EXPECT_THROW(g.run_until_idle(), RouteError);
}

TEST_F(FabricTest, CyclicRouteDeadlockIsReported) {
  // A color routed around a ring of four PEs with one-slot buffers, fed from a ramp:
  // once the ring's four buffers and the ramp's are full, every head waits for a slot
  // held by the next one. The run stops with an error instead of idling or spinning.
  FabricConfig c;
  c.width = 2;
  c.height = 2;
  c.input_buffer_wavelets = 1;
  Fabric f(c);
  f.set_route({0, 0}, 0, mask(Port::kRamp, Port::kSouth), mask(Port::kEast));
  f.set_route({1, 0}, 0, mask(Port::kWest), mask(Port::kSouth));
  f.set_route({1, 1}, 0, mask(Port::kNorth), mask(Port::kWest));
  f.set_route({0, 1}, 0, mask(Port::kEast), mask(Port::kNorth));
  f.inject({0, 0}, 0, 10, 0);
  EXPECT_THROW(f.run_until_idle(10000), std::logic_error);
  EXPECT_TRUE(f.deadlocked());
  EXPECT_LT(f.now(), 100u);
}

TEST_F(FabricTest, IdleFullWaferIsSmall) {
  // An idle WSE-3-sized fabric allocates only the per-PE tables (no buffers).
  FabricConfig c;
  c.width = 762;
  c.height = 1176;
  Fabric f(c);
  EXPECT_LT(f.state_bytes(), 250u * 1024 * 1024);
  EXPECT_TRUE(f.idle());
}

}  // namespace
}  // namespace wse::wafer
