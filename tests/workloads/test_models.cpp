// Model sizes from the real Hugging Face config.json files, against hand arithmetic.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/workloads/model_loader.h"

namespace wse::workloads {
namespace {

using ::testing::HasSubstr;

TEST(TransformerModel, Llama31_8B) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  // Per layer (h 4096, 32 heads, 8 kv heads, head_dim 128, MLP 14336):
  //   Q 4096*4096 = 16,777,216; K+V 2*4096*1024 = 8,388,608; O 16,777,216;
  //   MLP 3*4096*14336 = 176,160,768; norms 8,192  -> 218,112,000.
  EXPECT_EQ(m.layer_parameters(), 218112000u);
  // 32 layers 6,979,584,000 + embedding 128256*4096 = 525,336,576 (twice: untied head)
  // + final norm 4,096 = 8,030,261,248 (the published "8.03B").
  EXPECT_EQ(m.parameters(), 8030261248u);
  EXPECT_EQ(m.active_parameters(), 8030261248u);  // dense: every weight is used
  EXPECT_EQ(m.weight_bytes(), 2u * 8030261248u);
  // KV per token: 2 x 32 layers x 8 heads x 128 x 2 B = 131,072 B = 128 KiB.
  EXPECT_EQ(m.kv_bytes_per_token(), 131072u);
  EXPECT_EQ(m.kv_bytes(1000), 1000u * 131072u);  // no sliding layers: linear in context
  // FLOPs per token: 2 x (32 x (218,112,000 - 8,192 norm values)) = 13,958,643,712 in
  // the layers, + LM head 2 x 4096 x 128256 = 1,050,673,152.
  EXPECT_EQ(m.layer_linear_flops_per_token(), 13958643712u);
  EXPECT_EQ(m.linear_flops_per_token(), 13958643712u + 1050673152u);
  // Attention of one decode token over 1000 keys: 32 layers x 1000 x 2 (QK, PV) x 2 x
  // 32 heads x 128 = 524,288,000.
  EXPECT_EQ(m.decode_attention_flops(1000), 524288000u);
  // Causal prefill of 4 tokens: 1+2+3+4 = 10 keys -> 10 x 32 x 16,384 = 5,242,880.
  EXPECT_EQ(m.prefill_attention_flops(4), 5242880u);
  // Chunk of 2 at offset 2: keys 3 + 4 = 7.
  EXPECT_EQ(m.prefill_attention_flops(2, 2), 7u * 32u * 16384u);
}

TEST(TransformerModel, Llama31_70B_And_405B) {
  const auto m70 = load_model("meta-llama--Meta-Llama-3.1-70B_config.json");
  // 80 x 855,654,400 + 2 x 128256*8192 + 8192 = 70,553,706,496.
  EXPECT_EQ(m70.parameters(), 70553706496u);
  EXPECT_EQ(m70.kv_bytes_per_token(), 327680u);  // 2 x 80 x 8 x 128 x 2 B = 320 KiB
  const auto m405 = load_model("meta-llama--Meta-Llama-3.1-405B_config.json");
  EXPECT_EQ(m405.parameters(), 405853388800u);
  EXPECT_EQ(m405.kv_bytes_per_token(), 516096u);  // 2 x 126 x 8 x 128 x 2 B = 504 KiB
}

TEST(TransformerModel, Qwen3DenseWithQkNorm) {
  const auto m = load_model("Qwen--Qwen3-8B_config.json");
  // h 4096, 32 heads x 128, 8 kv heads, MLP 12288, 36 layers, vocab 151936, untied.
  //   attention 4096*4096 + 2*4096*1024 + 4096*4096 = 41,943,040
  //   q_norm + k_norm (per-head, shared by all heads) 2 x 128 = 256
  //   MLP 3*4096*12288 = 150,994,944; layer norms 8,192 -> 192,946,432
  EXPECT_EQ(m.layer_parameters(), 192946432u);
  // 36 x 192,946,432 = 6,946,071,552 + 2 x 151936*4096 (1,244,659,712) + 4,096
  // = 8,190,735,360 (published "8.2B").
  EXPECT_EQ(m.parameters(), 8190735360u);
  EXPECT_EQ(m.kv_bytes_per_token(), 2u * 36u * 8u * 128u * 2u);  // 147,456
  const auto m32 = load_model("Qwen--Qwen3-32B_config.json");
  EXPECT_EQ(m32.parameters(), 32762123264u);  // published "32.8B"
}

TEST(TransformerModel, MixtralExperts) {
  const auto m = load_model("mistralai--Mixtral-8x7B-v0.1_config.json");
  // Per layer: attention 41,943,040 (as Llama-8B), norms 8,192, router 4096*8 = 32,768,
  // experts 8 x 3 x 4096 x 14336 = 1,409,286,144 -> 1,451,270,144.
  EXPECT_EQ(m.layer_parameters(), 1451270144u);
  // Total 32 x 1,451,270,144 + 2 x 32000*4096 + 4096 = 46,702,792,704 ("46.7B").
  EXPECT_EQ(m.parameters(), 46702792704u);
  // Active: 2 of 8 experts -> per layer 41,943,040 + 8,192 + 32,768 + 352,321,536
  // = 394,305,536; x 32 + 262,148,096 = 12,879,925,248 ("12.9B").
  EXPECT_EQ(m.active_parameters(), 12879925248u);
  // FLOPs: 2 x 32 x (41,943,040 + 32,768 + 352,321,536) = 25,235,030,016 + head 262,144,000.
  EXPECT_EQ(m.linear_flops_per_token(), 25235030016u + 262144000u);
  const auto m22 = load_model("mistralai--Mixtral-8x22B-v0.1_config.json");
  EXPECT_EQ(m22.parameters(), 140620634112u);        // published "141B"
  EXPECT_EQ(m22.active_parameters(), 39152031744u);  // published "39B"
}

TEST(TransformerModel, Qwen3MoeSparseStepAndMlpOnlyLayers) {
  const auto m = load_model("Qwen--Qwen3-30B-A3B_config.json");
  // h 2048, 32 q heads x 128, 4 kv heads; attention 2048*4096 + 2*2048*512 + 4096*2048
  // = 18,874,368; q/k norms 256; norms 4,096; router 2048*128 = 262,144;
  // experts 128 x 3 x 2048 x 768 = 603,979,776 -> 623,120,640 per layer.
  EXPECT_EQ(m.layer_parameters(), 623120640u);
  // 48 layers 29,909,790,720 + 2 x 151936*2048 (622,329,856) + 2,048 = 30,532,122,624.
  EXPECT_EQ(m.parameters(), 30532122624u);  // "30.5B"
  // Active: 8 of 128 experts = 8 x 3 x 2048 x 768 = 37,748,736, so per layer
  // 18,874,368 + 256 + 4,096 + 262,144 + 37,748,736 = 56,889,600; x 48 = 2,730,700,800
  // + 622,329,856 + 2,048 = 3,353,032,704 ("3.3B").
  EXPECT_EQ(m.active_parameters(), 3353032704u);
  EXPECT_EQ(m.kv_bytes_per_token(), 98304u);  // 2 x 48 x 4 x 128 x 2 B
  // decoder_sparse_step 2 makes layers 1, 3, ... MoE; mlp_only_layers [1] then makes
  // layer 1 dense (MLP 3 x 2048 x 6144 = 37,748,736 instead of router + experts).
  const auto s = load_model("Qwen--Qwen3-30B-A3B_config.json",
                            {"model.decoder_sparse_step=2", "model.mlp_only_layers=[1]"});
  EXPECT_EQ(s.layer_specs[0].mlp, MlpKind::dense);
  EXPECT_EQ(s.layer_specs[1].mlp, MlpKind::dense);
  EXPECT_EQ(s.layer_specs[3].mlp, MlpKind::moe);
  EXPECT_EQ(s.layer_parameters(1), 18874368u + 256u + 4096u + 37748736u);
  const auto big = load_model("Qwen--Qwen3-235B-A22B_config.json");
  EXPECT_EQ(big.parameters(), 235093634560u);        // "235B"
  EXPECT_EQ(big.active_parameters(), 22190763520u);  // "22B"
}

TEST(TransformerModel, DeepSeekV3LatentAttention) {
  const auto m = load_model("deepseek-ai--DeepSeek-V3_config.json");
  // MLA, h 7168, 128 heads, q_lora 1536, kv_lora 512, nope 128, rope 64, v 128:
  //   q_a 7168*1536 = 11,010,048; q_a_norm 1,536; q_b 1536*128*192 = 37,748,736
  //   kv_a 7168*576 = 4,128,768; kv_a_norm 512; kv_b 512*128*256 = 16,777,216
  //   o 128*128*7168 = 117,440,512  -> 187,107,328; + 2 layer norms 14,336.
  // Dense layer (0..2): + 3 x 7168 x 18432 = 396,361,728 -> 583,483,392.
  EXPECT_EQ(m.layer_parameters(0), 583483392u);
  // MoE layer: router 7168*256 = 1,835,008 + score bias 256; routed 256 x 3 x 7168 x
  // 2048 = 11,274,289,152; shared 3 x 7168 x 2048 = 44,040,192 -> 11,507,286,272.
  EXPECT_EQ(m.layer_parameters(3), 11507286272u);
  EXPECT_EQ(m.layer_specs[2].mlp, MlpKind::dense);
  EXPECT_EQ(m.layer_specs[3].mlp, MlpKind::moe);
  // 3 x 583,483,392 + 58 x 11,507,286,272 + 2 x 129280*7168 (1,853,358,080) + 7,168
  // = 671,026,419,200 ("671B").
  EXPECT_EQ(m.parameters(), 671026419200u);
  // Active: routed 8 of 256 -> 352,321,536 per MoE layer instead of 11,274,289,152:
  // 671,026,419,200 - 58 x 10,921,967,616 = 37,552,297,472 ("37B").
  EXPECT_EQ(m.active_parameters(), 37552297472u);
  // MTP module, kept apart: a MoE layer 11,507,286,272 + enorm, hnorm, head norm 3 x 7,168
  // + eh_proj 2 x 7168 x 7168 = 102,760,448 + its head and embedding 2 x 926,679,040
  // = 13,463,426,304 (published "+14B").
  EXPECT_EQ(m.mtp_parameters(), 13463426304u);
  // Latent KV: (512 + 64) x 61 layers x 2 B (bf16) = 70,272 B per token.
  EXPECT_EQ(m.kv_bytes_per_token(), 70272u);
  // quantization_config fp8: decoder linear layers 1 B, embedding/head/norms/router bf16.
  //   fp8 values (attention GEMMs 187,105,280 per layer): 3 x (187,105,280 + 396,361,728)
  //   + 58 x (187,105,280 + 11,274,289,152 + 44,040,192) = 1,750,401,024 + 667,315,208,192
  //   = 669,065,609,216
  //   bf16 values: embedding + head 1,853,358,080 + final norm 7,168 + 61 x 16,384 norm
  //   values (2 x 7168 + 1536 + 512) + 58 routers x 1,835,264 = 1,960,809,984 -> x 2 B.
  const auto b = m.weight_bytes_by_dtype();
  EXPECT_EQ(b[static_cast<std::size_t>(DType::fp8)], 669065609216u);
  EXPECT_EQ(b[static_cast<std::size_t>(DType::bf16)], 2u * 1960809984u);
  // Attention FLOPs per key: prefill 2 x 128 x (192 + 128) = 81,920; decode absorbed
  // 2 x 128 x (576 + 512) = 278,528.
  EXPECT_EQ(m.attention_flops_per_key(0, false), 81920u);
  EXPECT_EQ(m.attention_flops_per_key(0, true), 278528u);
}

TEST(TransformerModel, GptOssSlidingWindowsSinksAndMxfp4) {
  const auto m = load_model("openai--gpt-oss-20b_config.json");
  // h 2880, 64 q heads x 64, 8 kv heads, 32 experts of 2880, top-4, 24 layers.
  //   attention 2880*4096 + 2*2880*512 + 4096*2880 = 26,542,080; biases 4096+2*512+2880
  //   = 8,000; sinks 64; norms 5,760; router 2880*32 + 32 = 92,192;
  //   experts 32 x (3 x 2880 x 2880 + biases 2*2880 + 2880) = 32 x 24,891,840
  //   = 796,538,880  -> 823,186,976 per layer.
  EXPECT_EQ(m.layer_parameters(), 823186976u);
  // 24 layers 19,756,487,424 + 2 x 201088*2880 (1,158,266,880) + 2,880 = 20,914,757,184.
  EXPECT_EQ(m.parameters(), 20914757184u);  // "21B"
  // Active without the embedding (OpenAI's convention): 4 of 32 experts ->
  // 24 x (26,542,080 + 8,000 + 64 + 5,760 + 92,192 + 99,567,360) + 579,133,440 + 2,880
  // = 3,608,307,264 ("3.6B").
  EXPECT_EQ(m.active_parameters_without_embedding(), 3608307264u);
  // mxfp4 expert matrices: 24 x 32 x 3 x 8,294,400 = 19,110,297,600 values in blocks of
  // 32 x 17 B = 10,152,345,600 B; the other 1,804,459,584 values in bf16 = 3,608,919,168 B.
  const auto b = m.weight_bytes_by_dtype();
  EXPECT_EQ(b[static_cast<std::size_t>(DType::mxfp4)], 10152345600u);
  EXPECT_EQ(b[static_cast<std::size_t>(DType::bf16)], 3608919168u);
  EXPECT_EQ(m.weight_bytes(), 13761264768u);  // the 13.8 GB checkpoint
  // One layer: 32 x 3 expert matrices x 259,200 blocks x 17 B = 423,014,400 B of mxfp4;
  // the other 823,186,976 - 796,262,400 = 26,924,576 values in bf16 = 53,849,152 B.
  const auto lb = m.layer_weight_bytes_by_dtype(5);
  EXPECT_EQ(lb[static_cast<std::size_t>(DType::mxfp4)], 423014400u);
  EXPECT_EQ(lb[static_cast<std::size_t>(DType::bf16)], 53849152u);
  EXPECT_EQ(m.layer_weight_bytes(5), 423014400u + 53849152u);
  // Layers alternate sliding (even) / full (odd); a sliding layer keeps <= 128 tokens.
  EXPECT_EQ(m.layer_specs[0].window_tokens, 128u);
  EXPECT_EQ(m.layer_specs[1].window_tokens, 0u);
  // KV per token per layer 2 x 8 x 64 x 2 B = 2,048 B. Context 1000:
  //   12 full layers x 1000 + 12 sliding x 128 = 13,536 token-layers -> 27,721,728 B.
  EXPECT_EQ(m.kv_bytes(1000), 27721728u);
  // Context 100 < window: 24 x 100 x 2,048 = 4,915,200 B.
  EXPECT_EQ(m.kv_bytes(100), 4915200u);
  // Prefill of 200 tokens, sliding layer keys: 1+..+128 = 8,256 then 72 x 128 = 9,216
  // -> 17,472; full layer 200*201/2 = 20,100. x 12 each x 2*2*64*64 = 16,384 FLOPs per key.
  EXPECT_EQ(causal_keys(200, 0, 128), 17472u);
  EXPECT_EQ(m.prefill_attention_flops(200), 12ULL * (17472 + 20100) * 16384);
  const auto m120 = load_model("openai--gpt-oss-120b_config.json");
  EXPECT_EQ(m120.parameters(), 116829156672u);                         // "117B"
  EXPECT_EQ(m120.active_parameters_without_embedding(), 5132849472u);  // "5.1B"
}

TEST(TransformerModel, DtypesOverridesAndErrors) {
  EXPECT_EQ(bytes_of(64, DType::mxfp4), 34u);  // two 32-value blocks of 17 B
  EXPECT_EQ(bytes_of(33, DType::mxfp4), 34u);  // a partial block takes a whole block
  EXPECT_DOUBLE_EQ(bits_per_value(DType::mxfp4), 4.25);
  EXPECT_THROW((void)bytes_per_value(DType::mxfp4), std::invalid_argument);
  const auto fp8 = load_model("meta-llama--Meta-Llama-3.1-8B_config.json",
                              {"model.weight_dtype=fp8", "model.kv_dtype=fp8"});
  EXPECT_EQ(fp8.weight_bytes(), 8030261248u);
  EXPECT_EQ(fp8.kv_bytes_per_token(), 65536u);
  // gpt-oss with bf16 experts: every value 2 B.
  const auto oss = load_model("openai--gpt-oss-20b_config.json", {"model.expert_weight_dtype=bf16"});
  EXPECT_EQ(oss.weight_bytes(), 2u * 20914757184u);
  EXPECT_THROW(load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.weight_dtype=fp7"}),
               config::ConfigError);
  EXPECT_THROW(load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.kv_dtype=mxfp4"}),
               config::ConfigError);
  EXPECT_THROW(load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_key_value_heads=5"}),
               config::ConfigError);  // does not divide 32 query heads
  try {
    load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.model_type=mamba"});
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model_type"));
    EXPECT_THAT(e.what(), HasSubstr("'mamba' is not a supported architecture"));
  }
  try {
    load_model("openai--gpt-oss-20b_config.json", {"model.layer_types=[full_attention]"});
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has 1 entries; num_hidden_layers is 24"));
  }
}

// Found by fuzzing (fuzz/regressions/fuzz_hf_config/layers_1e9_out_of_memory.json):
// num_hidden_layers was allowed up to 1e9, and the reader allocated per-layer tables
// before anything else (4 GB for the windows alone): out of memory instead of an error.
// Published models have at most a few hundred layers; the limit is 4,096.
TEST(TransformerModel, LayerCountIsBounded) {
  try {
    load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=1000000000"});
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("key 'model.num_hidden_layers'"));
    EXPECT_THAT(e.what(), HasSubstr("out of range; allowed: >= 1 and <= 4096"));
  }
  EXPECT_EQ(load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=4096"}).layers,
            4096u);
}

// Found by fuzzing (fuzz/regressions/fuzz_hf_config/counts_wrap_past_64_bits.json):
// every dimension was within its own limit (1e9), but hidden_size x (heads x head_dim)
// = 1e9 x 32e9 = 3.2e19 weights passed 2^64 and the counts wrapped around to small,
// wrong figures without a word. Models beyond 2^62 weights are now refused.
TEST(TransformerModel, CountsThatWouldWrapAroundAreRefused) {
  try {
    load_model("meta-llama--Meta-Llama-3.1-8B_config.json",
               {"model.hidden_size=1000000000", "model.head_dim=1000000000"});
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("more than 64-bit counts hold (limit 2^62)"));
  }
  // Large but representable: hidden 1,048,576 with 128-wide heads; q_proj alone is
  // 2^20 x (32 x 128) = 2^32 weights.
  const auto big = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.hidden_size=1048576"});
  EXPECT_GT(big.parameters(), 32u * 4294967296u);
}

}  // namespace
}  // namespace wse::workloads
