#include "wse_mesh/fabric/traffic.h"

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class TrafficTest : public wse::testing::SystemCTest {};

FabricConfig mesh(std::uint32_t k) {
  FabricConfig c;
  c.width = k;
  c.height = k;
  return c;
}

TEST_F(TrafficTest, LowLoadAcceptsWhatIsOfferedAtZeroLoadLatency) {
  // At 2% load on 8x8 the network is nearly empty: accepted = offered, and the mean
  // latency is close to the zero-load value 2R + H * mean hops + 1 = 2 + 5.33 + 1 for
  // uniform traffic excluding self (mean hops on a k x k mesh: 2(k^2-1)/(3k) * k^2/(k^2-1)).
  TrafficConfig t;
  t.injection_rate = 0.02;
  t.measure_cycles = 3000;
  const TrafficResult r = run_traffic(mesh(8), t);
  EXPECT_NEAR(r.accepted, r.offered, 0.002);
  EXPECT_NEAR(r.offered, 0.02, 0.003);
  const double mean_hops = 2.0 * (64 - 1) / (3.0 * 8) * 64.0 / 63.0;
  EXPECT_NEAR(r.avg_latency_cycles, 2 + mean_hops + 1, 0.5);
  EXPECT_EQ(r.undelivered_packets, 0u);
}

TEST_F(TrafficTest, BeyondSaturationAcceptedFallsShortOfOffered) {
  // Bisection bound on 8x8 is 4/k = 0.5: at 0.8 offered, accepted must stay below it.
  TrafficConfig t;
  t.injection_rate = 0.8;
  t.warmup_cycles = 300;
  t.measure_cycles = 600;
  t.drain_cycles = 0;
  const TrafficResult r = run_traffic(mesh(8), t);
  EXPECT_LT(r.accepted, 0.5);
  EXPECT_GT(r.accepted, 0.2);
}

TEST_F(TrafficTest, SameSeedSameResult) {
  TrafficConfig t;
  t.injection_rate = 0.2;
  t.pattern = TrafficPattern::kHotspot;
  t.measure_cycles = 500;
  const TrafficResult a = run_traffic(mesh(8), t);
  const TrafficResult b = run_traffic(mesh(8), t);
  EXPECT_EQ(a.avg_latency_cycles, b.avg_latency_cycles);
  EXPECT_EQ(a.wavelet_hops, b.wavelet_hops);
}

}  // namespace
}  // namespace wse::wafer
