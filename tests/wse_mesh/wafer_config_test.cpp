// The hardware files of the repository read through the schema, and its errors.
#include "wse_mesh/wafer_config.h"

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class WaferConfigTest : public wse::testing::SystemCTest {};

WaferConfig load_wafer(const std::string& relative) {
  config::Document doc = config::load(wse::testing::source_path(relative));
  config::Section root = doc.root();
  config::Section w = root.section("wafer", "the wafer");
  WaferConfig c = read_wafer_config(w);
  doc.finish();  // every key in the file was read
  return c;
}

TEST_F(WaferConfigTest, Cs3File) {
  const WaferConfig c = load_wafer("configs/hardware/cs3.yaml");
  EXPECT_EQ(c.name, "WSE-3");
  EXPECT_EQ(c.width, 762u);
  EXPECT_EQ(c.height, 1176u);
  EXPECT_EQ(c.fabric.width, 762u);
  EXPECT_EQ(c.fabric.colors, 24u);
  EXPECT_DOUBLE_EQ(c.clock.hz, 1.1e9);
  EXPECT_DOUBLE_EQ(c.io_bandwidth.bytes_per_s, 1.2e12 / 8);
  EXPECT_EQ(c.pe.sram_bytes, 48u * 1024);
  EXPECT_EQ(c.pe.simd_fp16_fmac, 8u);
  EXPECT_EQ(c.pe.simd_fp16_fp32_fmac, 4u);
  EXPECT_EQ(c.tile, 1u);
}

TEST_F(WaferConfigTest, Wse2File) {
  const WaferConfig c = load_wafer("configs/hardware/wse2.yaml");
  EXPECT_EQ(c.width, 757u);
  EXPECT_EQ(c.height, 996u);
  EXPECT_EQ(c.pe.simd_fp16_fmac, 4u);
  EXPECT_EQ(c.pe.sram_port_bits, 32u);
  EXPECT_EQ(c.fabric.allocator, SwitchAllocator::kSeparable);
}

TEST_F(WaferConfigTest, OutOfRangeAndUnknownKeysAreErrors) {
  {
    config::Document doc = config::parse("wafer:\n  fabric:\n    colors: 30\n", "w.yaml");
    config::Section root = doc.root();
    config::Section w = root.section("wafer", "the wafer");
    EXPECT_THROW(read_wafer_config(w), config::ConfigError);
  }
  {
    config::Document doc = config::parse("wafer:\n  pe:\n    simd_fp16_fmak: 8\n", "w.yaml");
    config::Section root = doc.root();
    config::Section w = root.section("wafer", "the wafer");
    read_wafer_config(w);
    try {
      doc.finish();
      FAIL() << "expected an unknown-key error";
    } catch (const config::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("simd_fp16_fmac"), std::string::npos) << e.what();  // did you mean
    }
  }
}

}  // namespace
}  // namespace wse::wafer
