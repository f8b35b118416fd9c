// Element-wise operators and the embedding (elementwise_op.h): engine busy times derived by
// hand from the engines' rates (Trainium2: vector 512 bf16 per cycle at 0.96 GHz, scalar
// 128 per cycle at 1.2 GHz, 64 cycles per instruction).
#include <gtest/gtest.h>

#include "neuroncore/transformer/elementwise_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;
using workloads::OpKind;

TEST(ElementwiseOp, NormIsOneVectorInstructionPerTile) {
  // One core, one tile of 128 x 2048 = 262,144 values, 4 vector passes: one instruction of
  // 1,048,576 elements = 64 + 1,048,576 / 512 = 2,112 cycles at 0.96 GHz = 2,200,000 ps.
  MappingContext ctx = context(exact());
  const EngineBusy b =
      ElementwiseMapping(ctx).run(elementwise(OpKind::norm, "input_layernorm", 262144, 4, 1));
  EXPECT_DOUBLE_EQ(b.vector_ps, 2200000.0);
  EXPECT_DOUBLE_EQ(b.scalar_ps, 0.0);
  EXPECT_DOUBLE_EQ(b.tensor_ps, 0.0);
  EXPECT_EQ(b.flops, 0u);
  EXPECT_EQ(b.chip_runs, 1u);
  // Load, compute and store in series: two DMA instruction costs (600 ns) at least.
  EXPECT_GT(b.elapsed_ps, 2200000u + 2 * 600000u);
}

TEST(ElementwiseOp, ActivationRunsItsFirstPassOnTheScalarEngine) {
  // SiLU-like: 262,144 values, 2 passes. Scalar: 64 + 262,144 / 128 = 2,112 cycles at
  // 1.2 GHz = 1,760,000 ps; vector, the other pass: 64 + 262,144 / 512 = 576 cycles at
  // 0.96 GHz = 600,000 ps.
  MappingContext ctx = context(exact());
  const EngineBusy b = ElementwiseMapping(ctx).run(elementwise(OpKind::activation, "act_fn", 262144, 2, 2));
  EXPECT_DOUBLE_EQ(b.scalar_ps, 1760000.0);
  EXPECT_DOUBLE_EQ(b.vector_ps, 600000.0);
}

TEST(ElementwiseOp, ValuesAreSplitOverTheCoresOfTheGroup) {
  // TP 8 x LNC 1: 8 cores of one chip, each 262,144 / 8 = 32,768 values of a residual add
  // (one pass): 64 + 32,768 / 512 = 128 cycles at 0.96 GHz = 133,333 ps (rounded to the ps)
  // on every core, so 133,333 ps on average.
  MappingContext ctx = context(exact(8));
  const EngineBusy b =
      ElementwiseMapping(ctx).run(elementwise(OpKind::residual_add, "residual", 262144, 1, 2));
  EXPECT_DOUBLE_EQ(b.vector_ps, 133333.0);
}

TEST(ElementwiseOp, EmbeddingIsDmaOnly) {
  workloads::Operator e;
  e.kind = OpKind::embedding;
  e.name = "embed_tokens";
  e.layer = -1;
  e.output_bytes = 128 * 8192 * 2;
  MappingContext ctx = context(exact());
  const EngineBusy b = ElementwiseMapping(ctx).run(e);
  EXPECT_DOUBLE_EQ(b.vector_ps + b.scalar_ps + b.tensor_ps, 0.0);
  EXPECT_GT(b.hbm_ps, 0.0);
}

TEST(ElementwiseOp, SampledIsExactAtASamplePoint) {
  // token_grain 128 and a pass of 256 tokens (a grid point): the operator as it is.
  PrefillConfig p = exact();
  p.token_grain = 128;
  MappingContext ctx = context(p);
  ctx.start_pass(256);
  const workloads::Operator norm = elementwise(OpKind::norm, "input_layernorm", 256 * 1024, 4, 1);
  const EngineBusy s = ElementwiseMapping(ctx).run_sampled(norm);
  MappingContext exact_ctx = context(exact());
  EXPECT_EQ(s.elapsed_ps, ElementwiseMapping(exact_ctx).run(norm).elapsed_ps);
}

}  // namespace
}  // namespace wse::neuron
