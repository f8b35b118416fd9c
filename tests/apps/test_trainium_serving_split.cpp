// The prefill's split inside the serving modes (docs/neuroncore.md, "Prefill splits in the
// serving modes"): prefill.dp_degree replicas of an instance each a prefill machine of the
// serving layer, sharing the instance's EFA sender; cp_degree groups sharing each batch;
// pp_degree stages a batch enters once the one before has left stage 0. The TTFT of a
// prompt alone is the single-pass mode's (trainium_prefill) for the same prompt and split,
// and two prompts at once queue as derived by hand.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// requests.csv as rows of named cells. Its times are written to 1e-11 s, so a TTFT read
// from it (two times) is within kCsv of the exact one.
constexpr double kCsv = 2e-11;
std::vector<std::map<std::string, std::string>> read_requests(const fs::path& file) {
  std::istringstream in(slurp(file));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  {
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) header.push_back(c);
  }
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::map<std::string, std::string> row;
    std::size_t k = 0;
    for (std::string c; std::getline(ss, c, ',') && k < header.size(); ++k) row[header[k]] = c;
    rows.push_back(row);
  }
  return rows;
}

class TrainiumServingSplit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_path("wse_trainium_serving_split");
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "io");
    // Two requests of 512 prompt tokens arriving together, 3 output tokens each.
    std::ofstream(dir_ / "two.csv") << "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                       "2023-11-16 18:15:46.0000000,512,3\n"
                                       "2023-11-16 18:15:46.0000000,512,3\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Mode trainium_disaggregated on Llama-3.1-70B cut to 2 layers, TP 32 x LNC 2 (8 of the
  // 16 chips) per prefill group, one prompt per prefill batch.
  std::vector<std::map<std::string, std::string>> serve(const std::string& name, const std::string& extra) {
    const fs::path out = dir_ / name;
    Result r = wse_emu("run " + std::string(WSE_SOURCE_DIR) +
                           "/configs/experiments/trainium_disaggregated.yaml --quiet --out '" + out.string() +
                           "' --set model.num_hidden_layers=2 --set workload.trace.path='" +
                           (dir_ / "two.csv").string() +
                           "' --set workload.trace.limit=2 --set serving.prefill_max_batch_tokens=512 "
                           "--set prefill.tp_degree=32 " +
                           extra,
                       dir_ / "io");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return {};
    return read_requests(out / "requests.csv");
  }

  fs::path dir_;
};

