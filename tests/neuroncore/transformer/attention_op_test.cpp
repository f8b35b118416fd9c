// Prefill attention (attention_op.h): one query tile by hand, the causal mask's skipped
// blocks, and the flops the kernel issues.
#include <gtest/gtest.h>

#include "neuroncore/transformer/attention_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

TEST(AttentionOp, OneQueryTileByHand) {
  // 128 queries, 1 head of 128: one key block of 128 keys, on the diagonal (masked).
  //  tensor: QK^T (K 128, M 128, N 128) and PV (K 128 keys, M 128, N 128): each streams
  //    128 cycles at 2.4 GHz = 53,333 ps with the whole array; flops 2 x 2 x 128^3.
  //  vector: max + subtract + mask = 3 x 16,384 fp32 / 256 + 64 = 256 cycles at 0.96 GHz =
  //    266,667 ps; normalisation 16,384 / 256 + 64 = 128 cycles = 133,333 ps.
  //  scalar: exp 16,384 / 128 + 64 = 192 cycles at 1.2 GHz = 160,000 ps.
  MappingContext ctx = context(exact());
  const EngineBusy b = AttentionMapping(ctx).run(attention(128, 1, 1));
  EXPECT_DOUBLE_EQ(b.tensor_ps, 2.0 * 53333);
  EXPECT_EQ(b.flops, 8388608u);
  EXPECT_DOUBLE_EQ(b.vector_ps, 266667.0 + 133333.0);
  EXPECT_DOUBLE_EQ(b.scalar_ps, 160000.0);
}

TEST(AttentionOp, MatmulFlopsSkipTheBlocksAboveTheDiagonal) {
  // 1,024 queries in 8 tiles of 128, keys in blocks of 512: tiles 0-3 see block 0, tiles
  // 4-7 blocks 0 and 1: 12 (tile, block) pairs, each 2 x 128 x 512 x (128 + 128) flops.
  const std::uint64_t pair = 2u * 128u * 512u * 256u;
  EXPECT_EQ(attention_matmul_flops(attention(1024, 1, 1), 1, 1, 8, 128, 512), 12u * pair);
  // Two heads on TP 2 x LNC 2 (4 cores of one chip): each head's 8 tiles over its 2
  // physical cores; the chip issues both heads' pairs.
  EXPECT_EQ(attention_matmul_flops(attention(1024, 2, 2), 2, 2, 8, 128, 512), 24u * pair);
  // The kernel issues exactly these.
  MappingContext ctx = context(exact());
  EXPECT_EQ(AttentionMapping(ctx).run(attention(1024, 1, 1)).flops, 12u * pair);
}

TEST(AttentionOp, SampledWithGrainZeroIsTheKernel) {
  MappingContext ctx = context(exact());
  AttentionMapping a(ctx);
  workloads::Operator op = attention(300, 2, 1);
  op.context_offset = 200;
  op.kv_len = 500;
  const EngineBusy s = a.run_sampled(op);
  const EngineBusy r = a.run(op);
  EXPECT_EQ(s.elapsed_ps, r.elapsed_ps);
  EXPECT_EQ(s.flops, r.flops);
}

}  // namespace
}  // namespace wse::neuron
