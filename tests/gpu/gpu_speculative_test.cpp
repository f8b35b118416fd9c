// Speculative decoding on a GPU group (apps/experiments/gpu_machines.h, GpuMachine with a
// draft model; docs/serving.md, "Speculative decoding"): a step is the draft's k decode
// passes, one after another, then the target's verification of k + 1 tokens per request,
// each timed by the GPU pass model; the verification reads the weights once for its k + 1
// tokens, its KV per token.
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "apps/experiments/gpu_machines.h"
#include "gpu/core/gemm.h"
#include "gpu/transformer/pass.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/operators.h"
#include "workloads/model_loader.h"

namespace wse::experiments {
namespace {

// The target (Llama-3.1-8B cut to 2 layers), the draft (cut to 1) and a GPU machine
// holding both on one default group.
class GpuSpeculative : public ::testing::Test {
 protected:
  const workloads::TransformerModel target =
      workloads::load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  const workloads::TransformerModel draft =
      workloads::load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=1"});
  gpu::GpuPass runner{gpu::GpuConfig{}, gpu::NodeConfig{}, gpu::PassConfig{}};
  stats::Group group{"gpu"};
  GpuMachine machine{runner, target, group, &draft};
};

// Target: Llama-3.1-8B cut to 2 layers; draft: the same cut to 1 (hidden 4,096, 8 KV heads
// of 128: 2 x 8 x 128 x 2 B = 4,096 B of KV per token per layer; vocabulary 128,256). One
// request at 100 cached tokens, k = 3, on one p5.48xlarge group (tp 8, H100 defaults).
//
// The step: draft passes over 100, 101 and 102 cached tokens, then the target's pass of 4
// tokens at 100: each exactly the GPU pass model's time of that graph.
//
// The verification against a plain decode step of the target at the same context, from
// the lowering (workloads/model/operators.cpp) by hand:
//  - the floor's HBM bytes (weights + KV read + KV written) grow by 3 embedding rows
//    (3 x 4,096 x 2 B = 24,576 B) and per layer by the KV of 3 more tokens written less
//    one read (the decode step reads the token it writes; the verification reads the 100
//    cached and writes its 4): 2 x (3 - 1) x 4,096 = 16,384 B; 40,960 B in all, over 8
//    GPUs at the HBM peak. The weights are not read again for the 3 drafted tokens.
//  - its LM head is one GEMM of M = 4 rows (K 4,096, N 128,256 / 8 = 16,032 per GPU): A
//    4 x 4,096 x 2 + C 4 x 16,032 x 2 + B 4,096 x 16,032 x 2 = 131,495,168 B through HBM,
//    120,768 B more than the step's M = 1 (131,374,400 B); its math (128 x 256 tiles: 63
//    tiles, split K in 2: 32 steps of 1,024 clocks = 17.9 us) hides under the bytes'
//    ~40 us: HBM-bound, the GEMM takes hbm.seconds(bytes).
TEST_F(GpuSpeculative, VerificationStepByHand) {
  const serving::SpeculativeTiming t = machine.speculative_step({100}, 3);

  gpu::GpuPass fresh(gpu::GpuConfig{}, gpu::NodeConfig{}, gpu::PassConfig{});
  double drafts = 0.0;
  for (std::uint64_t c : {100u, 101u, 102u}) drafts += fresh.run(workloads::lower_decode(draft, {c})).seconds;
  const gpu::GpuPassResult v = fresh.run(workloads::lower_verify(target, {100}, 3));
  const gpu::GpuPassResult d = fresh.run(workloads::lower_decode(target, {100}));
  EXPECT_DOUBLE_EQ(t.draft_s, drafts);
  EXPECT_DOUBLE_EQ(t.verify_s, v.seconds);
  // 3 draft passes and 1 verification: 4 decode passes against the floor.
  EXPECT_EQ(machine.decode_floor().passes, 4u);
  EXPECT_EQ(machine.prefill_floor().passes, 0u);

  const double peak = fresh.hbm().peak_bytes_per_s;
  EXPECT_NEAR(v.floor.hbm_s - d.floor.hbm_s, 40960.0 / 8.0 / peak, 1e-16);

  const gpu::GpuConfig h100;
  const gpu::GemmTiming head =
      gpu::best_gemm(h100, fresh.hbm(), {4, 4096, 16032}, gpu::PassConfig{}.gemm_tiles);
  const gpu::GemmTiming step_head =
      gpu::best_gemm(h100, fresh.hbm(), {1, 4096, 16032}, gpu::PassConfig{}.gemm_tiles);
  EXPECT_EQ(head.hbm_bytes, 131495168u);
  EXPECT_EQ(step_head.hbm_bytes, 131374400u);
  EXPECT_LT(head.compute_s, head.hbm_s);
  EXPECT_DOUBLE_EQ(head.seconds, fresh.hbm().seconds(131495168));
  // The verification of 4 tokens costs far less than 4 decode steps.
  EXPECT_GT(v.seconds, d.seconds);
  EXPECT_LT(v.seconds, 2.0 * d.seconds);
}

// The draft makes its prompt KV by a prefill pass of its own after the target's: the
// machine's prefill time is the two passes' sum.
TEST_F(GpuSpeculative, PrefillRunsTheDraftsPassAfterTheTargets) {
  const serving::PrefillTiming p = machine.prefill({serving::PrefillChunk{0, 300, 0}});
  gpu::GpuPass fresh(gpu::GpuConfig{}, gpu::NodeConfig{}, gpu::PassConfig{});
  const gpu::GpuPassResult a = fresh.run(workloads::lower_prefill(target, {300}, {0}));
  const gpu::GpuPassResult b = fresh.run(workloads::lower_prefill(draft, {300}, {0}));
  EXPECT_DOUBLE_EQ(p.seconds, a.seconds + b.seconds);
  ASSERT_EQ(p.layer_done_s.size(), 2u);
  EXPECT_DOUBLE_EQ(p.layer_done_s[1], a.layer_done_s[1]);
  EXPECT_EQ(machine.prefill_floor().passes, 2u);
  // Without a draft there is no speculative step.
  stats::Group other("gpu_plain");
  GpuMachine plain(runner, target, other);
  EXPECT_THROW(plain.speculative_step({100}, 3), std::logic_error);
}

}  // namespace
}  // namespace wse::experiments
