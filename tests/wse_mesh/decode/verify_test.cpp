// A speculative verification pass on the wafer (docs/serving.md, "Speculative
// decoding"), with kernel times set by hand: k + 1 tokens of one request at its context,
// every one through the LM head, run as pieces of decode.prefill_chunk_tokens (1) that
// flow through the layer regions one microbatch each.
#include <gtest/gtest.h>

#include <memory>

#include "decode_test_util.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {
namespace {

using test::tiny_decode_config;
using test::tiny_llama;
using test::tiny_wafer;

// o_proj takes 500 cycles in layer 0 and 800 in layer 1 (1 GHz), the LM head `head`
// cycles, every other operator none; a move between the layers' regions 100 cycles.
class VerifyTimer : public KernelTimer {
 public:
  explicit VerifyTimer(std::uint64_t head) : head_(head) {}
  KernelTiming time(const workloads::Operator& op, const LayerPlan& /*layer*/) override {
    KernelTiming t;
    if (op.name == "self_attn.o_proj") t.cycles = op.layer == 0 ? 500 : 800;
    if (op.name == "lm_head") {
      t.cycles = head_;
      head_rows += op.m;
    }
    return t;
  }
  KernelTiming move(const LayerPlan&, const LayerPlan&, std::uint64_t, std::uint64_t) override {
    KernelTiming t;
    t.cycles = 100;
    return t;
  }
  std::uint64_t head_rows = 0;  // LM-head rows timed (kernels reused are not timed again)

 private:
  std::uint64_t head_;
};

constexpr double kUs = 1e-6;

TEST(DecodeVerify, KPlusOneTokensFlowAsOneTokenPieces) {
  // Verification of k = 2 drafts of one request with 5 tokens cached: 3 tokens at
  // positions 5, 6, 7 (prefill_chunk_tokens 1: 3 pieces, microbatch 1), each through the
  // LM head (none here). Both layers on one 20-row wafer:
  //   piece 0: L0 [0, 0.5]; move [0.5, 0.6]; L1 [0.6, 1.4]
  //   piece 1: L0 [0.5, 1.0]; move [1.0, 1.1]; L1 waits for piece 0: [1.4, 2.2]
  //   piece 2: L0 [1.0, 1.5]; move [1.5, 1.6]; L1 [2.2, 3.0]
  // 3.0 us, the time of a decode step of three requests at contexts 5, 6 and 7; a plain
  // decode step of the one request is 0.5 + 0.1 + 0.8 = 1.4 us.
  WaferDecoder d(tiny_wafer(20), tiny_decode_config(), tiny_llama(), std::make_unique<VerifyTimer>(0));
  const WaferRunResult v = d.forward({workloads::Sequence{3, 5, true, true}});
  EXPECT_EQ(v.microbatches, 3u);
  EXPECT_NEAR(v.seconds, 3.0 * kUs, 1e-15);
  WaferDecoder d2(tiny_wafer(20), tiny_decode_config(), tiny_llama(), std::make_unique<VerifyTimer>(0));
  EXPECT_NEAR(d2.decode_step({5}).seconds, 1.4 * kUs, 1e-15);
  EXPECT_NEAR(d2.decode_step({5, 6, 7}).seconds, v.seconds, 1e-15);
}

TEST(DecodeVerify, EveryPieceGoesThroughTheLmHead) {
  // The LM head takes 1,000 cycles. With logits_all each of the 3 pieces has one logit
  // row; without it (a prefill chunk) only the last piece has one. The pieces' LM-head
  // kernels are timed on 1-row GEMMs: 3 rows timed (the pieces differ in context, so
  // none is reused from another's), against 1.
  auto t = std::make_unique<VerifyTimer>(1000);
  VerifyTimer* timer = t.get();
  WaferConfig no_reuse = tiny_wafer(20);
  no_reuse.kernels.reuse = false;
  WaferDecoder d(no_reuse, tiny_decode_config(), tiny_llama(), std::move(t));
  const WaferRunResult v = d.forward({workloads::Sequence{3, 5, true, true}});
  EXPECT_EQ(timer->head_rows, 3u);
  auto t2 = std::make_unique<VerifyTimer>(1000);
  VerifyTimer* timer2 = t2.get();
  WaferDecoder d2(no_reuse, tiny_decode_config(), tiny_llama(), std::move(t2));
  const WaferRunResult c = d2.forward({workloads::Sequence{3, 5, true, false}});
  EXPECT_EQ(timer2->head_rows, 1u);
  // Two more LM-head passes on the way: the verification is slower.
  EXPECT_GT(v.seconds, c.seconds);
}

}  // namespace
}  // namespace wse::wafer
