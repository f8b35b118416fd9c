// Lowering prefill and decode batches to operators: the operators' FLOPs add up to the
// model's per-token arithmetic, and decode reads every weight and every cached token.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/workloads/model_loader.h"
#include "workloads/model/operators.h"

namespace wse::workloads {
namespace {

std::uint64_t embedding_table_bytes(const TransformerModel& m) {
  return bytes_of(static_cast<std::uint64_t>(m.vocab) * m.hidden, m.weight_dtype);
}

const Operator& find_op(const OperatorGraph& g, std::int32_t layer, const std::string& name) {
  for (const auto& op : g.ops) {
    if (op.layer == layer && op.name == name) return op;
  }
  throw std::runtime_error("no operator " + name);
}

TEST(Lowering, LlamaPrefillFlopsMatchPerTokenArithmetic) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  const auto g = lower_prefill(m, {100, 50});
  EXPECT_EQ(g.phase, "prefill");
  // 150 tokens x 13,958,643,712 layer FLOPs + 2 LM-head rows x 1,050,673,152
  // + attention: (5,050 + 1,275) causal keys x 32 layers x 16,384 FLOPs per key.
  const std::uint64_t expect = 150u * 13958643712u + 2u * 1050673152u + (5050u + 1275u) * 32u * 16384u;
  EXPECT_EQ(g.total_flops(), expect);
  EXPECT_EQ(g.total_flops(), 150 * m.layer_linear_flops_per_token() + 2 * m.lm_head_flops_per_token() +
                                 m.prefill_attention_flops(100) + m.prefill_attention_flops(50));
  // One QKV GEMM shape: M = 150 tokens, K = 4096, N = 4096 for q_proj; 1024 for k_proj.
  const Operator& q = find_op(g, 0, "self_attn.q_proj");
  EXPECT_EQ(q.m, 150u);
  EXPECT_EQ(q.k, 4096u);
  EXPECT_EQ(q.n, 4096u);
  EXPECT_EQ(q.weight_bytes, 4096u * 4096u * 2u);
  EXPECT_EQ(find_op(g, 0, "self_attn.k_proj").n, 1024u);
  // Attention of prompt 0 in layer 5: 32 q heads over 8 kv heads, 100 x 100 causal.
  int attn = 0;
  for (const auto& op : g.ops) {
    if (op.kind != OpKind::attention || op.layer != 5) continue;
    ++attn;
    EXPECT_EQ(op.q_heads, 32u);
    EXPECT_EQ(op.kv_heads, 8u);
    EXPECT_EQ(op.qk_head_dim, 128u);
    EXPECT_EQ(op.query_len, op.sequence == 0 ? 100u : 50u);
    EXPECT_EQ(op.kv_len, op.query_len);
    EXPECT_EQ(op.kv_read_bytes, 0u);                     // nothing cached yet
    EXPECT_EQ(op.kv_write_bytes, op.query_len * 4096u);  // 2 x 8 x 128 x 2 B per token
  }
  EXPECT_EQ(attn, 2);
  // All cached bytes written = the model's KV bytes of the two prompts.
  EXPECT_EQ(g.total_kv_write_bytes(), m.kv_bytes(100) + m.kv_bytes(50));
  // The LM head runs on the last token of each prompt only.
  EXPECT_EQ(find_op(g, -1, "lm_head").m, 2u);
}

TEST(Lowering, ChunkedPrefillHasTheSameFlopsAsWhole) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  // Prompt of 100 in two chunks: 40 at 0 (no logits yet), then 60 at 40.
  const auto first = lower_prefill(m, {40}, {0}, {100});
  const auto second = lower_prefill(m, {60}, {40}, {100});
  const auto whole = lower_prefill(m, {100});
  EXPECT_EQ(first.total_flops() + second.total_flops(), whole.total_flops());
  // The second chunk reads the first chunk's cache: 40 tokens x 4,096 B x 32 layers.
  EXPECT_EQ(second.total_kv_read_bytes(), 40u * 4096u * 32u);
  const Operator& a = find_op(second, 0, "self_attn");
  EXPECT_EQ(a.context_offset, 40u);
  EXPECT_EQ(a.kv_len, 100u);
  // Keys: positions 40..99 see 41..100 keys = 4,230.
  EXPECT_EQ(a.flops, 4230u * 16384u);
  EXPECT_FALSE(first.sequences[0].logits);
  EXPECT_EQ(std::count_if(first.ops.begin(), first.ops.end(),
                          [](const Operator& o) { return o.name == "lm_head"; }),
            0);
}

