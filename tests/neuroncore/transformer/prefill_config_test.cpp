// The reader of the `prefill:` section (prefill_config_reader.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "neuroncore/transformer/prefill_config.h"
#include "systemc_models/config/config.h"

namespace wse::neuron {
namespace {

TEST(PrefillConfigReader, AnEmptySectionIsTheDefaults) {
  auto doc = config::parse("prefill: {}\n", "default.yaml");
  config::Section root = doc.root();
  config::Section pre = root.section("prefill", "prefill");
  const PrefillConfig c = read_prefill_config(pre);
  doc.finish();
  const PrefillConfig d;
  EXPECT_EQ(c.tp_degree, d.tp_degree);
  EXPECT_EQ(c.lnc, d.lnc);
  EXPECT_EQ(c.token_grain, d.token_grain);
  EXPECT_EQ(c.overlap, d.overlap);
  EXPECT_EQ(c.overlap_chunk_tokens, d.overlap_chunk_tokens);
  EXPECT_EQ(c.gemm_dma_piece, d.gemm_dma_piece);
  EXPECT_DOUBLE_EQ(c.host_overhead.seconds, d.host_overhead.seconds);
  EXPECT_EQ(c.physical_cores(), 128u);  // TP 64 x LNC 2
}

TEST(PrefillConfigReader, ValuesAreRead) {
  auto doc = config::parse("prefill:\n  tp_degree: 16\n  lnc: 1\n  overlap: false\n", "p.yaml");
  config::Section root = doc.root();
  config::Section pre = root.section("prefill", "prefill");
  const PrefillConfig c = read_prefill_config(pre);
  doc.finish();
  EXPECT_EQ(c.physical_cores(), 16u);
  EXPECT_FALSE(c.overlap);
}

TEST(PrefillConfigReader, OutOfRangeNamesTheFileAndTheKey) {
  auto doc = config::parse("prefill:\n  tp_degree: 0\n", "bad.yaml");
  config::Section root = doc.root();
  config::Section pre = root.section("prefill", "prefill");
  try {
    read_prefill_config(pre);
    FAIL() << "tp_degree 0 was accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("bad.yaml:2"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("tp_degree"));
  }
}

}  // namespace
}  // namespace wse::neuron
