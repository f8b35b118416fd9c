// The layer pipeline of WaferDecoder with kernel times set by hand (a KernelTimer
// double), so that every start and end can be derived in the comments.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "decode_test_util.h"
#include "wse_mesh/decode/schedule.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {
namespace {

using test::tiny_decode_config;
using test::tiny_llama;
using test::tiny_wafer;

// Cycles per operator from a function; moves take `move_cycles`.
class HandTimer : public KernelTimer {
 public:
  using Fn = std::function<std::uint64_t(const workloads::Operator&, const LayerPlan&)>;
  HandTimer(Fn fn, std::uint64_t move_cycles) : fn_(std::move(fn)), move_cycles_(move_cycles) {}
  KernelTiming time(const workloads::Operator& op, const LayerPlan& layer) override {
    KernelTiming t;
    t.cycles = fn_(op, layer);
    t.pe_busy_cycles = t.cycles;  // one PE busy throughout
    ++calls;
    return t;
  }
  KernelTiming move(const LayerPlan&, const LayerPlan&, std::uint64_t, std::uint64_t bytes) override {
    KernelTiming t;
    t.cycles = move_cycles_;
    moved_bytes += bytes;
    return t;
  }
  int calls = 0;
  std::uint64_t moved_bytes = 0;

 private:
  Fn fn_;
  std::uint64_t move_cycles_;
};

// o_proj takes 500 cycles in layer 0 and 800 in layer 1 (1 GHz: 0.5 and 0.8 us);
// every other operator takes none.
std::uint64_t o_proj_only(const workloads::Operator& op, const LayerPlan&) {
  if (op.name != "self_attn.o_proj") return 0;
  return op.layer == 0 ? 500 : 800;
}

constexpr double kUs = 1e-6;

TEST(DecodeSchedule, TwoWafersThreeMicrobatchesLinkIsFifo) {
  // Two layers on two wafers (one each, 11-row wafers), three sequences of one token,
  // microbatch 1. The link carries 1 token x 64 x 2 B = 128 B per microbatch at
  // 128 MB/s: 1 us, plus 0.5 us latency. Layer 0: 0.5 us, layer 1: 0.8 us.
  //   mb0: L0 [0, 0.5]; link [0.5, 1.5], in at 2.0; L1 [2.0, 2.8]
  //   mb1: L0 [0.5, 1.0]; link waits for mb0's transfer: [1.5, 2.5], in at 3.0;
  //        L1 [3.0, 3.8]
  //   mb2: L0 [1.0, 1.5]; link [2.5, 3.5], in at 4.0; L1 [4.0, 4.8]
  // seconds 4.8 us; layer 0 done at 1.5, layer 1 at 4.8. (Without the FIFO mb2 would
  // start at 3.0 + ... = 4.4 us.) Critical path back from mb2's L1: L1 0.8, latency 0.5,
  // transfers of mb2, mb1, mb0 (3 x 1), mb0's L0 0.5: o_proj 1.3 us, link 3.5 us.
  DecodeConfig cfg = tiny_decode_config();
  cfg.wafers = 2;
  cfg.link_bandwidth = Bandwidth{128e6};
  cfg.link_latency = Duration{0.5e-6};
  auto timer = std::make_unique<HandTimer>(o_proj_only, 0);
  HandTimer* t = timer.get();
  WaferDecoder d(tiny_wafer(11), cfg, tiny_llama(), std::move(timer));
  const WaferRunResult r = d.decode_step({5, 6, 7});
  EXPECT_EQ(r.microbatches, 3u);
  EXPECT_NEAR(r.seconds, 4.8 * kUs, 1e-15);
  ASSERT_EQ(r.layer_done_s.size(), 2u);
  EXPECT_NEAR(r.layer_done_s[0], 1.5 * kUs, 1e-15);
  EXPECT_NEAR(r.layer_done_s[1], 4.8 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("gemm.o"), 1.3 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("link"), 3.5 * kUs, 1e-15);
  double sum = 0.0;
  for (const auto& [kind, s] : r.kernel_seconds) sum += s;
  EXPECT_NEAR(sum, r.seconds, 1e-15);
  EXPECT_EQ(r.link_bytes, 3u * 128u);
  EXPECT_NEAR(r.link_busy, 3.0 / 4.8, 1e-12);  // 3 us of transfers over 4.8 us, one link
  EXPECT_EQ(t->moved_bytes, 0u);               // no move on a wafer: one layer each
  // Every operator of the first microbatch was timed once; the other two have one token
  // each and contexts in the same tokens_per_pe block (6 and 7 tokens cached, 16 per
  // PE), so their work is reused without timing an operator again.
  const std::size_t ops = workloads::lower_decode(tiny_llama(), {5}).ops.size();
  EXPECT_EQ(t->calls, static_cast<int>(ops));
  // With kernel reuse off, all three microbatches are lowered and timed, and the pass
  // takes the same time.
  WaferConfig no_reuse = tiny_wafer(11);
  no_reuse.kernels.reuse = false;
  auto timer2 = std::make_unique<HandTimer>(o_proj_only, 0);
  HandTimer* t2 = timer2.get();
  WaferDecoder d2(no_reuse, cfg, tiny_llama(), std::move(timer2));
  const WaferRunResult r2 = d2.decode_step({5, 6, 7});
  EXPECT_EQ(t2->calls, static_cast<int>(3 * ops));
  EXPECT_EQ(r2.seconds, r.seconds);
  EXPECT_EQ(r2.kv_bytes_read, r.kv_bytes_read);
  EXPECT_EQ(r2.weight_bytes_read, r.weight_bytes_read);
  // PE busy: 3 x (500 + 800) cycles of one PE over 2 wafers x 16 x 11 PEs x 4800 cycles.
  EXPECT_NEAR(r.pe_busy, 3.0 * 1300 / (2.0 * 16 * 11 * 4800), 1e-12);
}

TEST(DecodeSchedule, OneWaferMovesAndRegionsBusy) {
  // Both layers on one wafer; the move between them takes 100 cycles (0.1 us).
  //   mb0: L0 [0, 0.5]; move [0.5, 0.6]; L1 [0.6, 1.4]
  //   mb1: L0 [0.5, 1.0]; move [1.0, 1.1]; L1 waits for mb0: [1.4, 2.2]
  //   mb2: L0 [1.0, 1.5]; move [1.5, 1.6]; L1 [2.2, 3.0]
  // Critical path: mb2 L1 <- mb1 L1 <- mb0 L1 <- move <- mb0 L0: o_proj 2.9, move 0.1.
  auto timer = std::make_unique<HandTimer>(o_proj_only, 100);
  HandTimer* t = timer.get();
  WaferDecoder d(tiny_wafer(20), tiny_decode_config(), tiny_llama(), std::move(timer));
  const WaferRunResult r = d.decode_step({5, 6, 7});
  EXPECT_NEAR(r.seconds, 3.0 * kUs, 1e-15);
  EXPECT_NEAR(r.layer_done_s[0], 1.5 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("gemm.o"), 2.9 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("activation_move"), 0.1 * kUs, 1e-15);
  EXPECT_EQ(r.link_bytes, 0u);
  EXPECT_EQ(r.link_busy, 0.0);
  // The move of one token's 128 B is timed once and reused for the other microbatches.
  EXPECT_EQ(t->moved_bytes, 128u);

  // One microbatch of three: the layers run once each (the double's time does not grow
  // with m): 0.5 + 0.1 + 0.8 = 1.4 us; the move carries 3 tokens x 128 B.
  DecodeConfig one = tiny_decode_config();
  one.microbatch = 3;
  auto timer2 = std::make_unique<HandTimer>(o_proj_only, 100);
  HandTimer* t2 = timer2.get();
  WaferDecoder d2(tiny_wafer(20), one, tiny_llama(), std::move(timer2));
  const WaferRunResult r2 = d2.decode_step({5, 6, 7});
  EXPECT_EQ(r2.microbatches, 1u);
  EXPECT_NEAR(r2.seconds, 1.4 * kUs, 1e-15);
  EXPECT_EQ(t2->moved_bytes, 384u);
}

TEST(DecodeSchedule, SequencesOfAMicrobatchAttendAtOnce) {
  // Attention of sequence i takes 100 (i + 1) cycles; the three sequences of one
  // microbatch hold disjoint PEs, so a layer waits for the slowest: 300 cycles, not 600.
  // Two layers, no move time: 0.6 us.
  DecodeConfig cfg = tiny_decode_config();
  cfg.microbatch = 3;
  auto timer = std::make_unique<HandTimer>(
      [](const workloads::Operator& op, const LayerPlan&) -> std::uint64_t {
        return op.kind == workloads::OpKind::attention ? 100 * (op.sequence + 1) : 0;
      },
      0);
  WaferDecoder d(tiny_wafer(20), cfg, tiny_llama(), std::move(timer));
  const WaferRunResult r = d.decode_step({5, 6, 7});
  EXPECT_NEAR(r.seconds, 0.6 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("attention"), 0.6 * kUs, 1e-15);
}

TEST(DecodeSchedule, ExpertGroupsOfOneWeightRunAtOnce) {
  // A tiny Mixtral: 4 experts, top 2, MLP 128 wide. Three tokens in one microbatch: 6
  // assignments, uniform routing gives 2 experts 2 tokens and 2 experts 1 token: two
  // operators per expert weight (m = 2 and m = 1), each expert on its own grid. The
  // expert gate projection takes 100 m cycles: per layer max(200, 100) = 200, not 300;
  // two layers: 0.4 us.
  auto doc = config::parse(
      "model:\n  name: tiny-moe\n  model_type: mixtral\n  hidden_size: 64\n  intermediate_size: 128\n"
      "  num_attention_heads: 4\n  num_key_value_heads: 2\n  num_hidden_layers: 2\n  vocab_size: 256\n"
      "  num_local_experts: 4\n  num_experts_per_tok: 2\n  tie_word_embeddings: false\n",
      "tiny-moe.yaml");
  config::Section root = doc.root();
  config::Section ms = root.section("model", "model");
  const workloads::TransformerModel moe = workloads::read_transformer(ms);
  doc.finish();
  DecodeConfig cfg = tiny_decode_config();
  cfg.microbatch = 3;
  cfg.grids["experts"] = {2, 4};
  cfg.grids["router"] = {1, 1};
  auto timer = std::make_unique<HandTimer>(
      [](const workloads::Operator& op, const LayerPlan&) -> std::uint64_t {
        return op.name == "mlp.experts.gate_proj" ? 100 * op.m : 0;
      },
      0);
  WaferDecoder d(tiny_wafer(40), cfg, moe, std::move(timer));
  const TensorGrid* gate = d.plans()[0].grid("mlp.experts.gate_proj");
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ(gate->copies, 4u);
  EXPECT_EQ(gate->kind, "experts");
  ASSERT_EQ(gate->origins.size(), 4u);
  EXPECT_NE(gate->origins[0], gate->origins[1]);
  const WaferRunResult r = d.decode_step({5, 6, 7});
  EXPECT_NEAR(r.seconds, 0.4 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("gemm.experts"), 0.4 * kUs, 1e-15);
}

TEST(DecodeSchedule, EmbeddingOnFirstLayerHeadOnLast) {
  // The embedding (1 us) runs in layer 0's region, the LM head (2 us) in layer 1's; the
  // double checks which plan each is given.
  auto timer = std::make_unique<HandTimer>(
      [](const workloads::Operator& op, const LayerPlan& p) -> std::uint64_t {
        if (op.kind == workloads::OpKind::embedding) return p.region.layer == 0 ? 1000 : 999999;
        if (op.name == "lm_head") return p.region.layer == 1 ? 2000 : 999999;
        return 0;
      },
      0);
  WaferDecoder d(tiny_wafer(20), tiny_decode_config(), tiny_llama(), std::move(timer));
  const WaferRunResult r = d.decode_step({9});
  EXPECT_NEAR(r.layer_done_s[0], 1.0 * kUs, 1e-15);
  EXPECT_NEAR(r.seconds, 3.0 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("embedding"), 1.0 * kUs, 1e-15);
  EXPECT_NEAR(r.kernel_seconds.at("gemm.lm_head"), 2.0 * kUs, 1e-15);
}

TEST(DecodeSchedule, BatchBeyondKvCapacityIsRefused) {
  // 8021 tokens per layer fit (placement test); two sequences of 4100 do not.
  WaferDecoder d(tiny_wafer(20), tiny_decode_config(), tiny_llama(),
                 std::make_unique<HandTimer>(o_proj_only, 0));
  EXPECT_NO_THROW(d.decode_step({8020}));
  try {
    d.decode_step({4100, 4100});
    FAIL() << "expected a CapacityError";
  } catch (const CapacityError& e) {
    // 2 x 4101 tokens x 128 B = 1049856 B against 1026816 in layer 0.
    EXPECT_EQ(e.shortfall_bytes(), 1049856u - 1026816u);
    EXPECT_NE(std::string(e.what()).find("layer 0"), std::string::npos) << e.what();
  }
  // The attention's tokens per PE grow when the batch needs more PEs than the region:
  // 8021 tokens x 2 heads at 16 per PE need 1004 PEs > 160 (16 x 10). Balanced layout
  // (the default): the fewest with which the heads fit, 2 ceil(8021 / t) <= 160, first at
  // t = 101 (80 blocks of 101 hold 8080; at 100, 81 blocks). The refused batch above
  // changed nothing (it would have taken 103: 4 ceil(4101 / t) <= 160).
  d.decode_step({8020});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 101u);
  d.decode_step({10});  // the longest context left its bucket: back to tokens_per_pe
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 16u);
  // The doubling layout (ablation): 16 -> 128 (2 x 63 = 126 PEs), PEs holding 27 tokens
  // more than they must.
  DecodeConfig doubling = tiny_decode_config();
  doubling.kv_layout = KvLayout::kDoubling;
  WaferDecoder dd(tiny_wafer(20), doubling, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  dd.decode_step({8020});
  EXPECT_EQ(dd.plans()[0].attention_tokens_per_pe, 128u);
  dd.decode_step({10});
  EXPECT_EQ(dd.plans()[0].attention_tokens_per_pe, 16u);
}