TEST(Lowering, LlamaDecodeReadsAllWeightsAndAllKv) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  const auto g = lower_decode(m, {10, 1000});
  EXPECT_EQ(g.phase, "decode");
  // Every weight once, except the embedding table of which only 2 rows (2 x 8 KiB):
  // 16,060,522,496 - 1,050,673,152 + 16,384.
  EXPECT_EQ(g.total_weight_bytes(), m.weight_bytes() - embedding_table_bytes(m) + 2u * 8192u);
  EXPECT_EQ(g.total_weight_bytes(), 16060522496u - 1050673152u + 16384u);
  // KV: each request reads its whole cache plus the token just written (11 and 1,001
  // tokens x 128 KiB) and writes one token each.
  EXPECT_EQ(g.total_kv_read_bytes(), (11u + 1001u) * 131072u);
  EXPECT_EQ(g.total_kv_write_bytes(), 2u * 131072u);
  EXPECT_EQ(g.total_flops(),
            2 * m.linear_flops_per_token() + m.decode_attention_flops(11) + m.decode_attention_flops(1001));
}

TEST(Lowering, MixtralUniformRouting) {
  const auto m = load_model("mistralai--Mixtral-8x7B-v0.1_config.json");
  // One token, top-2 of 8: two experts get 1 token each; only they are read.
  const auto one = lower_decode(m, {100});
  const Operator& up1 = find_op(one, 0, "mlp.experts.up_proj");
  EXPECT_EQ(up1.count, 2u);
  EXPECT_EQ(up1.m, 1u);
  EXPECT_EQ(up1.weight_bytes, 2u * 4096u * 14336u * 2u);
  // Weights read: all but 6 of 8 experts per layer (6 x 3 x 4096 x 14336 x 2 B x 32
  // layers) and all but one row of the embedding table.
  EXPECT_EQ(one.total_weight_bytes(),
            m.weight_bytes() - 6ULL * 3 * 4096 * 14336 * 2 * 32 - embedding_table_bytes(m) + 8192u);
  // Five tokens: 10 assignments over 8 experts -> 2 experts with 2 tokens, 6 with 1.
  const auto five = lower_decode(m, {10, 20, 30, 40, 50});
  std::vector<std::pair<std::uint64_t, std::uint32_t>> groups;
  for (const auto& op : five.ops) {
    if (op.layer == 0 && op.name == "mlp.experts.gate_proj") groups.emplace_back(op.m, op.count);
  }
  EXPECT_THAT(groups, ::testing::ElementsAre(std::make_pair(2u, 2u), std::make_pair(1u, 6u)));
  EXPECT_EQ(five.total_weight_bytes(), m.weight_bytes() - embedding_table_bytes(m) + 5u * 8192u);
  EXPECT_EQ(five.total_flops(), 5 * m.linear_flops_per_token() + m.decode_attention_flops(11) +
                                    m.decode_attention_flops(21) + m.decode_attention_flops(31) +
                                    m.decode_attention_flops(41) + m.decode_attention_flops(51));
  // Prefill of 64 tokens: FLOPs = 64 x per-token (active experts only) + head + attention.
  const auto pre = lower_prefill(m, {64});
  EXPECT_EQ(pre.total_flops(), 64 * m.layer_linear_flops_per_token() + m.lm_head_flops_per_token() +
                                   m.prefill_attention_flops(64));
}

TEST(Lowering, DeepSeekLatentPrefillAndAbsorbedDecode) {
  const auto m = load_model("deepseek-ai--DeepSeek-V3_config.json");
  const auto pre = lower_prefill(m, {32});
  EXPECT_EQ(pre.total_flops(), 32 * m.layer_linear_flops_per_token() + m.lm_head_flops_per_token() +
                                   m.prefill_attention_flops(32));
  // Prefill attention is per-head after decompression: 128 x 128 heads of 192 / 128.
  const Operator& pa = find_op(pre, 0, "self_attn");
  EXPECT_EQ(pa.kv_heads, 128u);
  EXPECT_EQ(pa.qk_head_dim, 192u);
  EXPECT_EQ(pa.v_head_dim, 128u);
  EXPECT_EQ(pa.kv_write_bytes, 32u * 576u * 2u);  // the latent, 576 values x 2 B per token
  // Decode attends in the latent space: one shared 576-wide key, 512-wide value.
  const auto dec = lower_decode(m, {4095});
  const Operator& da = find_op(dec, 0, "self_attn");
  EXPECT_EQ(da.kv_heads, 1u);
  EXPECT_EQ(da.qk_head_dim, 576u);
  EXPECT_EQ(da.v_head_dim, 512u);
  EXPECT_EQ(da.kv_read_bytes, 4096u * 1152u);  // 4,096 tokens x 576 x 2 B
  EXPECT_EQ(dec.total_kv_read_bytes(), m.kv_bytes(4096));
  // The absorbed kv_b_proj halves: 128 heads x (128 x 512) and 128 x (512 x 128), fp8.
  EXPECT_EQ(find_op(dec, 0, "self_attn.kv_b_proj.absorb_k").weight_bytes +
                find_op(dec, 0, "self_attn.kv_b_proj.absorb_v").weight_bytes,
            512u * 128u * 256u);
  EXPECT_EQ(dec.total_flops(), m.linear_flops_per_token() + m.decode_attention_flops(4096));
}

