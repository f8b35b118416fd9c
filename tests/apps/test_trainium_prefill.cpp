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
  Result r = wse_emu(
      "run " + std::string(WSE_SOURCE_DIR) + "/" + kBase + " --quiet --out '" + (dir / "out").string() +
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
  // The floor beside the TTFT, as every mode that runs Trainium gives it: the TTFT does not
  // beat it, and its terms are the stages' (pipeline_op_test.cpp derives them).
  const auto all = nlohmann::json::parse(slurp(dir / "out" / "summary.json"));
  const auto f = all["trainium"]["floor"]["prefill_pass"];
  ASSERT_TRUE(f.is_object()) << all.dump(2);
  EXPECT_EQ(f["passes"], 1);
  EXPECT_DOUBLE_EQ(f["simulated_s"].get<double>(), s["ttft_s"].get<double>());
  const double step = f["step_s"];
  EXPECT_GT(f["compute_s"].get<double>(), 0.0);
  EXPECT_GT(f["hbm_s"].get<double>(), 0.0);
  EXPECT_GT(f["collective_s"].get<double>(), 0.0);  // TP 8 x LNC 2 is two chips: all-reduces between them
  EXPECT_DOUBLE_EQ(step, std::max({f["compute_s"].get<double>(), f["hbm_s"].get<double>(),
                                   f["collective_s"].get<double>()}));
  EXPECT_GE(s["ttft_s"].get<double>(), step);
  EXPECT_NEAR(f["ratio"].get<double>(), s["ttft_s"].get<double>() / step, 1e-12);
  fs::remove_all(dir);
}

