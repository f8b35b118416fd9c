// Every shipped model and workload YAML loads, reads every key it has, and gives the
// figures the model files promise.
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "systemc_models/config/config.h"
#include "util/systemc_test.h"
#include "workloads/model/transformer.h"
#include "workloads/trace/request_trace.h"

namespace wse::workloads {
namespace {

namespace fs = std::filesystem;

TEST(ShippedConfigs, EveryModelYamlLoads) {
  // Published totals (billions) the counts must round to; see docs/workloads.md.
  const std::map<std::string, double> published{
      {"llama-3.1-8b", 8.0},    {"llama-3.1-70b", 70.6}, {"llama-3.1-405b", 405.9},  {"qwen3-8b", 8.2},
      {"qwen3-32b", 32.8},      {"qwen3-30b-a3b", 30.5}, {"qwen3-235b-a22b", 235.1}, {"mixtral-8x7b", 46.7},
      {"mixtral-8x22b", 140.6}, {"deepseek-v3", 671.0},  {"gpt-oss-20b", 20.9},      {"gpt-oss-120b", 116.8}};
  std::size_t seen = 0;
  for (const auto& e : fs::directory_iterator(testing::source_path("configs/models"))) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    auto doc = config::load(e.path());
    config::Section root = doc.root();
    config::Section m = root.section("model", "model");
    const TransformerModel t = read_transformer(m);
    doc.finish();
    const auto it = published.find(e.path().stem().string());
    ASSERT_NE(it, published.end()) << "a model YAML without a published parameter count in this test";
    EXPECT_NEAR(static_cast<double>(t.parameters()) / 1e9, it->second, 0.05);
    EXPECT_GT(t.kv_bytes(4096), 0u);
    // The resolved configuration (what `wse-emu check` prints) describes the same model.
    auto again = config::parse(doc.resolved_yaml(), "resolved.yaml");
    config::Section root2 = again.root();
    config::Section m2 = root2.section("model", "model");
    const TransformerModel t2 = read_transformer(m2);
    again.finish();
    EXPECT_EQ(t2.parameters(), t.parameters());
    EXPECT_EQ(t2.weight_bytes_by_dtype(), t.weight_bytes_by_dtype());
    EXPECT_EQ(t2.kv_bytes(4096), t.kv_bytes(4096));
    EXPECT_EQ(t2.linear_flops_per_token(), t.linear_flops_per_token());
    EXPECT_EQ(t2.prefill_attention_flops(1000), t.prefill_attention_flops(1000));
    ++seen;
  }
  EXPECT_EQ(seen, 12u);  // one per bundled config.json
}

TEST(ShippedConfigs, EveryWorkloadYamlReads) {
  std::size_t seen = 0;
  for (const auto& e : fs::directory_iterator(testing::source_path("configs/workloads"))) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    auto doc = config::load(e.path());
    config::Section root = doc.root();
    config::Section w = root.section("workload", "workload");
    config::Section t = w.section("trace", "trace");
    const TraceOptions o = read_trace_options(t);
    doc.finish();
    EXPECT_FALSE(read_trace(o).empty());
    ++seen;
  }
  EXPECT_GE(seen, 4u);
}

}  // namespace
}  // namespace wse::workloads