TEST_F(TrainiumServingSplit, DpReplicasPrefillTwoPromptsAtOnce) {
  // The single-pass mode's TTFT of one 512-token prompt on the same TP 32 group: t.
  const fs::path single = dir_ / "single";
  Result r =
      wse_emu("run " + std::string(WSE_SOURCE_DIR) +
                  "/configs/experiments/parallelism/llama70b_prefill.yaml --quiet --out '" + single.string() +
                  "' --set model.num_hidden_layers=2 --set prompt.tokens=512 --set prefill.tp_degree=32",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double t = nlohmann::json::parse(slurp(single / "summary.json"))["trainium_prefill"]["ttft_s"];
  ASSERT_GT(t, 0.0);

  // dp 1: one group takes one prompt per batch (the batch budget is one prompt). Both
  // arrive at 0: the first prefills over [0, t], the second waits and prefills over
  // [t, 2t]. TTFT = t and 2t.
  const auto one = serve("dp1", "");
  ASSERT_EQ(one.size(), 2u);
  const auto ttft = [](const std::map<std::string, std::string>& row) {
    return std::stod(row.at("first_token_s")) - std::stod(row.at("arrival_s"));
  };
  EXPECT_NEAR(ttft(one[0]), t, kCsv);
  EXPECT_NEAR(ttft(one[1]), 2 * t, kCsv);
  EXPECT_EQ(one[0].at("prefill_instance"), "0");
  EXPECT_EQ(one[1].at("prefill_instance"), "0");

  // dp 2: two groups of 8 chips each on the instance's 16, each its own prefill machine;
  // the second request goes to the idle group (the least queued tokens): both prefill over
  // [0, t]. TTFT = t and t.
  const auto two = serve("dp2", "--set prefill.dp_degree=2");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NEAR(ttft(two[0]), t, kCsv);
  EXPECT_NEAR(ttft(two[1]), t, kCsv);
  EXPECT_EQ(two[0].at("prefill_instance"), "0");
  EXPECT_EQ(two[1].at("prefill_instance"), "1");
  // Both replicas are on one instance: one EFA sender, one instance in the fleet.
  const auto s = nlohmann::json::parse(slurp(dir_ / "dp2" / "summary.json"));
  const auto s1 = nlohmann::json::parse(slurp(dir_ / "dp1" / "summary.json"));
  EXPECT_EQ(s["cost"]["fleet"]["trainium_instance"]["count"], 2);  // one prefill, one decode instance
  EXPECT_EQ(s["cost"]["fleet"].dump(), s1["cost"]["fleet"].dump());
}

TEST_F(TrainiumServingSplit, ContextParallelPrefillIsTheSinglePassOne) {
  // cp 2 of TP 32 x LNC 2: two groups of 8 chips share each prompt, cut into 4 pieces of 128
  // tokens, group 0 pieces {0-127, 384-511} and group 1 {128-255, 256-383}, attention a
  // ring (pipeline_op_test.cpp derives it by hand). A serving batch of one whole prompt is
  // that prompt's single pass: its TTFT is the mode trainium_prefill's, t. The second
  // request waits for the first batch: TTFT 2t.
  const fs::path single = dir_ / "single";
  Result r =
      wse_emu("run " + std::string(WSE_SOURCE_DIR) +
                  "/configs/experiments/parallelism/llama70b_prefill.yaml --quiet --out '" + single.string() +
                  "' --set model.num_hidden_layers=2 --set prompt.tokens=512 --set prefill.tp_degree=32 "
                  "--set prefill.cp_degree=2",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto sp = nlohmann::json::parse(slurp(single / "summary.json"))["trainium_prefill"];
  const double t = sp["ttft_s"];
  ASSERT_GT(t, 0.0);
  const auto cp = serve("cp2", "--set prefill.cp_degree=2");
  ASSERT_EQ(cp.size(), 2u);
  const auto ttft = [](const std::map<std::string, std::string>& row) {
    return std::stod(row.at("first_token_s")) - std::stod(row.at("arrival_s"));
  };
  EXPECT_NEAR(ttft(cp[0]), t, kCsv);
  EXPECT_NEAR(ttft(cp[1]), 2 * t, kCsv);
  // The floor of the serving passes is the single pass's.
  const auto f =
      nlohmann::json::parse(slurp(dir_ / "cp2" / "summary.json"))["trainium"]["floor"]["prefill_pass"];
  const auto fs1 = nlohmann::json::parse(slurp(single / "summary.json"))["trainium"]["floor"]["prefill_pass"];
  EXPECT_EQ(f["passes"], 2);
  EXPECT_NEAR(f["step_s"].get<double>(), fs1["step_s"].get<double>(), 1e-15);
  EXPECT_NEAR(f["simulated_s"].get<double>(), t, 1e-12);
  // Without cp the same group takes longer (its all-reduces over 8 chips, every token).
  const auto one = serve("cp1", "");
  EXPECT_LT(t, ttft(one[0]));
}

TEST_F(TrainiumServingSplit, PipelinedPrefillTakesTheNextPromptIntoStageZero) {
  // TP 32 x LNC 2 x PP 2 (8 chips per stage), 2 microbatches: the single-pass mode gives
  // the stage times of the prompt's chunks a (tokens 0-255) and b (256-511) on stages 0
  // and 1, and the boundary transfer x:
  //   t = end[b][1] = max(a0 + b0 + x, a0 + x + a1) + b1.
  const fs::path single = dir_ / "single";
  Result r =
      wse_emu("run " + std::string(WSE_SOURCE_DIR) +
                  "/configs/experiments/parallelism/llama70b_prefill.yaml --quiet --out '" + single.string() +
                  "' --set model.num_hidden_layers=2 --set prompt.tokens=512 --set prefill.tp_degree=32 "
                  "--set prefill.pp_degree=2 --set prefill.microbatches=2",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto sp = nlohmann::json::parse(slurp(single / "summary.json"))["trainium_prefill"];
  const double t = sp["ttft_s"];
  const double a0 = sp["stage_s"][0][0], a1 = sp["stage_s"][0][1], b0 = sp["stage_s"][1][0],
               b1 = sp["stage_s"][1][1], x = sp["stage_boundary_transfer_s"];
  ASSERT_NEAR(t, std::max(a0 + b0 + x, a0 + x + a1) + b1, 1e-12);
  // Serving, one prompt per batch: the first prompt's batch is that pass, TTFT t. The second
  // (the same prompt, the same chunks a' = a, b' = b) enters stage 0 when the first has left
  // it, at a0 + b0, and each stage takes its chunks in order:
  //   end[a'][0] = a0 + b0 + a0;  end[b'][0] = end[a'][0] + b0
  //   end[a'][1] = max(end[a'][0] + x, end[b][1]) + a1;  end[b'][1] = max(end[b'][0] + x, end[a'][1]) + b1
  // TTFT = end[b'][1] (it arrived at 0), against 2t drained.
  const auto pp = serve("pp2", "--set prefill.pp_degree=2 --set prefill.microbatches=2");
  ASSERT_EQ(pp.size(), 2u);
  const auto ttft = [](const std::map<std::string, std::string>& row) {
    return std::stod(row.at("first_token_s")) - std::stod(row.at("arrival_s"));
  };
  EXPECT_NEAR(ttft(pp[0]), t, kCsv);
  const double end_b1 = t, ea0 = a0 + b0 + a0, eb0 = ea0 + b0;
  const double ea1 = std::max(ea0 + x, end_b1) + a1, eb1 = std::max(eb0 + x, ea1) + b1;
  EXPECT_NEAR(ttft(pp[1]), eb1, kCsv);
  EXPECT_LT(ttft(pp[1]), 2 * t);
  // The floor's simulated time is each batch's pass from empty stages: t.
  const auto f =
      nlohmann::json::parse(slurp(dir_ / "pp2" / "summary.json"))["trainium"]["floor"]["prefill_pass"];
  EXPECT_NEAR(f["simulated_s"].get<double>(), t, 1e-12);
}

TEST_F(TrainiumServingSplit, ReplicasThatDoNotFitAreOneErrorAtTheirKey) {
  const std::string dis = std::string(WSE_SOURCE_DIR) + "/configs/experiments/trainium_disaggregated.yaml";
  // TP 64 x LNC 2 is the instance's 16 chips: two replicas need 32.
  Result chips = wse_emu("check " + dis + " --set prefill.dp_degree=2", dir_ / "io");
  EXPECT_EQ(chips.exit_code, 2);
  EXPECT_THAT(chips.err, HasSubstr("prefill.dp_degree"));
  EXPECT_THAT(chips.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  // TP 16 x LNC 2 is 4 chips of 96 GiB: 412,316,860,416 B against Llama-3.1-70B's
  // 141,107,412,992 B of weights fits; TP 4 x LNC 2 (one chip, 103,079,215,104 B) does not.
  Result hbm = wse_emu("check " + dis + " --set prefill.tp_degree=4 --set prefill.dp_degree=2", dir_ / "io");
  EXPECT_EQ(hbm.exit_code, 2);
  EXPECT_THAT(hbm.err, HasSubstr("prefill.dp_degree"));
  EXPECT_THAT(hbm.err, HasSubstr("holds all the weights (141107412992 B) but its chips' HBM holds "
                                 "103079215104 B (38028197888 B short"));
  // Two context-parallel groups of 16 chips each: 32.
  Result cp = wse_emu("check " + dis + " --set prefill.cp_degree=2", dir_ / "io");
  EXPECT_EQ(cp.exit_code, 2);
  EXPECT_THAT(cp.err, HasSubstr("prefill.cp_degree"));
  EXPECT_THAT(cp.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  // Colocated, a prompt's KV spread over the cp groups is not where one group decodes.
  Result colocated = wse_emu("check " + std::string(WSE_SOURCE_DIR) +
                                 "/configs/experiments/trainium_only.yaml --set prefill.tp_degree=32 "
                                 "--set prefill.cp_degree=2",
                             dir_ / "io");
  EXPECT_EQ(colocated.exit_code, 2);
  EXPECT_THAT(colocated.err, HasSubstr("prefill.cp_degree"));
  EXPECT_THAT(colocated.err, HasSubstr("trainium_disaggregated"));
  // Two stages of 16 chips each: 32.
  Result pp = wse_emu("check " + dis + " --set prefill.pp_degree=2", dir_ / "io");
  EXPECT_EQ(pp.exit_code, 2);
  EXPECT_THAT(pp.err, HasSubstr("prefill.pp_degree"));
  EXPECT_THAT(pp.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
}

}  // namespace
}  // namespace wse::testing
