// The cost of a run (apps/experiments/cost.h), derived by hand.
#include <gtest/gtest.h>

#include "apps/experiments/cost.h"

namespace wse::experiments {
namespace {

// The default system's fleet: one trn2.48xlarge ($35.76/h) and four CS-3s ($95.06/h
// each): 35.76 + 4 x 95.06 = $416.00 per hour. A run of 216 simulated seconds
// (0.06 h) costs 416.00 x 0.06 = $24.96; with 200,000 output tokens that is
// 24.96 / 0.2 = $124.80 per million output tokens, and with 1,000,000 prompt tokens
// besides, 24.96 / 1.2 = $20.80 per million tokens.
TEST(RunCost, DollarsPerMillionTokensByHand) {
  RunCost c;
  c.fleet = {FleetPart{"trainium_instance", 1, 35.76}, FleetPart{"cs3", 4, 95.06}};
  EXPECT_DOUBLE_EQ(c.fleet_usd_per_hour(), 416.0);
  const nlohmann::json s = c.summary(216.0, 200000, 1000000);
  EXPECT_DOUBLE_EQ(s["fleet_usd_per_hour"].get<double>(), 416.0);
  EXPECT_DOUBLE_EQ(s["hours"].get<double>(), 0.06);
  EXPECT_NEAR(s["usd"].get<double>(), 24.96, 1e-12);
  EXPECT_NEAR(s["usd_per_million_output_tokens"].get<double>(), 124.8, 1e-9);
  EXPECT_NEAR(s["usd_per_million_tokens"].get<double>(), 20.8, 1e-9);
  EXPECT_EQ(s["fleet"]["cs3"]["count"], 4);
  EXPECT_DOUBLE_EQ(s["fleet"]["trainium_instance"]["usd_per_hour"].get<double>(), 35.76);
}

TEST(RunCost, NoTokensCostPerTokenZeroNotInfinite) {
  RunCost c;
  c.fleet = {FleetPart{"gpu_instance", 1, 55.04}};
  const nlohmann::json s = c.summary(3600.0, 0, 0);
  EXPECT_DOUBLE_EQ(s["usd"].get<double>(), 55.04);
  EXPECT_EQ(s["usd_per_million_output_tokens"].get<double>(), 0.0);
}

}  // namespace
}  // namespace wse::experiments
