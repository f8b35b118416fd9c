// Decode attention (decode_attention_op.h): one sequence by hand, and the batch key's
// cache.
#include <gtest/gtest.h>

#include "neuroncore/transformer/decode_attention_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

workloads::Operator decode(std::uint64_t context, std::uint32_t heads, std::uint32_t kv_heads) {
  workloads::Operator a = attention(1, heads, kv_heads);
  a.context_offset = context;
  a.kv_len = context + 1;
  a.kv_read_bytes = a.kv_len * kv_heads * (128 + 128) * 2;  // K and V, bf16
  return a;
}

TEST(DecodeAttentionOp, OneSequenceByHand) {
  // One core, one head of 128, one query over 600 keys: key blocks of 512 and 88.
  //  vector (0.96 GHz, fp32 256 per cycle, 64 cycles per instruction): max and subtract
  //    2 x 512 -> 4 + 64 = 68 cycles = 70,833 ps; 2 x 88 -> 1 + 64 = 65 cycles = 67,708 ps;
  //    normalisation 128 -> 65 cycles = 67,708 ps.
  //  scalar (1.2 GHz, 128 per cycle): exp 512 -> 68 cycles = 56,667 ps; 88 -> 65 = 54,167 ps.
  //  flops: QK^T 2 x 128 x 600 + PV 2 x 600 x 128 = 307,200.
  MappingContext ctx = context(exact());
  const EngineBusy b = DecodeAttentionMapping(ctx).run({decode(599, 1, 1)});
  EXPECT_DOUBLE_EQ(b.vector_ps, 70833.0 + 67708.0 + 67708.0);
  EXPECT_DOUBLE_EQ(b.scalar_ps, 56667.0 + 54167.0);
  EXPECT_EQ(b.flops, 307200u);
}

TEST(DecodeAttentionOp, ABatchInAnyOrderIsOneCachedKernel) {
  PrefillConfig p = exact(4, 2);
  MappingContext ctx = context(p);
  DecodeAttentionMapping d(ctx);
  const std::vector<workloads::Operator> a = {decode(100, 8, 2), decode(900, 8, 2), decode(500, 8, 2)};
  const EngineBusy first = d.run_cached(a);
  EXPECT_EQ(first.chip_runs, 1u);
  const EngineBusy again = d.run_cached({a[2], a[0], a[1]});
  EXPECT_EQ(again.elapsed_ps, first.elapsed_ps);
  EXPECT_EQ(again.chip_runs, 0u);  // from the cache
  EXPECT_EQ(ctx.reused_operators(), 1u);
}

}  // namespace
}  // namespace wse::neuron
