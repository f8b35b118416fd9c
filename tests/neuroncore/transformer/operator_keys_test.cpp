// The keys of the reuse cache (operator_keys.h).
#include <gtest/gtest.h>

#include "neuroncore/transformer/operator_keys.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

TEST(OperatorKeys, EveryFieldThatDecidesTheTimeIsInTheKey) {
  const workloads::Operator a = gemm("mlp.up_proj", 128, 1024, 4096);
  workloads::Operator b = a;
  EXPECT_EQ(operator_key(a), operator_key(b));
  b.m = 129;
  EXPECT_NE(operator_key(a), operator_key(b));
  b = a;
  b.weight_dtype = workloads::DType::fp8;
  EXPECT_NE(operator_key(a), operator_key(b));
  // The layer does not decide the time.
  b = a;
  b.layer = 7;
  EXPECT_EQ(operator_key(a), operator_key(b));
  EXPECT_TRUE(same_but_layer(a, b));
  b.name = "mlp.gate_proj";
  EXPECT_FALSE(same_but_layer(a, b));
}

TEST(OperatorKeys, KvBytesPerKeyByHand) {
  // 600 keys of 8 kv heads read as kv_read_bytes = 600 x 8 x 512 B: 512 B per key; without
  // kv_read_bytes, K and V of the head dims in the weights' type: (128 + 128) x 2 B (bf16)
  // = 512 B, or x 1 B (fp8) = 256 B.
  workloads::Operator op = attention(1, 64, 8);
  op.kv_len = 600;
  op.kv_read_bytes = 600u * 8u * 512u;
  EXPECT_EQ(kv_bytes_per_key(op), 512u);
  op.kv_read_bytes = 0;
  EXPECT_EQ(kv_bytes_per_key(op), 512u);
  op.weight_dtype = workloads::DType::fp8;
  EXPECT_EQ(kv_bytes_per_key(op), 256u);
}

TEST(OperatorKeys, DecodeAttentionKeyIgnoresTheOrderOfTheSequences) {
  auto decode = [](std::uint64_t context) {
    workloads::Operator a = attention(1, 8, 2);
    a.kv_len = context + 1;
    a.context_offset = context;
    return a;
  };
  const std::vector<workloads::Operator> a = {decode(100), decode(900), decode(500)};
  EXPECT_TRUE(is_decode_attention(a[0]));
  EXPECT_FALSE(is_decode_attention(attention(2, 8, 2)));
  EXPECT_EQ(decode_attention_key(a), decode_attention_key({a[2], a[0], a[1]}));
  EXPECT_NE(decode_attention_key(a), decode_attention_key({a[2], a[0], decode(901)}));
  EXPECT_TRUE(same_decode_batch(a[0], a[1]));
}

}  // namespace
}  // namespace wse::neuron
