// The `decode:` section: values, defaults, errors, and the shipped file.
#include <gtest/gtest.h>

#include "decode_test_util.h"
#include "systemc_models/config/config.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {
namespace {

DecodeConfig read(const std::string& yaml) {
  auto doc = config::parse(yaml, "decode.yaml");
  config::Section root = doc.root();
  config::Section s = root.section("decode", "decode");
  DecodeConfig c = read_decode_config(s);
  doc.finish();
  return c;
}

TEST(DecodeConfigTest, ReadsValuesAndGrids) {
  const DecodeConfig c = read(
      "decode:\n  wafers: 4\n  link_bandwidth: 800 Gb/s\n  link_latency: 2 us\n  microbatch: 8\n"
      "  weight_sram_share: 0.5\n  reserved_sram: 4 KiB\n  grids:\n    qkv: 32x64\n    lm_head: auto\n"
      "  attention:\n    tokens_per_pe: 32\n    max_grid_cols: 128\n    combine: tree\n");
  EXPECT_EQ(c.wafers, 4u);
  EXPECT_DOUBLE_EQ(c.link_bandwidth.bytes_per_s, 100e9);
  EXPECT_DOUBLE_EQ(c.link_latency.seconds, 2e-6);
  EXPECT_EQ(c.microbatch, 8u);
  EXPECT_DOUBLE_EQ(c.weight_sram_share, 0.5);
  EXPECT_EQ(c.reserved_sram_bytes, 4096u);
  ASSERT_EQ(c.grids.size(), 1u);  // auto grids are left out
  EXPECT_EQ(c.grids.at("qkv"), (GridShape{32, 64}));
  EXPECT_EQ(c.tokens_per_pe, 32u);
  EXPECT_EQ(c.attention_max_grid_cols, 128u);
  EXPECT_EQ(c.attention_combine, Reduction::kTree);
  EXPECT_EQ(c.placement().wafers, 4u);
}

TEST(DecodeConfigTest, DefaultsMatchTheStructAndTheShippedFile) {
  const DecodeConfig empty = read("decode: {}\n");
  const DecodeConfig def;
  EXPECT_EQ(empty.wafers, def.wafers);
  EXPECT_DOUBLE_EQ(empty.link_bandwidth.bytes_per_s, def.link_bandwidth.bytes_per_s);
  EXPECT_DOUBLE_EQ(empty.link_latency.seconds, def.link_latency.seconds);
  EXPECT_EQ(empty.microbatch, def.microbatch);
  EXPECT_DOUBLE_EQ(empty.weight_sram_share, def.weight_sram_share);
  EXPECT_EQ(empty.reserved_sram_bytes, def.reserved_sram_bytes);
  EXPECT_EQ(empty.tokens_per_pe, def.tokens_per_pe);
  EXPECT_EQ(empty.attention_max_grid_cols, def.attention_max_grid_cols);
  EXPECT_EQ(empty.attention_combine, def.attention_combine);
  EXPECT_EQ(empty.kv_layout, def.kv_layout);
  EXPECT_EQ(empty.attention_tiled, def.attention_tiled);
  EXPECT_TRUE(def.attention_tiled);
  EXPECT_FALSE(read("decode:\n  attention:\n    fidelity: per_pe\n").attention_tiled);
  EXPECT_EQ(empty.gemm_vectors, def.gemm_vectors);
  EXPECT_EQ(empty.vocab_slices, def.vocab_slices);
  EXPECT_TRUE(empty.grids.empty());
  // The placement's own defaults are the same.
  const PlacementOptions p;
  EXPECT_EQ(def.placement().weight_sram_share, p.weight_sram_share);
  EXPECT_EQ(def.placement().reserved_sram_bytes, p.reserved_sram_bytes);
  EXPECT_EQ(def.placement().gemm_vectors, p.gemm_vectors);
  EXPECT_EQ(def.placement().vocab_slices, p.vocab_slices);

  auto doc = config::load(testing::source_path("configs/hardware/cs3_decode.yaml"));
  config::Section root = doc.root();
  config::Section s = root.section("decode", "decode");
  const DecodeConfig shipped = read_decode_config(s);
  doc.finish();  // no unknown keys
  EXPECT_EQ(shipped.wafers, def.wafers);
  EXPECT_DOUBLE_EQ(shipped.link_bandwidth.bytes_per_s, def.link_bandwidth.bytes_per_s);
  EXPECT_DOUBLE_EQ(shipped.weight_sram_share, def.weight_sram_share);
  EXPECT_EQ(shipped.reserved_sram_bytes, def.reserved_sram_bytes);
  EXPECT_EQ(shipped.gemm_vectors, def.gemm_vectors);
  EXPECT_EQ(shipped.vocab_slices, def.vocab_slices);
  EXPECT_EQ(shipped.tokens_per_pe, def.tokens_per_pe);
  EXPECT_EQ(shipped.attention_combine, def.attention_combine);
  EXPECT_EQ(shipped.kv_layout, def.kv_layout);
  EXPECT_EQ(shipped.attention_tiled, def.attention_tiled);
  EXPECT_DOUBLE_EQ(shipped.link_latency.seconds, def.link_latency.seconds);
  EXPECT_EQ(shipped.microbatch, def.microbatch);
  EXPECT_TRUE(shipped.grids.empty());
  EXPECT_EQ(shipped.mapping, def.mapping);
  EXPECT_EQ(shipped.region, def.region);
  EXPECT_EQ(shipped.region_columns, def.region_columns);
  EXPECT_EQ(shipped.accumulate, def.accumulate);
  EXPECT_EQ(shipped.reduction_auto, def.reduction_auto);
}

TEST(DecodeConfigTest, BadValuesNameTheKey) {
  const auto message = [](const std::string& yaml) -> std::string {
    try {
      read(yaml);
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return "";
  };
  std::string m = message("decode:\n  grids:\n    qkv: 32by64\n");
  EXPECT_NE(m.find("decode.grids.qkv"), std::string::npos) << m;
  EXPECT_NE(m.find("PxQ"), std::string::npos) << m;
  m = message("decode:\n  grids:\n    o: 0x4\n");
  EXPECT_NE(m.find("decode.grids.o"), std::string::npos) << m;
  m = message("decode:\n  wafers: 0\n");
  EXPECT_NE(m.find("decode.wafers"), std::string::npos) << m;
  m = message("decode:\n  weight_sram_share: 1.5\n");
  EXPECT_NE(m.find("decode.weight_sram_share"), std::string::npos) << m;
  m = message("decode:\n  mapping: scattered\n");
  EXPECT_NE(m.find("decode.mapping"), std::string::npos) << m;
  m = message("decode:\n  reduction: ring\n");
  EXPECT_NE(m.find("decode.reduction"), std::string::npos) << m;
  EXPECT_NE(m.find("ktree"), std::string::npos) << m;
  m = message("decode:\n  region: 300by300\n");
  EXPECT_NE(m.find("decode.region"), std::string::npos) << m;
  m = message("decode:\n  accumulate: fp8\n");
  EXPECT_NE(m.find("decode.accumulate"), std::string::npos) << m;
  m = message("decode:\n  attention:\n    kv_layout: round_robin\n");
  EXPECT_NE(m.find("decode.attention.kv_layout"), std::string::npos) << m;
  EXPECT_NE(m.find("balanced"), std::string::npos) << m;
  EXPECT_NE(m.find("doubling"), std::string::npos) << m;
  m = message("decode:\n  attention:\n    fidelity: tiles\n");
  EXPECT_NE(m.find("decode.attention.fidelity"), std::string::npos) << m;
  EXPECT_NE(m.find("per_pe"), std::string::npos) << m;
  m = message("decode:\n  grid:\n    qkv: auto\n");  // a typo
  EXPECT_NE(m.find("grid"), std::string::npos) << m;
}

}  // namespace
}  // namespace wse::wafer
