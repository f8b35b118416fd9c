// Pipeline parallelism (pipeline_op.h): the layer split, the pipeline's end by hand, and a
// TP x PP split of a small model derived from its parts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "neuroncore/transformer/pipeline_op.h"
#include "systemc_models/config/config.h"
#include "util/systemc_test.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

workloads::TransformerModel load_model(const std::string& file, const std::vector<std::string>& overrides = {}) {
  auto doc = config::parse("model:\n  include: " + testing::source_path("workloads/data/models/" + file) + "\n",
                           "model.yaml", overrides);
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  workloads::TransformerModel t = workloads::read_transformer(m);
  doc.finish();
  return t;
}

TEST(PipelineOp, LayersSplitIntoContiguousStages) {
  // 10 layers over 4 stages: 3, 3, 2, 2 layers.
  const std::vector<std::uint32_t> want = {0, 0, 0, 1, 1, 1, 2, 2, 3, 3};
  for (std::uint32_t l = 0; l < 10; ++l) EXPECT_EQ(stage_of_layer(l, 10, 4), want[l]) << l;
  for (std::uint32_t l = 0; l < 80; ++l) EXPECT_EQ(stage_of_layer(l, 80, 1), 0u);
}

TEST(PipelineOp, MakespanByHand) {
  // 2 stages of 4 and 3 us per chunk, 1 us across the boundary, 3 chunks:
  //   chunk 0: stage 0 [0,4], across [4,5], stage 1 [5,8]
  //   chunk 1: stage 0 [4,8], across [8,9], stage 1 [9,12]
  //   chunk 2: stage 0 [8,12], across [12,13], stage 1 [13,16]
  //   -> 16 us (one stage doing both: 3 x 7 = 21 us).
  constexpr std::uint64_t us = 1'000'000;
  EXPECT_EQ(pipeline_makespan({{4 * us, 3 * us}, {4 * us, 3 * us}, {4 * us, 3 * us}}, {us, us, us}), 16 * us);
  // Stage 1 the slower (2 and 5 us), no transfer: chunk 1's stage 1 waits for chunk 0's:
  //   [0,2] [2,7]; [2,4] [7,12] -> 12 us.
  EXPECT_EQ(pipeline_makespan({{2 * us, 5 * us}, {2 * us, 5 * us}}, {0, 0}), 12 * us);
  EXPECT_EQ(pipeline_makespan({{7 * us}}, {0}), 7 * us);  // one stage, one chunk
}

TEST(PipelineOp, TpTimesPpSplitOfASmallModel) {
  // Llama-3.1-8B cut to 2 layers (hidden 4,096), one 512-token prompt, TP 8 x LNC 1 (one
  // chip per stage) x PP 2 (2 chips), 2 microbatches of 256 tokens (a: 0-255, b: 256-511).
  // Stage 0 holds the embedding and layer 0, stage 1 layer 1, the final norm and the LM
  // head. Each stage's time on a chunk is that chunk's TP pass (TrainiumPrefill on one
  // chip) over the stage's timeline entries, so a0 + a1 is chunk a's pass alone. Across a
  // boundary go 256 x 4,096 x 2 B = 2 MiB: the two-chip exchange of the NeuronLink model
  // (all-gather of 4 MiB on 2 chips, 2 MiB each way), x. By the recurrence:
  //   end = max(a0 + b0 + x, a0 + x + a1) + b1
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  const PrefillConfig tp = exact(8, 1);
  TrainiumPipeline pp(trainium2_chip(), InstanceConfig{}, tp, 2, 1, 2);
  const PipelineResult r = pp.run(m, 512);
  ASSERT_EQ(r.stage_ps.size(), 2u);
  EXPECT_EQ(r.chips, 2u);
  TrainiumPrefill alone(trainium2_chip(), InstanceConfig{}, tp);
  const PrefillResult pa = alone.run(workloads::lower_prefill(m, {256}, {0}, {512}));
  const PrefillResult pb = alone.run(workloads::lower_prefill(m, {256}, {256}, {512}));
  const std::uint64_t a0 = r.stage_ps[0][0], a1 = r.stage_ps[0][1], b0 = r.stage_ps[1][0], b1 = r.stage_ps[1][1];
  EXPECT_EQ(a0 + a1, pa.total_ps);
  EXPECT_EQ(b0 + b1, pb.total_ps);
  // Stage 0 of a chunk ends with layer 0's output.
  EXPECT_EQ(a0, pa.layers[1].end_ps);
  InstanceConfig pair;
  pair.chips_x = 2;
  pair.chips_y = 1;
  const std::uint64_t x = run_collective(pair, Collective::kAllGather, 2 * 256 * 4096 * 2).time_ps;
  EXPECT_EQ(r.transfer_ps[0], x);
  EXPECT_EQ(r.total_ps, std::max(a0 + b0 + x, a0 + x + a1) + b1);
  EXPECT_EQ(r.bottleneck_ps, std::max(a0 + b0, a1 + b1));
}

TEST(PipelineOp, ChipsShortAndHbmShortAreNamed) {
  // TP 64 x LNC 2 is all 16 chips: two stages need 32, 16 short.
  try {
    TrainiumPipeline(trainium2_chip(), InstanceConfig{}, exact(64, 2), 2, 1, 1);
    FAIL() << "32 chips accepted on a 16-chip instance";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  }
  // Llama-3.1-70B's 141 GB of bf16 weights do not fit one 96 GiB chip, but half of them per
  // chip of two stages do.
  const auto m = load_model("meta-llama--Meta-Llama-3.1-70B_config.json");
  EXPECT_THROW(TrainiumPipeline(trainium2_chip(), InstanceConfig{}, exact(8, 1), 1, 1, 1).run(m, 128), CapacityError);
  const HbmFootprint f = TrainiumPipeline(trainium2_chip(), InstanceConfig{}, exact(8, 1), 2, 1, 1).stage_footprint(m, 128);
  EXPECT_LT(f.total(), trainium2_chip().hbm.capacity().bytes);
  EXPECT_GT(f.weight_bytes, m.weight_bytes() / 2 * 99 / 100);
}

}  // namespace
}  // namespace wse::neuron
