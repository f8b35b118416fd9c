// Overlap of a row-parallel GEMM's collective with compute (overlap_op.h): the pipeline's
// makespan by hand, and which operators join the pipeline.
#include <gtest/gtest.h>

#include "neuroncore/transformer/overlap_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;
using workloads::OpKind;

TEST(OverlapOp, ThreeChunksByHand) {
  // Stages (us) of every chunk: GEMM 4, RS chip 1, RS link 3, shard 1, AG link 3, AG chip 1
  // (chip | link; a stage starts as early as its chunk and its resource allow, ties to the
  // lower chunk):
  //   GEMM0 [0,4] RSc0 [4,5] | RSl0 [5,8]; GEMM1 [5,9]; shard0 [9,10] | AGl0 [10,13];
  //   RSc1 [10,11]; GEMM2 [11,15] | RSl1 [13,16]; AGc0 [15,16]; shard1 [16,17] | AGl1
  //   [17,20]; RSc2 [17,18]; AGc1 [20,21] | RSl2 [20,23]; shard2 [23,24] | AGl2 [24,27];
  //   AGc2 [27,28]
  //   -> 28 us, against 3 x 13 = 39 us one after another.
  constexpr std::uint64_t us = 1'000'000;
  const OverlapChunk c{4 * us, 1 * us, 3 * us, 1 * us, 3 * us, 1 * us};
  EXPECT_EQ(overlap_makespan({c}), 13 * us);
  EXPECT_EQ(overlap_makespan({c, c, c}), 28 * us);
}

TEST(OverlapOp, TheResidualAddAndNormAfterTheGemmJoinItsPipeline) {
  // o_proj of 256 tokens on TP 16 (2 chips), chunks of 128 tokens: the residual add and
  // the norm over the same tokens join (2), the next GEMM does not.
  PrefillConfig p = exact(16);
  p.overlap = true;
  p.overlap_chunk_tokens = 128;
  const std::vector<workloads::Operator> ops = {
      gemm("self_attn.o_proj", 256, 2048, 1024),
      elementwise(OpKind::residual_add, "attn_residual", 256 * 1024, 1, 2),
      elementwise(OpKind::norm, "post_attention_layernorm", 256 * 1024, 4, 1),
      gemm("mlp.up_proj", 256, 1024, 4096)};
  MappingContext ctx = context(p);
  EXPECT_EQ(OverlapMapping(ctx).segment(ops, 0), 2);
  EXPECT_EQ(OverlapMapping(ctx).segment(ops, 3), -1);  // column-parallel
  const std::vector<OverlapChunk> chunks = OverlapMapping(ctx).pipeline(ops, 0);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(OverlapMapping(ctx).run(ops, 0, 2).elapsed_ps, overlap_makespan(chunks));
  // One chunk (128 tokens), one chip, or overlap off: not overlapped.
  std::vector<workloads::Operator> short_ops = ops;
  short_ops[0].m = 128;
  EXPECT_EQ(OverlapMapping(ctx).segment(short_ops, 0), -1);
  PrefillConfig one_chip = p;
  one_chip.tp_degree = 8;
  MappingContext one = context(one_chip);
  EXPECT_EQ(OverlapMapping(one).segment(ops, 0), -1);
  PrefillConfig off = p;
  off.overlap = false;
  MappingContext o = context(off);
  EXPECT_EQ(OverlapMapping(o).segment(ops, 0), -1);
}

}  // namespace
}  // namespace wse::neuron
