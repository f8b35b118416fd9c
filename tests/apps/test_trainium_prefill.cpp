// Mode trainium_prefill: one prompt through a tp x pp x dp split of a Trainium instance
// (neuroncore/transformer/pipeline_op.h), its summary, and the errors of a split that
// does not fit.
#include <algorithm>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kBase = "configs/experiments/parallelism/llama70b_prefill.yaml";

TEST(TrainiumPrefillMode, APipelineOfTwoStagesEndsByTheRecurrence) {
  // Llama-3.1-70B cut to 2 layers, 512 tokens in 2 microbatches, TP 8 x LNC 2 (2 chips per
  // stage) x PP 2: 4 chips. With a, b the chunks and x the boundary transfer:
  //   TTFT = max(a0 + b0 + x, a0 + x + a1) + b1, prompts/s = 1 / max(a0 + b0, a1 + b1).
  const fs::path dir = temp_path("wse_trainium_prefill_mode");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  Result r = wse_emu("run " + std::string(WSE_SOURCE_DIR) + "/" + kBase + " --quiet --out '" + (dir / "out").string() +
                         "' --set model.num_hidden_layers=2 --set prompt.tokens=512 --set prefill.tp_degree=8 "
                         "--set prefill.pp_degree=2 --set prefill.microbatches=2",
                     dir / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(dir / "out" / "summary.json"))["trainium_prefill"];
  EXPECT_EQ(s["chips"], 4);
  EXPECT_EQ(s["chips_per_stage"], 2);
  const auto st = s["stage_s"];
  ASSERT_EQ(st.size(), 2u);
  const double a0 = st[0][0], a1 = st[0][1], b0 = st[1][0], b1 = st[1][1];
  const double x = s["stage_boundary_transfer_s"];
  EXPECT_GT(x, 0.0);
  EXPECT_NEAR(s["ttft_s"].get<double>(), std::max(a0 + b0 + x, a0 + x + a1) + b1, 1e-12);
  EXPECT_NEAR(s["prompts_per_s"].get<double>(), 1.0 / std::max(a0 + b0, a1 + b1), 1e-6);
  fs::remove_all(dir);
}

TEST(TrainiumPrefillMode, ASplitThatDoesNotFitIsOneErrorAtItsKey) {
  const fs::path dir = temp_path("wse_trainium_prefill_bad");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  const std::string base = std::string(WSE_SOURCE_DIR) + "/" + kBase;
  // TP 64 x LNC 2 is the 16 chips: two stages need 32.
  Result chips = wse_emu("run " + base + " --quiet --out '" + (dir / "a").string() + "' --set prefill.pp_degree=2",
                         dir / "io");
  EXPECT_EQ(chips.exit_code, 2);
  EXPECT_THAT(chips.err, HasSubstr("prefill.pp_degree"));
  EXPECT_THAT(chips.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  EXPECT_FALSE(fs::exists(dir / "a"));
  // One chip holding all of Llama-3.1-70B: short of HBM.
  Result hbm = wse_emu("run " + base + " --quiet --out '" + (dir / "b").string() + "' --set prefill.tp_degree=4",
                       dir / "io");
  EXPECT_EQ(hbm.exit_code, 2);
  EXPECT_THAT(hbm.err, HasSubstr("prefill.pp_degree"));
  EXPECT_THAT(hbm.err, HasSubstr("B short); raise pp_degree or tp_degree"));
  EXPECT_FALSE(fs::exists(dir / "b"));
  // The serving modes run one group per instance.
  Result serving = wse_emu("check " + std::string(WSE_SOURCE_DIR) +
                               "/configs/experiments/trainium_only.yaml --set prefill.pp_degree=2",
                           dir / "io");
  EXPECT_EQ(serving.exit_code, 2);
  EXPECT_THAT(serving.err, HasSubstr("runs in mode trainium_prefill"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wse::testing
