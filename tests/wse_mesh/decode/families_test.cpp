// Every family the placement maps, end to end with hand-set kernel times: shipped model
// files placed on the number of CS-3s they need, and a decode step lowered and scheduled.
#include <gtest/gtest.h>

#include <memory>

#include "decode_test_util.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {
namespace {

// One cycle per operator; records the largest KV length a sliding layer attends to.
class CountingTimer : public KernelTimer {
 public:
  KernelTiming time(const workloads::Operator& op, const LayerPlan& layer) override {
    if (op.kind == workloads::OpKind::attention && layer.window_tokens > 0) {
      max_sliding_kv = std::max(max_sliding_kv, op.kv_len);
    }
    if (op.kind == workloads::OpKind::gemm && layer.grid(op.name) == nullptr) ++unplaced_gemms;
    KernelTiming t;
    t.cycles = 1;
    return t;
  }
  KernelTiming move(const LayerPlan&, const LayerPlan&, std::uint64_t, std::uint64_t) override { return {}; }
  std::uint64_t max_sliding_kv = 0;
  int unplaced_gemms = 0;
};

struct Family {
  const char* file;
  std::uint32_t wafers;
};

TEST(DecodeFamilies, ShippedModelsPlaceAndStep) {
  const WaferConfig w = test::load_cs3();
  for (const Family f :
       {Family{"qwen3-8b.yaml", 1}, Family{"gpt-oss-20b.yaml", 1}, Family{"qwen3-30b-a3b.yaml", 2},
        Family{"mixtral-8x7b.yaml", 3}, Family{"deepseek-v3.yaml", 20}}) {
    SCOPED_TRACE(f.file);
    const workloads::TransformerModel m = test::load_model(f.file);
    DecodeConfig cfg;
    cfg.wafers = f.wafers;
    auto timer = std::make_unique<CountingTimer>();
    CountingTimer* t = timer.get();
    WaferDecoder d(w, cfg, m, std::move(timer));
    EXPECT_EQ(d.regions().back().wafer, f.wafers - 1);
    EXPECT_GT(d.kv_capacity_tokens(), 10000u);
    const WaferRunResult r = d.decode_step({1000, 3000});
    EXPECT_GT(r.seconds, 0.0);
    if (m.experts > 0) {
      const LayerPlan& last = d.plans().back();
      const TensorGrid* e = last.grid("mlp.experts.down_proj");
      ASSERT_NE(e, nullptr);
      EXPECT_EQ(e->copies, m.experts);
    }
    if (m.has_sliding_layers()) {
      EXPECT_GT(t->max_sliding_kv, 0u);
      EXPECT_LE(t->max_sliding_kv, 128u);  // gpt-oss: 128-token windows
      // Admission counts model.kv_bytes(context): only the full layers (every other one
      // of gpt-oss-20b's 24) grow with the context, so they set the limit.
      EXPECT_EQ(d.kv_capacity_bytes(), d.kv_capacity_tokens() * m.kv_bytes_per_token_per_layer() * 12);
    } else {
      EXPECT_EQ(d.kv_capacity_bytes(), d.kv_capacity_tokens() * m.kv_bytes_per_token());
    }
    // Only MLA's absorbed per-head products have no placed tensor of their name.
    if (m.attention == workloads::AttentionKind::mla) {
      EXPECT_GT(t->unplaced_gemms, 0);
    } else {
      EXPECT_EQ(t->unplaced_gemms, 0);
    }
  }
}

}  // namespace
}  // namespace wse::wafer
