// GEMMs (gemm_op.h): the choice of the weight-streaming kernel, its matmuls by hand, and a
// row-parallel GEMM's all-reduce.
#include <gtest/gtest.h>

#include "neuroncore/transformer/gemm_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

TEST(GemmOp, WeightStreamingNeedsOneMovingPassAndHalfOfSbuf) {
  // Trainium2: max_moving 512, SBUF 24 MiB (half: 12,582,912 B), 8 PSUM banks, 128 columns.
  // At T = 512 bf16 tokens: X^T twice (2 x k x 512 x 2 B = 2,048 k) plus the C ring of 8
  // groups of 4 banks' 128 rows (8 x 4 x 128 x 512 x 2 B = 4,194,304 B) within 12,582,912 B
  // -> k <= (12,582,912 - 4,194,304) / 2,048 = 4,096.
  MappingContext ctx = context(exact());
  const GemmMapping g(ctx);
  EXPECT_TRUE(g.streams_weights(4096, 512, DType::kBf16));
  EXPECT_FALSE(g.streams_weights(4097, 512, DType::kBf16));
  EXPECT_FALSE(g.streams_weights(128, 513, DType::kBf16));  // beyond one moving pass
}

TEST(GemmOp, StreamedGemmMultipliesEveryWeightTileOnce) {
  // q_proj of 4 tokens, K = N = 1,024, one core: 8 column blocks x 8 k tiles = 64 matmuls
  // of K 128, M 128, N 4, each streaming 4 cycles at 2.4 GHz (1,667 ps) with the whole
  // array: tensor busy 64 x 1,667 ps; flops 2 x 4 x 1,024 x 1,024.
  MappingContext ctx = context(exact());
  const EngineBusy b = GemmMapping(ctx).run(gemm("self_attn.q_proj", 4, 1024, 1024));
  EXPECT_EQ(b.flops, 2u * 4u * 1024u * 1024u);
  EXPECT_DOUBLE_EQ(b.tensor_ps, 64 * 1667.0);
  EXPECT_EQ(b.chip_runs, 1u);  // column-parallel: no all-reduce
}

TEST(GemmOp, RowParallelGemmAllReducesItsPartialSums) {
  // o_proj of 128 tokens, K 2,048, N 1,024 on TP 16 x LNC 1 = 2 chips of 8 cores: each core
  // multiplies K / 16 = 128 rows (flops 2 x 128 x 2,048 x 1,024 over the group), then the
  // 128 x 1,024 x 2 B partial sums are all-reduced (collective_op.h), between the chips as
  // the 2 x 1 torus's all-reduce.
  MappingContext ctx = context(exact(16));
  const EngineBusy b = GemmMapping(ctx).run(gemm("self_attn.o_proj", 128, 2048, 1024));
  EXPECT_EQ(b.flops, 2u * 128u * 2048u * 1024u);
  InstanceConfig two;
  two.chips_x = 2;
  two.chips_y = 1;
  EXPECT_DOUBLE_EQ(b.collective_ps,
                   static_cast<double>(run_collective(two, Collective::kAllReduce, 262144).time_ps));
  EXPECT_EQ(b.chip_runs, 3u);  // the GEMM, the in-chip reduce-scatter and all-gather
}

TEST(GemmOp, TokenRowsBeyondABlockRepeatItsPiece) {
  // gemm_token_block 1,024: a column-parallel GEMM of 2,048 rows is twice the 1,024-row
  // piece (one simulated, scaled).
  PrefillConfig p = exact();
  p.gemm_token_block = 1024;
  MappingContext ctx = context(p);
  GemmMapping g(ctx);
  const EngineBusy two = g.run(gemm("mlp.up_proj", 2048, 1024, 1024));
  const EngineBusy one = g.run(gemm("mlp.up_proj", 1024, 1024, 1024));
  EXPECT_EQ(two.elapsed_ps, 2 * one.elapsed_ps);
  EXPECT_EQ(two.flops, 2 * one.flops);
}

}  // namespace
}  // namespace wse::neuron