TEST(Lowering, MixedBatchOfPrefillChunkAndDecodeSteps) {
  const auto m = load_model("deepseek-ai--DeepSeek-V3_config.json");
  // A 100-token prompt (whole) and two decode steps in one pass: the prefill path
  // decompresses 100 latents, the decode path absorbs kv_b_proj for 2 tokens; each token
  // still uses every kv_b_proj weight once, so the GEMM FLOPs are 102 tokens' worth.
  const auto g = lower(m, {{100, 0, true}, {1, 500, true}, {1, 7, true}});
  EXPECT_EQ(g.phase, "mixed");
  EXPECT_EQ(find_op(g, 0, "self_attn.kv_b_proj").m, 100u);
  EXPECT_EQ(find_op(g, 0, "self_attn.kv_b_proj.absorb_k").m, 2u);
  EXPECT_EQ(g.total_flops(), 102 * m.layer_linear_flops_per_token() + 3 * m.lm_head_flops_per_token() +
                                 m.prefill_attention_flops(100) + m.decode_attention_flops(501) +
                                 m.decode_attention_flops(8));
  EXPECT_EQ(g.total_kv_read_bytes(), m.kv_bytes(501) + m.kv_bytes(8));
  EXPECT_EQ(g.total_kv_write_bytes(), m.kv_bytes(100) + 2 * m.kv_bytes(1));
}

TEST(Lowering, GptOssSlidingDecodeReadsAtMostTheWindow) {
  const auto m = load_model("openai--gpt-oss-20b_config.json");
  // 8 requests x top-4 = 32 assignments = one token per expert: all experts read.
  const std::vector<std::uint64_t> ctx{1000, 1000, 1000, 1000, 50, 50, 50, 50};
  const auto g = lower_decode(m, ctx);
  EXPECT_EQ(g.total_weight_bytes(), m.weight_bytes() - embedding_table_bytes(m) + 8u * 2880u * 2u);
  // Request with 1,000 cached: full layer reads 1,001 tokens, sliding layer 128.
  const Operator& sliding = find_op(g, 0, "self_attn");
  const Operator& full = find_op(g, 1, "self_attn");
  EXPECT_EQ(sliding.kv_len, 128u);
  EXPECT_EQ(sliding.kv_read_bytes, 128u * 2048u);
  EXPECT_EQ(full.kv_read_bytes, 1001u * 2048u);
  EXPECT_TRUE(full.sinks);
  std::uint64_t kv = 0;
  for (auto c : ctx) kv += m.kv_bytes(c + 1);
  EXPECT_EQ(g.total_kv_read_bytes(), kv);
  // Attention biases travel with their projections: q_proj 2880 x 4096 x 2 B + 4096 x 2 B.
  EXPECT_EQ(find_op(g, 0, "self_attn.q_proj").weight_bytes, 2880u * 4096u * 2u + 4096u * 2u);
}

TEST(Lowering, RejectsEmptyBatches) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  EXPECT_THROW(lower(m, {}), std::invalid_argument);
  EXPECT_THROW(lower_decode(m, {0}), std::invalid_argument);
  EXPECT_THROW(lower_prefill(m, {10, 0}), std::invalid_argument);
  EXPECT_THROW(lower_prefill(m, {10}, {0, 1}), std::invalid_argument);
}

// A speculative verification pass (lower_verify): k + 1 = 4 tokens per request at its
// context, every one through the LM head. Llama-3.1-8B, contexts 1,000 and 200, k = 3:
// 8 tokens x 13,958,643,712 layer FLOPs + 8 LM-head rows x 1,050,673,152 + attention:
// the queries at 1,000..1,003 see 1,001..1,004 keys (4,010), at 200..203 see 201..204
// (810), x 32 layers x 16,384 FLOPs per key. A decode step of the same requests has
// 2 tokens and 2 LM-head rows, and its queries see 1,001 and 201 keys.
TEST(Lowering, VerifyPassRunsKPlusOneTokensWithLogitsForEach) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  const auto g = lower_verify(m, {1000, 200}, 3);
  EXPECT_EQ(g.phase, "verify");
  EXPECT_EQ(g.total_flops(),
            8ull * 13958643712ull + 8ull * 1050673152ull + (4010ull + 810ull) * 32ull * 16384ull);
  EXPECT_EQ(find_op(g, 0, "self_attn.q_proj").m, 8u);
  EXPECT_EQ(find_op(g, -1, "lm_head").m, 8u);
  for (const auto& op : g.ops) {
    if (op.kind != OpKind::attention || op.layer != 0) continue;
    EXPECT_EQ(op.query_len, 4u);
    EXPECT_EQ(op.context_offset, op.sequence == 0 ? 1000u : 200u);
    EXPECT_EQ(op.kv_len, op.sequence == 0 ? 1004u : 204u);
    EXPECT_EQ(op.kv_write_bytes, 4u * 4096u);  // the 4 new tokens' K and V
  }
  const auto d = lower_decode(m, {1000, 200});
  EXPECT_EQ(d.total_flops(), 2u * 13958643712u + 2u * 1050673152u + (1001u + 201u) * 32u * 16384u);
  // k = 0 is a decode step.
  EXPECT_EQ(lower_verify(m, {1000, 200}, 0).total_flops(), d.total_flops());
}

}  // namespace
}  // namespace wse::workloads
