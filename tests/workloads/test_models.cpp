// Model sizes from the real Hugging Face config.json files, against hand arithmetic.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/systemc_test.h"
#include "workloads/model/transformer.h"

namespace wse::workloads {
namespace {

TransformerModel load_model(const std::string& file, const std::vector<std::string>& overrides = {}) {
  auto doc = config::parse("model:\n  include: " + testing::source_path("workloads/data/models/" + file) + "\n",
                           "model.yaml", overrides);
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  TransformerModel t = read_transformer(m);
  doc.finish();
  return t;
}

TEST(TransformerModel, Llama31_8B) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  // Per layer (h 4096, 32 heads, 8 kv heads, head_dim 128, MLP 14336):
  //   Q 4096*4096 = 16,777,216; K+V 2*4096*1024 = 8,388,608; O 16,777,216;
  //   MLP 3*4096*14336 = 176,160,768; norms 8,192  -> 218,112,000.
  EXPECT_EQ(m.layer_parameters(), 218112000u);
  // 32 layers 6,979,584,000 + embedding 128256*4096 = 525,336,576 (twice: untied head)
  // + final norm 4,096 = 8,030,261,248 (the published "8.03B").
  EXPECT_EQ(m.parameters(), 8030261248u);
  EXPECT_EQ(m.weight_bytes(), 2u * 8030261248u);
  // KV per token: 2 x 32 layers x 8 heads x 128 x 2 B = 131,072 B = 128 KiB.
  EXPECT_EQ(m.kv_bytes_per_token(), 131072u);
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

TEST(TransformerModel, DtypeOverridesAndErrors) {
  const auto fp8 = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.weight_dtype=fp8", "model.kv_dtype=fp8"});
  EXPECT_EQ(fp8.weight_bytes(), 8030261248u);
  EXPECT_EQ(fp8.kv_bytes_per_token(), 65536u);
  EXPECT_THROW(load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.weight_dtype=fp7"}), config::ConfigError);
  EXPECT_THROW(load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_key_value_heads=5"}),
               config::ConfigError);  // does not divide 32 query heads
  // A mixture-of-experts file is refused rather than sized wrongly.
  try {
    load_model("mistralai--Mixtral-8x7B-v0.1_config.json");
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("num_local_experts"));
  }
}

}  // namespace
}  // namespace wse::workloads