TEST(TrainiumPrefillMode, ASplitThatDoesNotFitIsOneErrorAtItsKey) {
  const fs::path dir = temp_path("wse_trainium_prefill_bad");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  const std::string base = std::string(WSE_SOURCE_DIR) + "/" + kBase;
  // TP 64 x LNC 2 is the 16 chips: two stages need 32.
  Result chips = wse_emu(
      "run " + base + " --quiet --out '" + (dir / "a").string() + "' --set prefill.pp_degree=2", dir / "io");
  EXPECT_EQ(chips.exit_code, 2);
  EXPECT_THAT(chips.err, HasSubstr("prefill.pp_degree"));
  EXPECT_THAT(chips.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  EXPECT_FALSE(fs::exists(dir / "a"));
  // One chip holding all of Llama-3.1-70B: short of HBM.
  Result hbm = wse_emu(
      "run " + base + " --quiet --out '" + (dir / "b").string() + "' --set prefill.tp_degree=4", dir / "io");
  EXPECT_EQ(hbm.exit_code, 2);
  EXPECT_THAT(hbm.err, HasSubstr("prefill.pp_degree"));
  EXPECT_THAT(hbm.err, HasSubstr("B short); raise pp_degree or tp_degree"));
  EXPECT_FALSE(fs::exists(dir / "b"));
  // A colocated serving instance (trainium_only) decodes on one group: pipeline stages
  // are for prefill machines (trainium_disaggregated, disaggregated; the serving modes'
  // splits are tested in test_trainium_serving_split.cpp).
  Result serving = wse_emu("check " + std::string(WSE_SOURCE_DIR) +
                               "/configs/experiments/trainium_only.yaml --set prefill.tp_degree=32 "
                               "--set prefill.pp_degree=2",
                           dir / "io");
  EXPECT_EQ(serving.exit_code, 2);
  EXPECT_THAT(serving.err, HasSubstr("prefill.pp_degree"));
  EXPECT_THAT(serving.err, HasSubstr("use mode trainium_disaggregated"));
  // Context parallelism within pipeline stages is modelled (TP 16 x PP 2 x CP 2: 16 chips;
  // PipelineOp.ContextParallelWithinPipelineStagesByHand); over more chips than the
  // instance has, fewer tokens than pieces, and in a colocated serving mode: each an error
  // at cp_degree.
  Result cp_pp = wse_emu("check " + base +
                             " --set prefill.tp_degree=16 --set prefill.pp_degree=2 "
                             "--set prefill.cp_degree=2",
                         dir / "io");
  EXPECT_EQ(cp_pp.exit_code, 0) << cp_pp.err;
  Result cp_chips = wse_emu("check " + base + " --set prefill.cp_degree=2", dir / "io");
  EXPECT_EQ(cp_chips.exit_code, 2);
  EXPECT_THAT(cp_chips.err, HasSubstr("prefill.cp_degree"));
  EXPECT_THAT(cp_chips.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  Result cp_tokens = wse_emu("check " + base +
                                 " --set prefill.tp_degree=8 --set prefill.cp_degree=8 "
                                 "--set prompt.tokens=10",
                             dir / "io");
  EXPECT_EQ(cp_tokens.exit_code, 2);
  EXPECT_THAT(cp_tokens.err, HasSubstr("prefill.cp_degree"));
  EXPECT_THAT(cp_tokens.err, HasSubstr("dealt as 16 pieces but has 10 tokens"));
  Result cp_serving = wse_emu("check " + std::string(WSE_SOURCE_DIR) +
                                  "/configs/experiments/trainium_only.yaml --set prefill.cp_degree=2",
                              dir / "io");
  EXPECT_EQ(cp_serving.exit_code, 2);
  EXPECT_THAT(cp_serving.err, HasSubstr("prefill.cp_degree"));
  fs::remove_all(dir);
}

TEST(TrainiumDecodeSplit, DecodeInstancesRunTheirOwnSplit) {
  // trainium_disaggregated with the decode instance split TP 8 x LNC 2 (2 chips) x PP 8:
  // the 16 chips of the trn2.48xlarge, each stage 10 of the 80 layers (about 17.6 GB of
  // weights per stage, 8.8 GB per chip). Decode steps then run through the stages; the
  // prefill instance keeps TP 64. Every decode step is at least its floor.
  const fs::path dir = temp_path("wse_trainium_decode_split");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  const std::string base = std::string(WSE_SOURCE_DIR) + "/configs/experiments/trainium_disaggregated.yaml";
  Result r = wse_emu("run " + base + " --quiet --out '" + (dir / "split").string() +
                         "' --set workload.trace.limit=2 --set trainium_decode.tp_degree=8 "
                         "--set trainium_decode.pp_degree=8 --set trainium_decode.microbatches=2",
                     dir / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Result d = wse_emu(
      "run " + base + " --quiet --out '" + (dir / "default").string() + "' --set workload.trace.limit=2",
      dir / "io");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const auto split = nlohmann::json::parse(slurp(dir / "split" / "summary.json"));
  const auto def = nlohmann::json::parse(slurp(dir / "default" / "summary.json"));
  const auto f = split["trainium"]["floor"]["decode_step"];
  ASSERT_TRUE(f.is_object()) << split.dump(2);
  EXPECT_GT(f["passes"].get<double>(), 0.0);
  EXPECT_GE(f["simulated_s"].get<double>(), f["step_s"].get<double>());
  EXPECT_GE(f["ratio"].get<double>(), 1.0);
  // The prefill passes are the same; the decode steps are not.
  EXPECT_DOUBLE_EQ(split["trainium"]["floor"]["prefill_pass"]["simulated_s"].get<double>(),
                   def["trainium"]["floor"]["prefill_pass"]["simulated_s"].get<double>());
  EXPECT_NE(f["simulated_s"].get<double>(),
            def["trainium"]["floor"]["decode_step"]["simulated_s"].get<double>());
  // The resolved configuration keeps the split, so that it runs again.
  EXPECT_THAT(slurp(dir / "split" / "config.resolved.yaml"), HasSubstr("trainium_decode:"));
  fs::remove_all(dir);
}

TEST(TrainiumDecodeSplit, StepsInFlightAndTheDrainedAblation) {
  // Mode trainium_decode, Llama-3.1-70B cut to 2 layers, TP 8 x LNC 2 (2 chips) x PP 2, 4
  // sequences in 2 microbatches. Both schedules run the same groups through the same
  // stages, so their first step (fill_s) is the same; overlapped, a group enters stage 0 of
  // its next step while the other is in stage 1, so its time per step is at most the
  // drained one's (pipeline_op_test.cpp derives both by hand).
  const fs::path dir = temp_path("wse_trainium_decode_schedule");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  const std::string base =
      std::string(WSE_SOURCE_DIR) + "/configs/experiments/trainium_latency/llama70b_trn2_decode.yaml";
  const std::string split =
      " --set model.num_hidden_layers=2 --set batch.sequences=4 --set trainium_decode.tp_degree=8 "
      "--set trainium_decode.pp_degree=2 --set trainium_decode.microbatches=2";
  Result o = wse_emu("run " + base + " --quiet --out '" + (dir / "o").string() + "'" + split, dir / "io");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  Result d = wse_emu("run " + base + " --quiet --out '" + (dir / "d").string() + "'" + split +
                         " --set trainium_decode.schedule=drained",
                     dir / "io");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const auto so = nlohmann::json::parse(slurp(dir / "o" / "summary.json"));
  const auto sd = nlohmann::json::parse(slurp(dir / "d" / "summary.json"));
  const auto to = so["trainium_decode"], td = sd["trainium_decode"];
  EXPECT_EQ(to["schedule"], "overlapped");
  EXPECT_EQ(td["schedule"], "drained");
  EXPECT_DOUBLE_EQ(to["fill_s"].get<double>(), td["fill_s"].get<double>());
  EXPECT_LT(to["itl_s"].get<double>(), td["itl_s"].get<double>());
  EXPECT_GT(to["token_return_s"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(to["tokens_per_s"].get<double>(), 4.0 / to["itl_s"].get<double>());
  // The floor is the step's under either schedule, and neither beats it.
  const auto fo = so["trainium"]["floor"]["decode_step"], fd = sd["trainium"]["floor"]["decode_step"];
  EXPECT_DOUBLE_EQ(fo["step_s"].get<double>(), fd["step_s"].get<double>());
  EXPECT_GE(fo["ratio"].get<double>(), 1.0);
  EXPECT_GE(fd["ratio"].get<double>(), fo["ratio"].get<double>());
  // An unknown schedule is one error at its key.
  Result bad = wse_emu("check " + base + " --set trainium_decode.schedule=eager", dir / "io");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("trainium_decode.schedule"));
  fs::remove_all(dir);
}

TEST(TrainiumDecodeSplit, ServingStepsKeepThePipelineFull) {
  // trainium_disaggregated with TP 8 x PP 8 decode instances and 2 microbatches, under both
  // schedules. The prefill side is the same; a decode step that follows the previous one
  // without a gap takes the steady-state time per step, which overlapped is below the
  // drained one, so the decode steps' mean time falls; both stay at or above the floor.
  const fs::path dir = temp_path("wse_trainium_decode_serving_schedule");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  const std::string base = std::string(WSE_SOURCE_DIR) + "/configs/experiments/trainium_disaggregated.yaml";
  // 8 requests: steps of two or more sequences, two groups in flight (with one sequence a
  // step has one group and both schedules are the same).
  const std::string split =
      "' --set workload.trace.limit=8 --set trainium_decode.tp_degree=8 "
      "--set trainium_decode.pp_degree=8 --set trainium_decode.microbatches=2";
  Result o = wse_emu("run " + base + " --quiet --out '" + (dir / "o").string() + split, dir / "io");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  Result d = wse_emu("run " + base + " --quiet --out '" + (dir / "d").string() + split +
                         " --set trainium_decode.schedule=drained",
                     dir / "io");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const auto fo = nlohmann::json::parse(slurp(dir / "o" / "summary.json"))["trainium"]["floor"];
  const auto fd = nlohmann::json::parse(slurp(dir / "d" / "summary.json"))["trainium"]["floor"];
  EXPECT_DOUBLE_EQ(fo["prefill_pass"]["simulated_s"].get<double>(),
                   fd["prefill_pass"]["simulated_s"].get<double>());
  const auto so = fo["decode_step"], sd = fd["decode_step"];
  EXPECT_LT(so["simulated_s"].get<double>(), sd["simulated_s"].get<double>());  // means per step
  EXPECT_GE(so["ratio"].get<double>(), 1.0);
  EXPECT_GE(sd["ratio"].get<double>(), 1.0);
  fs::remove_all(dir);
}

TEST(TrainiumDecodeSplit, ASplitThatDoesNotFitIsOneErrorAtItsKey) {
  const fs::path dir = temp_path("wse_trainium_decode_bad");
  fs::remove_all(dir);
  fs::create_directories(dir / "io");
  const std::string dis = std::string(WSE_SOURCE_DIR) + "/configs/experiments/trainium_disaggregated.yaml";
  // TP 64 x LNC 2 is the 16 chips: two stages need 32.
  Result chips = wse_emu("check " + dis + " --set trainium_decode.pp_degree=2", dir / "io");
  EXPECT_EQ(chips.exit_code, 2);
  EXPECT_THAT(chips.err, HasSubstr("trainium_decode.pp_degree"));
  EXPECT_THAT(chips.err, HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  // TP 4 x LNC 2 is one chip: Llama-3.1-70B's 141,107,412,992 B of weights against
  // 103,079,215,104 B of HBM, 38,028,197,888 B short.
  Result hbm = wse_emu("check " + dis + " --set trainium_decode.tp_degree=4", dir / "io");
  EXPECT_EQ(hbm.exit_code, 2);
  EXPECT_THAT(hbm.err, HasSubstr("trainium_decode.tp_degree"));
  EXPECT_THAT(hbm.err,
              HasSubstr("holds per chip 141107412992 B of weights but a chip's HBM holds 103079215104 B "
                        "(38028197888 B short"));
  // A colocated instance holds one layout of the weights: the prefill's.
  Result colocated = wse_emu("check " + std::string(WSE_SOURCE_DIR) +
                                 "/configs/experiments/trainium_only.yaml --set trainium_decode.tp_degree=32",
                             dir / "io");
  EXPECT_EQ(colocated.exit_code, 2);
  EXPECT_THAT(colocated.err, HasSubstr("trainium_decode.tp_degree"));
  EXPECT_THAT(colocated.err, HasSubstr("needs mode trainium_disaggregated"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wse::testing