// A balanced layout that must change moves the cache, and the move is timed.
TEST(DecodeSchedule, KvRelayoutIsTimedWhenTokensPerPeChange) {
  const DecodeConfig exact = tiny_decode_config();  // exactly the fewest that fit (layout_steps 0)
  WaferDecoder d(tiny_wafer(20), exact, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  WaferDecoder fresh(tiny_wafer(20), exact, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  // 7901 tokens, 2 heads, 160 PEs: 2 ceil(7901 / t) <= 160 first at t = 99 (80 x 99 = 7920).
  d.decode_step({7900});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 99u);
  // A prefill pass between steps runs its attention at its own layout (a 50-token prompt
  // alone: tokens_per_pe, 16) and leaves the decode layout as it was.
  d.prefill({50});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 16u);
  const WaferRunResult same = d.decode_step({7901});  // 7902 still fit, same bucket: kept
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 99u);
  EXPECT_EQ(same.kernel_seconds.count("kv_relayout"), 0u);
  // A sequence of 101 tokens joins: ceil(7903 / t) + ceil(101 / t) <= 80 first at t = 101
  // (79 + 1; at 100, 80 + 2). The long sequence's 7,902 cached tokens move from blocks of
  // 99 into blocks of 101 (the short one's 100 move one token, less). tiny_llama: D = 16,
  // fp16, so a token is 2 x 8 = 16 wavelets, and its store 8 K wavelets x 2 cycles (SIMD 1,
  // two values) + 8 V wavelets x 1 = 24 cycles. Region 16 wide: both layouts 16 columns.
  //  - busiest boundary, after k = 78 blocks: 78 x 101 - 78 x 99 = 156 tokens (k = 79:
  //    7902 - 7821 = 81), 156 x 16 = 2,496 wavelets over the 16 + 1 links across the cut
  //    (both layouts span 5 rows): 147 cycles;
  //  - most received: new block 50 (5,050..5,150) held nothing of it (old block 50 is
  //    4,950..5,048): 101 tokens x 24 = 2,424 cycles;
  //  - farthest: token 1,584 goes from old block 16 (row 1, column 0) to new block 15
  //    (row 0, column 15): 16 hops x 1 cycle.
  // max(147, 2,424) + 16 = 2,440 cycles = 2.44 us at 1 GHz, before the pass.
  const WaferRunResult moved = d.decode_step({7902, 100});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 101u);
  ASSERT_EQ(moved.kernel_seconds.count("kv_relayout"), 1u);
  EXPECT_NEAR(moved.kernel_seconds.at("kv_relayout"), 2440e-9, 1e-15);
  const WaferRunResult unmoved = fresh.decode_step({7902, 100});  // the layout the prefill built
  EXPECT_EQ(fresh.plans()[0].attention_tokens_per_pe, 101u);
  EXPECT_EQ(unmoved.kernel_seconds.count("kv_relayout"), 0u);
  EXPECT_NEAR(moved.seconds - unmoved.seconds, 2440e-9, 1e-15);
  double sum = 0.0;
  for (const auto& [kind, t] : moved.kernel_seconds) sum += t;
  EXPECT_NEAR(sum, moved.seconds, 1e-15);
  // The doubling ablation re-chooses every pass and moves for free: 128 per PE throughout.
  DecodeConfig doubling = tiny_decode_config();
  doubling.kv_layout = KvLayout::kDoubling;
  WaferDecoder dd(tiny_wafer(20), doubling, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  dd.decode_step({7900});
  EXPECT_EQ(dd.plans()[0].attention_tokens_per_pe, 128u);
  const WaferRunResult free_move = dd.decode_step({7902, 100});
  EXPECT_EQ(dd.plans()[0].attention_tokens_per_pe, 128u);
  EXPECT_EQ(free_move.kernel_seconds.count("kv_relayout"), 0u);
  // A bench row forgets the kept layout: the same batch then moves nothing.
  d.reset_kv_layout();
  d.decode_step({7900});
  EXPECT_EQ(d.decode_step({7902, 100}).kernel_seconds.count("kv_relayout"), 1u);
  d.reset_kv_layout();
  EXPECT_EQ(d.decode_step({7902, 100}).kernel_seconds.count("kv_relayout"), 0u);
}

