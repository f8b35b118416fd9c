// Pipeline parallelism (pipeline_op.h): the layer split, the pipeline's end by hand, and a
// TP x PP split of a small model derived from its parts.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "neuroncore/transformer/pipeline_op.h"
#include "systemc_models/config/config.h"
#include "tests/neuroncore/transformer/op_test_util.h"
#include "util/systemc_test.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

workloads::TransformerModel load_model(const std::string& file,
                                       const std::vector<std::string>& overrides = {}) {
  auto doc =
      config::parse("model:\n  include: " + testing::source_path("workloads/data/models/" + file) + "\n",
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

TEST(PipelineOp, StageEndsBehindEarlierWorkByHand) {
  // A serving batch of 2 chunks (4 and 3 us per stage, 1 us across) into 2 stages that are
  // still busy with an earlier batch: stage 0 free at 2 us, stage 1 at 9 us.
  //   chunk 0: stage 0 [2,6], across [6,7], stage 1 waits for 9: [9,12]
  //   chunk 1: stage 0 [6,10], across [10,11], stage 1 [12,15]
  //   -> the last chunk ends stage 0 at 10 (the machine's next batch may enter then) and
  //      stage 1 at 15 (the batch's end).
  constexpr std::uint64_t us = 1'000'000;
  EXPECT_EQ(pipeline_stage_ends({{4 * us, 3 * us}, {4 * us, 3 * us}}, {us, us}, {2 * us, 9 * us}),
            (std::vector<std::uint64_t>{10 * us, 15 * us}));
  // From empty stages the last stage's end is the makespan.
  EXPECT_EQ(pipeline_stage_ends({{4 * us, 3 * us}, {4 * us, 3 * us}, {4 * us, 3 * us}}, {us, us, us}, {0, 0}),
            (std::vector<std::uint64_t>{12 * us, 16 * us}));
  // No chunk: the stages as they were.
  EXPECT_EQ(pipeline_stage_ends({}, {}, {5, 7}), (std::vector<std::uint64_t>{5, 7}));
}

TEST(PipelineOp, DecodeStepsInFlightByHand) {
  // 2 stages x 2 microbatches (groups a and b) with given stage times, in us: a0 = b0 = 4,
  // a1 = b1 = 3; 1 us across the boundary (x) and 1 us for a group's tokens back from
  // stage 1 to stage 0 (r).
  //   step 0 (the fill): a: s0 [0,4] s1 [5,8]; b: s0 [4,8] s1 [9,12]          -> 12
  // Overlapped, a group enters stage 0 once its tokens are back:
  //   step 1: a ready 8 + 1 = 9: s0 [9,13] s1 [14,17]; b ready 13: s0 [13,17] s1 [18,21]
  //   the state after step 1 (the stages free 4 and 0 us before the step's end, the groups'
  //   tokens 4 and 0 us before it) is step 0's, so every step repeats it: 21 - 12 = 9 us
  //   per step = a0 + x + a1 + r, the loop of one group (the stages' busy times per step
  //   are only 8 and 6).
  // Drained, step n + 1 begins when step n has ended at stage 1 (12, 24, ...):
  //   step 1: a ready max(9, 12): s0 [12,16] s1 [17,20]; b ready max(13, 12): s0 [16,20]
  //   s1 [21,24] -> 12 us per step, the fill again.
  constexpr std::uint64_t us = 1'000'000;
  const std::vector<std::vector<std::uint64_t>> t = {{4 * us, 3 * us}, {4 * us, 3 * us}};
  const DecodeSteps o = decode_steps(t, {us, us}, {us, us}, false);
  EXPECT_EQ(o.fill_ps, 12 * us);
  EXPECT_EQ(o.step_ps, 9 * us);
  EXPECT_EQ(o.steps_to_periodic, 2u);
  const DecodeSteps d = decode_steps(t, {us, us}, {us, us}, true);
  EXPECT_EQ(d.fill_ps, 12 * us);
  EXPECT_EQ(d.step_ps, 12 * us);
  // Stage 1 the slower (a0 = b0 = 2, a1 = b1 = 5 us), nothing across:
  //   step 0: a: [0,2] [2,7]; b: [2,4] [7,12]                                   -> 12
  //   step 1: a ready 7: s0 [7,9], s1 waits for b: [12,17]; b ready 12: [12,14] [17,22]
  //   step 2: a ready 17: [17,19] [22,27]; b ready 22: [22,24] [27,32]
  //   -> 10 us per step, stage 1's busy time a1 + b1 (drained: 12, the fill).
  const std::vector<std::vector<std::uint64_t>> slow1 = {{2 * us, 5 * us}, {2 * us, 5 * us}};
  EXPECT_EQ(decode_steps(slow1, {0, 0}, {0, 0}, false).step_ps, 10 * us);
  EXPECT_EQ(decode_steps(slow1, {0, 0}, {0, 0}, true).step_ps, 12 * us);
  // One group: its tokens must come back before its next step either way, so both
  // schedules take a0 + x + a1 + r = 4 + 1 + 3 + 1 = 9 us per step (the fill 8).
  for (const bool drained : {false, true}) {
    const DecodeSteps one = decode_steps({{4 * us, 3 * us}}, {us}, {us}, drained);
    EXPECT_EQ(one.fill_ps, 8 * us);
    EXPECT_EQ(one.step_ps, 9 * us);
  }
  // One stage (pp 1, nothing across or back): the groups one after another, 4 + 4 us per
  // step under both schedules, the fill included.
  for (const bool drained : {false, true}) {
    const DecodeSteps pp1 = decode_steps({{4 * us}, {4 * us}}, {0, 0}, {0, 0}, drained);
    EXPECT_EQ(pp1.fill_ps, 8 * us);
    EXPECT_EQ(pp1.step_ps, 8 * us);
  }
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
  const std::uint64_t a0 = r.stage_ps[0][0], a1 = r.stage_ps[0][1], b0 = r.stage_ps[1][0],
                      b1 = r.stage_ps[1][1];
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

TEST(PipelineOp, NoSplitBeatsItsFloor) {
  // The floor of a pipelined prompt: per stage, what it must do for all chunks at its
  // chips' peaks; each term the largest over the stages.
  // Llama-3.1-8B cut to 2 layers, one 512-token prompt, TP 8 x LNC 1 (one chip per stage):
  //   compute peak of a stage: 8 cores x 128 x 128 x 2 x 2.4 GHz = 629.1456 TFLOP/s (bf16)
  //   HBM of a stage: one chip's 2.9 TB/s
  //   a layer (q, o 4,096^2; k, v 4,096 x 1,024; gate, up, down 4,096 x 14,336; two
  //   norms of 4,096) is 218,112,000 values = 436,224,000 B; stage 0 holds the embedding
  //   (the rows its 512 tokens gather, 512 x 4,096 x 2 B = 4,194,304 B, every chunk's) and
  //   layer 0, stage 1 layer 1, the final norm (8,192 B) and the LM head (128,256 x 4,096
  //   x 2 B = 1,050,673,152 B, in the last chunk only); each stage's KV cache is its
  //   layer's: 4 KiB per token (2 x 8 KV heads x 128 x 2 B) written, and read by the
  //   attention. So stage 1's
  //   hbm_s >= 1,486,905,344 B / 2.9 TB/s = 0.5127 ms, the weights counted once however
  //   many chunks pass.
  // Each term is recomputed here from the chunks' own passes (flops and collective floors
  // of the stage's timeline entries, bytes of the stage's operators), and no split beats
  // its floor: the TTFT is at least step_s.
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  const PrefillConfig tp = exact(8, 1);
  constexpr double peak = 8.0 * 128 * 128 * 2 * 2.4e9;
  constexpr double hbm = 2.9e12;
  constexpr double layer_bytes = 436'224'000.0, rows_bytes = 4'194'304.0,
                   head_bytes = 8'192.0 + 1'050'673'152.0;
  for (std::uint32_t pp : {1u, 2u}) {
    for (std::uint32_t mb : {1u, 2u, 4u}) {
      SCOPED_TRACE("pp " + std::to_string(pp) + " microbatches " + std::to_string(mb));
      TrainiumPipeline pipe(trainium2_chip(), InstanceConfig{}, tp, pp, 1, mb);
      const PipelineResult r = pipe.run(m, 512);
      TrainiumPrefill alone(trainium2_chip(), InstanceConfig{}, tp);
      std::vector<double> flops(pp, 0.0), coll(pp, 0.0), weights(pp, 0.0), rows(pp, 0.0), kv(pp, 0.0);
      for (std::uint32_t c = 0; c < mb; ++c) {
        const std::uint64_t t = 512 / mb;
        const workloads::OperatorGraph g = workloads::lower_prefill(m, {t}, {c * t}, {512});
        const PrefillResult p = alone.run(g);
        // Stage of an entry: layers by stage_of_layer, the parts before with stage 0, after
        // with the last.
        bool after = false;
        for (const LayerTime& lt : p.layers) {
          if (lt.layer >= 0) after = true;
          const std::uint32_t s = lt.layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(lt.layer), 2, pp)
                                  : after       ? pp - 1
                                                : 0;
          for (const OperatorTime& ot : lt.operators) {
            flops[s] += static_cast<double>(ot.busy.flops);
            coll[s] += ot.busy.collective_floor_ps * 1e-12;
          }
        }
        after = false;
        std::vector<double> chunk_weights(pp, 0.0);
        for (const workloads::Operator& op : g.ops) {
          if (op.layer >= 0) after = true;
          const std::uint32_t s = op.layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(op.layer), 2, pp)
                                  : after       ? pp - 1
                                                : 0;
          // The weights of a stage's operators (the largest over the chunks: only the last
          // has the LM head) plus every chunk's gathered embedding rows.
          if (op.kind == workloads::OpKind::embedding) {
            rows[s] += static_cast<double>(op.weight_bytes);
          } else {
            chunk_weights[s] += static_cast<double>(op.weight_bytes);
          }
          kv[s] += static_cast<double>(op.kv_read_bytes + op.kv_write_bytes);
        }
        for (std::uint32_t s = 0; s < pp; ++s) weights[s] = std::max(weights[s], chunk_weights[s]);
      }
      for (std::uint32_t s = 0; s < pp; ++s) weights[s] += rows[s];
      double compute_s = 0, hbm_s = 0, collective_s = 0;
      for (std::uint32_t s = 0; s < pp; ++s) {
        compute_s = std::max(compute_s, flops[s] / peak);
        hbm_s = std::max(hbm_s, (weights[s] + kv[s]) / hbm);
        collective_s = std::max(collective_s, coll[s]);
        // The stage's weights as derived above.
        const double want = pp == 1  ? rows_bytes + 2 * layer_bytes + head_bytes
                            : s == 0 ? rows_bytes + layer_bytes
                                     : layer_bytes + head_bytes;
        EXPECT_DOUBLE_EQ(weights[s], want) << "stage " << s;
      }
      EXPECT_NEAR(r.floor.compute_s, compute_s, 1e-9 * compute_s);
      EXPECT_NEAR(r.floor.hbm_s, hbm_s, 1e-9 * hbm_s);
      EXPECT_NEAR(r.floor.collective_s, collective_s, 1e-9 * collective_s + 1e-15);
      EXPECT_DOUBLE_EQ(r.floor.step_s, std::max({compute_s, hbm_s, collective_s}));
      EXPECT_GE(r.floor.hbm_s,
                (pp == 1 ? rows_bytes + 2 * layer_bytes + head_bytes : layer_bytes + head_bytes) / hbm);
      EXPECT_GE(r.seconds(), r.floor.step_s);
      // Every stage's work over the chunks is at least its own terms.
      for (std::uint32_t s = 0; s < pp; ++s) {
        std::uint64_t busy = 0;
        for (const auto& c : r.stage_ps) busy += c[s];
        EXPECT_GE(static_cast<double>(busy) * 1e-12, flops[s] / peak);
        EXPECT_GE(static_cast<double>(busy) * 1e-12, (weights[s] + kv[s]) / hbm);
        EXPECT_GE(static_cast<double>(busy) * 1e-12, coll[s]);
      }
      // One stage, one chunk: the floor of the pass itself.
      if (pp == 1 && mb == 1) {
        const PrefillResult whole = alone.run(workloads::lower_prefill(m, {512}));
        EXPECT_NEAR(r.floor.compute_s, whole.floor.compute_s, 1e-9 * whole.floor.compute_s);
        EXPECT_NEAR(r.floor.hbm_s, whole.floor.hbm_s, 1e-9 * whole.floor.hbm_s);
        EXPECT_NEAR(r.floor.step_s, whole.floor.step_s, 1e-9 * whole.floor.step_s);
      }
    }
  }
}

TEST(PipelineOp, DecodeStepOfATpTimesPpSplitByHand) {
  // Llama-3.1-8B cut to 2 layers (hidden 4,096), a decode step of 4 sequences with 1,000,
  // 700, 900 and 800 cached tokens, TP 8 x LNC 1 (one chip per stage) x PP 2, 2
  // microbatches. Longest first the sequences are 1,000, 900, 800, 700: group a = {1,000,
  // 900}, group b = {800, 700}. Each group's stage times are its decode pass on one TP
  // group (stage 0: the embedding and layer 0; stage 1: layer 1, the final norm, the LM
  // head, the logits' sampling), and across the boundary go 2 rows x 4,096 x 2 B = 16 KiB
  // (the two-chip exchange: all-gather of 32 KiB on 2 chips), x. By the recurrence:
  //   step = max(a0 + b0 + x, a0 + x + a1) + b1
  // One stage (PP 1) would take a0 + a1 + b0 + b1 for the same groups, or the pass of all
  // four at once with one microbatch.
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  const PrefillConfig tp = exact(8, 1);
  TrainiumPipeline split(trainium2_chip(), InstanceConfig{}, tp, 2, 1, 2);
  const PipelineResult r = split.decode_step(m, {1000, 700, 900, 800});
  PrefillConfig drained_cfg = tp;
  drained_cfg.decode_schedule = DecodeSchedule::kDrained;
  TrainiumPipeline drained(trainium2_chip(), InstanceConfig{}, drained_cfg, 2, 1, 2);
  const PipelineResult dr = drained.decode_step(m, {1000, 700, 900, 800});
  ASSERT_EQ(r.stage_ps.size(), 2u);
  EXPECT_EQ(r.chips, 2u);
  TrainiumPrefill alone(trainium2_chip(), InstanceConfig{}, tp);
  const PrefillResult pa = alone.run(workloads::lower_decode(m, {1000, 900}));
  const PrefillResult pb = alone.run(workloads::lower_decode(m, {800, 700}));
  const std::uint64_t a0 = r.stage_ps[0][0], a1 = r.stage_ps[0][1], b0 = r.stage_ps[1][0],
                      b1 = r.stage_ps[1][1];
  EXPECT_EQ(a0 + a1, pa.total_ps);
  EXPECT_EQ(b0 + b1, pb.total_ps);
  EXPECT_EQ(a0, pa.layers[1].end_ps);  // the embedding, then layer 0
  InstanceConfig pair;
  pair.chips_x = 2;
  pair.chips_y = 1;
  const std::uint64_t x = run_collective(pair, Collective::kAllGather, 2 * 2 * 4096 * 2).time_ps;
  EXPECT_EQ(r.transfer_ps[0], x);
  EXPECT_EQ(r.transfer_ps[1], x);
  // The first step, from empty stages, by the recurrence above.
  EXPECT_EQ(r.fill_ps, std::max(a0 + b0 + x, a0 + x + a1) + b1);
  EXPECT_EQ(dr.fill_ps, r.fill_ps);
  // Each group's 2 sampled tokens go back from stage 1 to stage 0: the two-chip exchange
  // of 2 x 4 B (all-gather of 16 B on 2 chips), r.
  const std::uint64_t back = run_collective(pair, Collective::kAllGather, 2 * 2 * 4).time_ps;
  ASSERT_EQ(r.return_ps.size(), 2u);
  EXPECT_EQ(r.return_ps[0], back);
  EXPECT_EQ(r.return_ps[1], back);
  // Overlapped steps (the default): each group's loop a0 + x + a1 + r (b's alike) against
  // each stage's busy time per step a0 + b0, a1 + b1, the largest (with two groups of two
  // stages no other cycle of the schedule is longer: a cycle through both groups is at
  // most the mean of their loops).
  EXPECT_EQ(r.total_ps, std::max({a0 + b0, a1 + b1, a0 + x + a1 + back, b0 + x + b1 + back}));
  // Drained: step n + 1 begins at the end E of step n; group a's tokens are back before E
  // (they left stage 1 before b1 began, and r < b1), group b's at E + r, so the step is
  // the fill with b ready at r: max(a0 + b0 + x, r + b0 + x, a0 + x + a1) + b1.
  ASSERT_LT(back, b1);
  EXPECT_EQ(dr.total_ps, std::max({a0 + b0 + x, back + b0 + x, a0 + x + a1}) + b1);
  EXPECT_LE(r.total_ps, dr.total_ps);
  EXPECT_GE(r.seconds(), r.floor.step_s);
  // Its floor: stage 1's weights (layer 1, the final norm, the LM head: 436,224,000 +
  // 8,192 + 1,050,673,152 B, the gathered embedding rows being stage 0's) over one chip's
  // 2.9 TB/s are the least HBM time, read once for both groups.
  EXPECT_GE(r.floor.hbm_s, (436'224'000.0 + 8'192 + 1'050'673'152.0) / 2.9e12);
  EXPECT_LT(r.floor.hbm_s, (436'224'000.0 + 8'192 + 1'050'673'152.0) / 2.9e12 * 1.01);

  // Two replicas of TP 8 (DP 2, PP 1): replica 0 takes 1,000 and 800, replica 1 900 and
  // 700; the step is the slower replica's pass.
  TrainiumPipeline dp(trainium2_chip(), InstanceConfig{}, tp, 1, 2, 1);
  const PipelineResult d = dp.decode_step(m, {1000, 700, 900, 800});
  const PrefillResult r0 = alone.run(workloads::lower_decode(m, {1000, 800}));
  const PrefillResult r1 = alone.run(workloads::lower_decode(m, {900, 700}));
  EXPECT_EQ(d.total_ps, std::max(r0.total_ps, r1.total_ps));
  EXPECT_EQ(d.chips, 2u);
  EXPECT_DOUBLE_EQ(d.floor.step_s, std::max(r0.floor.step_s, r1.floor.step_s));
  EXPECT_EQ(d.busy.flops, r0.busy.flops + r1.busy.flops);

  // What the split leaves for the KV cache: stage 0 holds the embedding table
  // (1,050,673,152 B) and layer 0 (436,224,000 B), stage 1 1,486,905,344 B (above); each
  // stage's chip has 96 GiB = 103,079,215,104 B, and its room holds its one layer's half
  // of the cache: 2 x (103,079,215,104 - 1,486,905,344) = 203,184,619,520 B, the least.
  const TrainiumPipeline::DecodeCapacity c = split.decode_capacity(m);
  EXPECT_EQ(c.weight_bytes_per_chip, 1'486'905'344u);
  EXPECT_EQ(c.replica_kv_bytes, 203'184'619'520u);
  // One group of TP 8 on one chip: its HBM less all the weights, 103,079,215,104 -
  // 2,973,802,496 B.
  const TrainiumPipeline one(trainium2_chip(), InstanceConfig{}, tp, 1, 1, 1);
  EXPECT_EQ(one.decode_capacity(m).replica_kv_bytes, 103'079'215'104u - 2'973'802'496u);
}

TEST(PipelineOp, RingAttentionByHand) {
  // A layer's attention of 10 us on a group of a 4-group ring runs as 4 steps of 2.5 us
  // (the last the rest); the 3 steps after the first each wait for a KV block from the
  // neighbour. Blocks of 4 us: 3 x (4 - 2.5) = 4.5 us beyond the attention (3 x 4 + 2.5 =
  // 14.5 us in all). Blocks of 2 us arrive while the step before computes: nothing
  // exposed. One group: no ring.
  constexpr std::uint64_t us = 1'000'000;
  EXPECT_EQ(ring_attention_exposed_ps(10 * us, 4 * us, 4), 4'500'000u);
  EXPECT_EQ(ring_attention_exposed_ps(10 * us, 2 * us, 4), 0u);
  EXPECT_EQ(ring_attention_exposed_ps(10 * us, 2'500'000, 4), 0u);
  EXPECT_EQ(ring_attention_exposed_ps(10 * us, 100 * us, 1), 0u);
  // 2 groups: one step after the first, 6 - 10 / 2 = 1 us.
  EXPECT_EQ(ring_attention_exposed_ps(10 * us, 6 * us, 2), us);
}

// A context-parallel prefill over its groups, each group's pass by TrainiumPrefill: the
// slowest group's time before the layers and after them, and per layer the slowest
// group's layer time plus its ring attention's exposed steps (ring step x, 2 groups).
// add() takes one group's pass; every layer must hold attention.
struct RingParts {
  std::uint64_t before = 0, after = 0;
  std::vector<std::uint64_t> layer;
  void add(const PrefillResult& p, std::uint64_t x) {
    bool past = false;
    std::size_t l = 0;
    std::uint64_t b = 0, a = 0;  // this group's
    for (const LayerTime& lt : p.layers) {
      const std::uint64_t t = lt.end_ps - lt.start_ps;
      if (lt.layer < 0) {
        (past ? a : b) += t;
        continue;
      }
      past = true;
      std::uint64_t attention = 0;
      for (const OperatorTime& ot : lt.operators) {
        if (ot.kind == "attention") attention += ot.busy.elapsed_ps;
      }
      EXPECT_GT(attention, 0u);
      if (layer.size() <= l) layer.push_back(0);
      layer[l] = std::max(layer[l], t + ring_attention_exposed_ps(attention, x, 2));
      ++l;
    }
    before = std::max(before, b);
    after = std::max(after, a);
  }
};

TEST(PipelineOp, ContextParallelPrefillOfASmallModel) {
  // Llama-3.1-8B cut to 2 layers (8 KV heads of 128, bf16: 4,096 B of KV per token per
  // layer), a 512-token prompt, TP 8 x LNC 1 (one chip per group) x CP 2: 4 pieces of 128
  // tokens, group 0 pieces 0 (tokens 0-127) and 3 (384-511), group 1 pieces 1 and 2
  // (128-383). Each group's pass is TrainiumPrefill on one chip of its two pieces, each
  // attending to every key before it. A ring step carries a group's block of one layer,
  // 256 tokens x 4,096 B = 1 MiB (one chip holds all 8 KV heads), to the other chip: the
  // two-chip exchange (all-gather of 2 MiB on 2 chips), x. Per layer l, group r's time is
  // its layer time plus ring_attention_exposed(its attention, x, 2); the groups meet at
  // every layer:
  //   TTFT = max_r(before the layers) + sum_l max_r(layer + exposed) + max_r(after)
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  PrefillConfig cfg = exact(8, 1);
  cfg.cp_degree = 2;
  TrainiumPipeline cp(trainium2_chip(), InstanceConfig{}, cfg, 1, 1, 1);
  EXPECT_EQ(cp.chips(), 2u);
  const PipelineResult r = cp.run(m, 512);
  EXPECT_EQ(r.chips, 2u);
  EXPECT_EQ(r.cp, 2u);
  TrainiumPrefill alone(trainium2_chip(), InstanceConfig{}, exact(8, 1));
  const PrefillResult g0 = alone.run(workloads::lower_prefill(m, {128, 128}, {0, 384}, {512, 512}));
  const PrefillResult g1 = alone.run(workloads::lower_prefill(m, {128, 128}, {128, 256}, {512, 512}));
  ASSERT_EQ(r.rank_ps.size(), 2u);
  EXPECT_EQ(r.rank_ps[0], g0.total_ps);
  EXPECT_EQ(r.rank_ps[1], g1.total_ps);
  InstanceConfig pair;
  pair.chips_x = 2;
  pair.chips_y = 1;
  const std::uint64_t x = run_collective(pair, Collective::kAllGather, 2 * 256 * 4096).time_ps;
  EXPECT_EQ(r.ring_step_ps, x);
  RingParts whole;
  whole.add(g0, x);
  whole.add(g1, x);
  ASSERT_EQ(whole.layer.size(), 2u);
  EXPECT_EQ(r.total_ps, whole.before + whole.layer[0] + whole.layer[1] + whole.after);
  // Each group's floor at its chip's peaks; the prompt's is the larger, term by term, and
  // the TTFT does not beat it.
  EXPECT_DOUBLE_EQ(r.floor.compute_s, std::max(g0.floor.compute_s, g1.floor.compute_s));
  EXPECT_DOUBLE_EQ(r.floor.hbm_s, std::max(g0.floor.hbm_s, g1.floor.hbm_s));
  EXPECT_GE(r.seconds(), r.floor.step_s);
  // Its groups' chips count (cp with pp: ContextParallelWithinPipelineStagesByHand).
  PrefillConfig wide = exact(64, 2);
  wide.cp_degree = 2;
  try {
    (void)TrainiumPipeline(trainium2_chip(), InstanceConfig{}, wide, 1, 1, 1);
    FAIL() << "32 chips accepted on a 16-chip instance";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(),
                ::testing::HasSubstr("x cp_degree 2 x dp 1 needs 32 chips but the instance has 16"));
  }
}

TEST(PipelineOp, ContextParallelWithinPipelineStagesByHand) {
  // The model and prompt of ContextParallelPrefillOfASmallModel (Llama-3.1-8B cut to 2
  // layers, 512 tokens, TP 8 x LNC 1, CP 2), now with PP 2: each stage (one layer) runs its
  // layer over its 2 context-parallel groups, chips = 1 x pp 2 x cp 2 = 4. One microbatch:
  // the groups' passes g0 (pieces 0-127, 384-511) and g1 (128-383) as there, per layer
  // L_l = max_r(layer time + ring exposed) with the ring step x (1 MiB blocks), and
  //   stage 0 = max_r(before the layers) + L_0,  stage 1 = L_1 + max_r(after)
  // a group's activations crossing to its counterpart in stage 1: 256 tokens x 4,096 x 2 B
  // = 2 MiB, the two-chip exchange xb;
  //   TTFT = stage 0 + xb + stage 1.
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  PrefillConfig cfg = exact(8, 1);
  cfg.cp_degree = 2;
  TrainiumPipeline cp(trainium2_chip(), InstanceConfig{}, cfg, 2, 1, 1);
  EXPECT_EQ(cp.chips(), 4u);
  const PipelineResult r = cp.run(m, 512);
  EXPECT_EQ(r.chips, 4u);
  TrainiumPrefill alone(trainium2_chip(), InstanceConfig{}, exact(8, 1));
  InstanceConfig pair;
  pair.chips_x = 2;
  pair.chips_y = 1;
  const std::uint64_t x = run_collective(pair, Collective::kAllGather, 2 * 256 * 4096).time_ps;
  RingParts whole;
  whole.add(alone.run(workloads::lower_prefill(m, {128, 128}, {0, 384}, {512, 512})), x);
  whole.add(alone.run(workloads::lower_prefill(m, {128, 128}, {128, 256}, {512, 512})), x);
  ASSERT_EQ(whole.layer.size(), 2u);
  const std::uint64_t xb = run_collective(pair, Collective::kAllGather, 2 * 256 * 4096 * 2).time_ps;
  ASSERT_EQ(r.stage_ps.size(), 1u);
  EXPECT_EQ(r.stage_ps[0][0], whole.before + whole.layer[0]);
  EXPECT_EQ(r.stage_ps[0][1], whole.layer[1] + whole.after);
  EXPECT_EQ(r.transfer_ps[0], xb);
  EXPECT_EQ(r.total_ps, whole.before + whole.layer[0] + xb + whole.layer[1] + whole.after);
  EXPECT_GE(r.seconds(), r.floor.step_s);
  EXPECT_GT(r.floor.compute_s, 0.0);
  // Two microbatches: chunk 0 (tokens 0-255) in 4 pieces of 64, group 0 {0-63, 192-255},
  // group 1 {64-191}, a 128-token ring block (512 KiB) x0, no logits (its prompt ends at
  // 512); chunk 1 (256-511) likewise at its offsets, with the logits. Each chunk's stage
  // times as above, the chunks through the stages by the recurrence:
  //   TTFT = max(c0_0 + c1_0 + xb', c0_0 + xb' + c0_1) + c1_1   (xb' the 1 MiB boundary)
  TrainiumPipeline cp2(trainium2_chip(), InstanceConfig{}, cfg, 2, 1, 2);
  const PipelineResult r2 = cp2.run(m, 512);
  const std::uint64_t x0 = run_collective(pair, Collective::kAllGather, 2 * 128 * 4096).time_ps;
  RingParts c0, c1;
  c0.add(alone.run(workloads::lower_prefill(m, {64, 64}, {0, 192}, {512, 512})), x0);
  c0.add(alone.run(workloads::lower_prefill(m, {64, 64}, {64, 128}, {512, 512})), x0);
  c1.add(alone.run(workloads::lower_prefill(m, {64, 64}, {256, 448}, {512, 512})), x0);
  c1.add(alone.run(workloads::lower_prefill(m, {64, 64}, {320, 384}, {512, 512})), x0);
  const std::uint64_t xb2 = run_collective(pair, Collective::kAllGather, 2 * 128 * 4096 * 2).time_ps;
  const std::uint64_t c00 = c0.before + c0.layer[0], c01 = c0.layer[1] + c0.after;
  const std::uint64_t c10 = c1.before + c1.layer[0], c11 = c1.layer[1] + c1.after;
  ASSERT_EQ(r2.stage_ps.size(), 2u);
  EXPECT_EQ(r2.stage_ps[0], (std::vector<std::uint64_t>{c00, c01}));
  EXPECT_EQ(r2.stage_ps[1], (std::vector<std::uint64_t>{c10, c11}));
  EXPECT_EQ(r2.transfer_ps, (std::vector<std::uint64_t>{xb2, xb2}));
  EXPECT_EQ(r2.total_ps, std::max(c00 + c10 + xb2, c00 + xb2 + c01) + c11);
  EXPECT_GE(r2.seconds(), r2.floor.step_s);
  // Chips: TP 64 x LNC 2 x PP 2 x CP 2 on a 16-chip instance needs 64.
  PrefillConfig wide = exact(64, 2);
  wide.cp_degree = 2;
  try {
    (void)TrainiumPipeline(trainium2_chip(), InstanceConfig{}, wide, 2, 1, 1);
    FAIL() << "64 chips accepted on a 16-chip instance";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(),
                ::testing::HasSubstr("x pp 2 x cp_degree 2 x dp 1 needs 64 chips but the instance has 16"));
  }
}

TEST(PipelineOp, ChipsShortAndHbmShortAreNamed) {
  // TP 64 x LNC 2 is all 16 chips: two stages need 32, 16 short.
  try {
    (void)TrainiumPipeline(trainium2_chip(), InstanceConfig{}, exact(64, 2), 2, 1, 1);
    FAIL() << "32 chips accepted on a 16-chip instance";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("needs 32 chips but the instance has 16 (16 chips short)"));
  }
  // Llama-3.1-70B's 141 GB of bf16 weights do not fit one 96 GiB chip, but half of them per
  // chip of two stages do.
  const auto m = load_model("meta-llama--Meta-Llama-3.1-70B_config.json");
  EXPECT_THROW(TrainiumPipeline(trainium2_chip(), InstanceConfig{}, exact(8, 1), 1, 1, 1).run(m, 128),
               CapacityError);
  const HbmFootprint f =
      TrainiumPipeline(trainium2_chip(), InstanceConfig{}, exact(8, 1), 2, 1, 1).stage_footprint(m, 128);
  EXPECT_LT(f.total(), trainium2_chip().hbm.capacity().bytes);
  EXPECT_GT(f.weight_bytes, m.weight_bytes() / 2 * 99 / 100);
}

}  // namespace
}  // namespace wse::neuron