// Headroom (decode.attention.layout_steps 4: four values a doubling) spares moves as a
// batch grows. 3,001 tokens: 2 ceil(3001 / t) <= 160 first at t = 38, whose next step is
// 40 (5 x 8; under the PE's share, 1,026,816 / 160 / 64 B a token = 100). At 3,101 tokens
// the least is 39: the layout of 40 still fits and stays, where the exact layout (the
// default) moves from 38 to 39. Near the share the headroom is capped: 8,021 tokens
// (least 101, next step 112) take 101, 7,901 (least 99) take 100.
TEST(DecodeSchedule, LayoutHeadroomSparesMovesAsTheBatchGrows) {
  DecodeConfig headroom = tiny_decode_config();
  headroom.kv_layout_steps = 4;
  WaferDecoder d(tiny_wafer(20), headroom, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  d.decode_step({3000});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 40u);
  EXPECT_EQ(d.decode_step({3100}).kernel_seconds.count("kv_relayout"), 0u);
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 40u);
  d.reset_kv_layout();
  d.decode_step({8020});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 101u);
  d.reset_kv_layout();
  d.decode_step({7900});
  EXPECT_EQ(d.plans()[0].attention_tokens_per_pe, 100u);
  const DecodeConfig exact = tiny_decode_config();
  WaferDecoder e(tiny_wafer(20), exact, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  e.decode_step({3000});
  EXPECT_EQ(e.plans()[0].attention_tokens_per_pe, 38u);
  EXPECT_EQ(e.decode_step({3100}).kernel_seconds.count("kv_relayout"), 1u);
  EXPECT_EQ(e.plans()[0].attention_tokens_per_pe, 39u);
}

TEST(DecodeSchedule, StatisticsCountPasses) {
  WaferDecoder d(tiny_wafer(20), tiny_decode_config(), tiny_llama(),
                 std::make_unique<HandTimer>(o_proj_only, 100));
  d.decode_step({5, 6, 7});
  d.prefill({4, 4});
  const stats::Group& g = d.stats();
  std::uint64_t passes = 0, mbs = 0, tokens = 0;
  for (const auto& s : g.stats()) {
    if (const auto* c = dynamic_cast<const stats::Counter*>(s.get())) {
      if (c->name() == "passes") passes = c->value();
      if (c->name() == "microbatches") mbs = c->value();
      if (c->name() == "tokens") tokens = c->value();
    }
  }
  EXPECT_EQ(passes, 2u);
  EXPECT_EQ(mbs,
            11u);  // 3 + 8: each prompt of 4 tokens is cut into 4 one-token pieces (prefill_chunk_tokens 1)
  EXPECT_EQ(tokens, 11u);  // 3 + 8
}

}  // namespace
}  // namespace wse::wafer

namespace wse::wafer {
namespace {

TEST(DecodeSchedule, PromptTokensFlowThroughTheLayersAsAPipeline) {
  // A prompt of 4 tokens on two layers of one wafer (no move cost), o_proj 0.5 us in
  // layer 0 and 0.8 us in layer 1 whatever the token count (hand timer).
  // prefill_chunk_tokens 1: four one-token microbatches pipelined:
  //   t0: L0 [0, 0.5], L1 [0.5, 1.3]; t1: L0 [0.5, 1.0], L1 [1.3, 2.1];
  //   t2: L0 [1.0, 1.5], L1 [2.1, 2.9]; t3: L0 [1.5, 2.0], L1 [2.9, 3.7]
  // -> 3.7 us, layer 0 done at 2.0 us. prefill_chunk_tokens 4: one microbatch, 1.3 us.
  DecodeConfig cfg = tiny_decode_config();
  cfg.prefill_chunk_tokens = 1;
  WaferDecoder d(tiny_wafer(20), cfg, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  const WaferRunResult r = d.prefill({4});
  EXPECT_EQ(r.microbatches, 4u);
  EXPECT_NEAR(r.seconds, 3.7 * kUs, 1e-15);
  ASSERT_EQ(r.layer_done_s.size(), 2u);
  EXPECT_NEAR(r.layer_done_s[0], 2.0 * kUs, 1e-15);
  // The pieces write the prompt's KV once: four tokens' worth.
  EXPECT_EQ(r.kv_bytes_written, tiny_llama().kv_bytes(4));

  cfg.prefill_chunk_tokens = 4;
  WaferDecoder whole(tiny_wafer(20), cfg, tiny_llama(), std::make_unique<HandTimer>(o_proj_only, 0));
  const WaferRunResult w = whole.prefill({4});
  EXPECT_EQ(w.microbatches, 1u);
  EXPECT_NEAR(w.seconds, 1.3 * kUs, 1e-15);
  EXPECT_EQ(w.kv_bytes_written, tiny_llama().kv_bytes(4));
}

TEST(DecodeSchedule, KernelKindTableHoldsEveryKindAnOperatorIsChargedTo) {
  // kernel_kind gives "gemm.<grid kind>" for a GEMM with a grid (8 kGridKinds) or
  // "gemm.other" without, and the operator kind's name otherwise (8 kinds besides gemm);
  // microbatch_work adds "kernel_move": 8 + 1 + 8 + 1 = 18 entries, each once.
  EXPECT_EQ(kKernelKindCount, 18u);
  for (std::string_view grid : kGridKinds) {
    const std::string kind = "gemm." + std::string(grid);
    EXPECT_EQ(kKernelKinds[kernel_kind_index(kind)], kind);
  }
  EXPECT_EQ(kKernelKinds[kernel_kind_index("gemm.other")], "gemm.other");
  for (workloads::OpKind k :
       {workloads::OpKind::embedding, workloads::OpKind::norm, workloads::OpKind::rope,
        workloads::OpKind::attention, workloads::OpKind::activation, workloads::OpKind::router,
        workloads::OpKind::expert_combine, workloads::OpKind::residual_add}) {
    EXPECT_EQ(kKernelKinds[kernel_kind_index(workloads::to_string(k))], workloads::to_string(k));
  }
  EXPECT_EQ(kKernelKinds[kernel_kind_index("kernel_move")], "kernel_move");
  // Indices are positions: the table has no duplicate.
  for (std::size_t i = 0; i < kKernelKindCount; ++i) EXPECT_EQ(kernel_kind_index(kKernelKinds[i]), i);
  EXPECT_THROW(kernel_kind_index("gemm.unknown"), std::logic_error);
}

}  // namespace
}  // namespace wse::wafer
