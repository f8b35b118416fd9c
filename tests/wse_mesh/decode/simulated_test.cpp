// A real decode step: the tiny model on the tiny wafer, every operator timed by the
// wse_mesh kernels (SimulatedKernels), checked against the kernels run directly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <memory>
#include <string>

#include "decode_test_util.h"
#include "wse_mesh/decode/simulated_kernels.h"
#include "wse_mesh/decode/wafer_decoder.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/attention_tiled.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/vector_kernels.h"

namespace wse::wafer {
namespace {

using test::tiny_decode_config;
using test::tiny_llama;
using test::tiny_wafer;

std::uint64_t counter(const stats::Group& g, const std::string& name) {
  for (const auto& s : g.stats()) {
    if (const auto* c = dynamic_cast<const stats::Counter*>(s.get()); c && c->name() == name)
      return c->value();
  }
  return 0;
}

TEST(DecodeSimulated, OneSequenceStepIsTheSumOfItsKernels) {
  // One sequence: no pipelining, so the step is layer 0 then the move then layer 1, and
  // each kernel kind's share is its kernels' cycles summed over both layers.
  const WaferConfig w = tiny_wafer(20);
  const workloads::TransformerModel m = tiny_llama();
  WaferDecoder d(w, tiny_decode_config(), m);
  const WaferRunResult r = d.decode_step({40});
  ASSERT_GT(r.seconds, 0.0);
  double sum = 0.0;
  for (const auto& [kind, s] : r.kernel_seconds) sum += s;
  EXPECT_NEAR(sum, r.seconds, 1e-12);

  // q (64 x 64), k and v (32 x 64) on their configured 2 x 2 grids, one vector, per-PE.
  const auto gemv = [&](std::uint64_t rows, std::uint64_t cols) {
    GemvConfig g;
    g.rows = rows;
    g.cols = cols;
    g.grid_rows = 2;
    g.grid_cols = 2;
    g.accumulate = Accumulate::kFp32;
    return run_gemv(w.fabric, w.pe, g).total_cycles;
  };
  // q, k and v read the same input and sit on disjoint grids: they run at once, and the
  // slowest (q, 64 rows against 32) sets the time of the three.
  ASSERT_GT(gemv(64, 64), gemv(32, 64));
  const double qkv_cycles = static_cast<double>(gemv(64, 64));
  EXPECT_NEAR(r.kernel_seconds.at("gemm.qkv"), 2 * qkv_cycles / 1e9, 1e-12);
  EXPECT_NEAR(r.kernel_seconds.at("gemm.o"), 2.0 * static_cast<double>(gemv(64, 64)) / 1e9, 1e-12);

  // Attention: 4 query heads over 2 KV heads of 16, 1 query, 16 tokens per PE (the
  // configured default), bf16 cache, chain combine; the 40 cached tokens and the new one
  // take 3 blocks, rounded up to full blocks: 47 cached.
  AttentionConfig a;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = 16;
  a.context = 47;
  a.query_tokens = 1;
  a.tokens_per_pe = 16;
  a.kv_bytes = 2;
  a.reduction = Reduction::kChain;
  EXPECT_NEAR(r.kernel_seconds.at("attention"),
              2.0 * static_cast<double>(run_attention(w.fabric, w.pe, a).total_cycles) / 1e9, 1e-12);

  // Every layer after the first reuses its kernels.
  EXPECT_GT(counter(d.stats(), "kernels_reused"), 0u);
  EXPECT_GT(counter(d.stats(), "kernels_simulated"), 0u);
  EXPECT_GT(r.fabric_link_busy, 0.0);
  EXPECT_LE(r.fabric_link_busy, 1.0);
  EXPECT_GT(r.pe_busy, 0.0);
  EXPECT_LE(r.pe_busy, 1.0);
  EXPECT_GT(r.sram_port_busy, 0.0);
  EXPECT_LE(r.sram_port_busy, 1.0);
  EXPECT_EQ(r.kv_bytes_written, 2u * 128u);     // one token, two layers
  EXPECT_EQ(r.kv_bytes_read, 2u * 41u * 128u);  // 41 tokens (with the new one) per layer
}

// Tiled fidelity (wafer.tile 2): the decode attention runs as run_attention_tiled at
// k = 2, unless decode.attention.fidelity is per_pe, which keeps run_attention's cycles.
// Same step as above: 3 blocks of 16 tokens, one row of 3 PEs (nodes of PEs 0-1 and 2).
TEST(DecodeSimulated, DecodeAttentionFollowsTheFidelitySwitch) {
  WaferConfig w = tiny_wafer(20);
  w.tile = 2;
  const workloads::TransformerModel m = tiny_llama();
  AttentionConfig a;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = 16;
  a.context = 47;
  a.tokens_per_pe = 16;
  a.kv_bytes = 2;
  a.reduction = Reduction::kChain;
  const std::uint64_t tiled = run_attention_tiled(w.fabric, 2, w.pe, a).total_cycles;
  const std::uint64_t per_pe = run_attention(w.fabric, w.pe, a).total_cycles;
  EXPECT_NE(tiled, per_pe);  // the chain edge inside node 0 is one hop H shorter
  EXPECT_EQ(tiled + 1, per_pe);
  WaferDecoder d(w, tiny_decode_config(), m);
  EXPECT_NEAR(d.decode_step({40}).kernel_seconds.at("attention"), 2.0 * static_cast<double>(tiled) / 1e9,
              1e-12);
  DecodeConfig c = tiny_decode_config();
  c.attention_tiled = false;
  WaferDecoder p(w, c, m);
  EXPECT_NEAR(p.decode_step({40}).kernel_seconds.at("attention"), 2.0 * static_cast<double>(per_pe) / 1e9,
              1e-12);
}

TEST(DecodeSimulated, ContextsOfOneBlockShareAResult) {
  // 5 and 12 cached tokens (+ the new one) fill one block of 16: one attention result;
  // 16 needs a second block.
  WaferDecoder d(tiny_wafer(20), tiny_decode_config(), tiny_llama());
  const double five = d.decode_step({5}).seconds;
  const std::uint64_t simulated = counter(d.stats(), "kernels_simulated");
  EXPECT_DOUBLE_EQ(d.decode_step({12}).seconds, five);
  EXPECT_EQ(counter(d.stats(), "kernels_simulated"), simulated);
  EXPECT_NE(d.decode_step({16}).seconds, five);
  EXPECT_EQ(counter(d.stats(), "kernels_simulated"), simulated + 1);
}

// No PE overflows early: 8,021 tokens of 2 KV heads on the 160 PEs of a layer region.
// The attention's fullest PE holds K and V (tpp x 16 values x 2 x 2 B = 64 tpp), the G = 2
// query vectors (2 x 16 x 2 B = 64), fp32 scores (2 tpp x 4 B = 8 tpp) and partial results
// (2 x 18 x 4 B = 144): 72 tpp + 208 B of its 8,192, so at most 110 tokens a PE. The
// balanced layout takes 101 (7,480 B); doubling takes 128 and overflows, although the
// batch's KV bytes fit the region: K and V alone fill the 8 KiB, and the first query
// vector (1 x 16 fp16, 32 B) is the tensor named short.
TEST(DecodeSimulated, BalancedKvLayoutHoldsWhatDoublingOverflows) {
  WaferDecoder balanced(tiny_wafer(20), tiny_decode_config(), tiny_llama());
  EXPECT_NO_THROW(balanced.decode_step({8020}));
  EXPECT_EQ(balanced.plans()[0].attention_tokens_per_pe, 101u);
  DecodeConfig cfg = tiny_decode_config();
  cfg.kv_layout = KvLayout::kDoubling;
  WaferDecoder doubling(tiny_wafer(20), cfg, tiny_llama());
  try {
    doubling.decode_step({8020});
    FAIL() << "128 tokens per PE do not fit an 8 KiB PE";
  } catch (const CapacityError& e) {
    EXPECT_EQ(e.shortfall_bytes(), 32u) << e.what();
    EXPECT_NE(std::string(e.what()).find("K cache (128 tokens x 16 fp16) 4 KiB"), std::string::npos)
        << e.what();
  }
}

TEST(DecodeSimulated, ReuseChangesNothing) {
  WaferConfig w = tiny_wafer(20);
  WaferDecoder on(w, tiny_decode_config(), tiny_llama());
  w.kernels.reuse = false;
  WaferDecoder off(w, tiny_decode_config(), tiny_llama());
  const WaferRunResult a = on.decode_step({5, 30, 7});
  const WaferRunResult b = off.decode_step({5, 30, 7});
  EXPECT_DOUBLE_EQ(a.seconds, b.seconds);
  EXPECT_EQ(a.kernel_seconds, b.kernel_seconds);
  EXPECT_EQ(counter(off.stats(), "kernels_reused"), 0u);
  EXPECT_GT(counter(on.stats(), "kernels_reused"), 0u);
  EXPECT_LT(counter(on.stats(), "kernels_simulated"), counter(off.stats(), "kernels_simulated"));
}

TEST(DecodeSimulated, PipelineAndMicrobatchesAndPrefill) {
  const WaferConfig w = tiny_wafer(20);
  // Three sequences in three microbatches overlap across the two layer regions: faster
  // than three single-sequence steps, slower than one.
  WaferDecoder d(w, tiny_decode_config(), tiny_llama());
  const double one = d.decode_step({5}).seconds;
  const WaferRunResult three = d.decode_step({5, 5, 5});
  EXPECT_GT(three.seconds, one);
  EXPECT_LT(three.seconds, 3 * one);
  // The same three as one microbatch: GEMMs of 3 vectors in passes of gemm_vectors = 1.
  DecodeConfig mb = tiny_decode_config();
  mb.microbatch = 3;
  WaferDecoder d3(w, mb, tiny_llama());
  const WaferRunResult r3 = d3.decode_step({5, 5, 5});
  EXPECT_EQ(r3.microbatches, 1u);
  EXPECT_GT(r3.seconds, one);
  // A prefill chunk of 4 tokens runs and writes their KV.
  const WaferRunResult p = d.prefill({4});
  EXPECT_GT(p.seconds, 0.0);
  EXPECT_EQ(p.kv_bytes_written, 2u * 4u * 128u);
}

}  // namespace
}  // namespace wse::wafer

namespace wse::wafer {
namespace {

TEST(DecodeSimulated, GemmOfMoreTokensThanBuffersRunsInPasses) {
  // gemm_vectors 2: a q projection of 3 tokens runs a pass of 2 vectors, then one of 1.
  const WaferConfig w = test::tiny_wafer(20);
  DecodeConfig cfg = test::tiny_decode_config();
  cfg.gemm_vectors = 2;
  WaferDecoder d(w, cfg, test::tiny_llama());
  // The placement counts two vectors' x segments and accumulators: q on 2 x 2 holds
  // 2048 + 2 x (64 + 128) = 2432 B per PE.
  EXPECT_EQ(d.plans()[0].grid("self_attn.q_proj")->pe_bytes, 2432u);
  KernelCache cache;
  SimulatedKernelOptions o;
  o.placement = cfg.placement();
  o.accumulate = cfg.accumulate;
  o.reduction_auto = cfg.reduction_auto;
  o.reduction = cfg.reduction;
  SimulatedKernels k(w, o, cache);
  const workloads::OperatorGraph g = workloads::lower_decode(test::tiny_llama(), {5, 6, 7});
  const workloads::Operator* q = nullptr;
  for (const auto& op : g.ops) {
    if (op.name == "self_attn.q_proj" && op.layer == 0) q = &op;
  }
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(q->m, 3u);
  GemvConfig c;
  c.rows = 64;
  c.cols = 64;
  c.grid_rows = 2;
  c.grid_cols = 2;
  c.accumulate = Accumulate::kFp32;
  c.vectors = 2;
  const std::uint64_t two = run_gemv(w.fabric, w.pe, c).total_cycles;
  c.vectors = 1;
  const std::uint64_t one = run_gemv(w.fabric, w.pe, c).total_cycles;
  EXPECT_EQ(k.time(*q, d.plans()[0]).cycles, two + one);
  EXPECT_LT(two, 2 * one);  // two vectors pipeline through the grid
}

}  // namespace
}  // namespace wse::wafer

namespace wse::wafer {
namespace {

// A decode attention operator of `q_heads` query heads on 8 KV heads of 128 (bf16 KV).
workloads::Operator decode_attention_op(std::uint32_t q_heads) {
  workloads::Operator op;
  op.kind = workloads::OpKind::attention;
  op.name = "self_attn";
  op.q_heads = q_heads;
  op.kv_heads = 8;
  op.qk_head_dim = 128;
  op.v_head_dim = 128;
  op.query_len = 1;
  op.weight_dtype = workloads::DType::bf16;
  return op;
}

// The attention kernel of `q_heads` query heads on 8 KV heads, 4 tokens per PE, rows of
// `cols` PEs.
AttentionConfig head_grid(std::uint32_t q_heads, std::uint32_t head_dim, std::uint32_t cols, Reduction red) {
  AttentionConfig a;
  a.q_heads = q_heads;
  a.kv_heads = 8;
  a.head_dim = head_dim;
  a.tokens_per_pe = 4;
  a.max_grid_cols = cols;
  a.reduction = red;
  return a;
}

// Decode attention over many token blocks is simulated at sample points (multiples of
// attention_block_grain, coarser past 32 grains, never across a row wrap) and
// interpolated in between. Llama-3.1-8B's heads (32 query heads on 8 KV heads of 128), 16
// tokens per PE, 64 PE columns per head row, WSE-3 PEs, per-PE fabric, chain combine: for
// block counts from 20 to 2,100 the interpolated time is within 1% of simulating the
// block count itself (measured worst: 0.39%), and a sample point is the simulation itself.
TEST(DecodeSimulated, SampledAttentionBlocksStayWithinOnePercent) {
  const WaferConfig w = test::load_cs3();
  KernelCache cache;
  SimulatedKernelOptions exact_opt, sampled_opt;
  exact_opt.attention_block_grain = 0;
  sampled_opt.attention_block_grain = 16;
  SimulatedKernels exact(w, exact_opt, cache), sampled(w, sampled_opt, cache);
  LayerPlan plan;
  plan.attention_tokens_per_pe = 16;
  // A head's blocks wrap onto a new PE row every 64 (the region's width): 75, 130 and
  // 201 blocks lie in grain intervals where they do (64 | 80, 128 | 144, 192 | 208), so
  // they are interpolated between the block counts beside the wrap with their own rows.
  plan.region.width = 64;
  workloads::Operator op = decode_attention_op(32);
  double worst = 0.0;
  for (std::uint64_t blocks : {20, 37, 75, 130, 201, 700, 1500, 2100}) {
    op.kv_len = blocks * 16 - 3;  // a context in the middle of its last block
    const double e = static_cast<double>(exact.time(op, plan).cycles);
    const double s = static_cast<double>(sampled.time(op, plan).cycles);
    worst = std::max(worst, std::abs(s - e) / e);
    EXPECT_NEAR(s, e, 0.01 * e) << blocks << " blocks";
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
  std::printf("worst relative error of the sampled attention: %.6f\n", worst);
  // 130 blocks: 2 rows of 64 end at 128, so the points are 129 and 144 (3 rows each), and
  // the time is the straight line between their exact times.
  const auto cycles_at = [&](SimulatedKernels& k, std::uint64_t blocks) {
    op.kv_len = blocks * 16;  // context blocks x 16 - 1: exactly `blocks` full blocks
    return static_cast<double>(k.time(op, plan).cycles);
  };
  const double at129 = cycles_at(exact, 129), at144 = cycles_at(exact, 144);
  op.kv_len = 130 * 16 - 3;
  EXPECT_EQ(
      sampled.time(op, plan).cycles,
      static_cast<std::uint64_t>(std::llround(at129 + (130.0 - 129.0) / (144.0 - 129.0) * (at144 - at129))));
  op.kv_len = 64 * 16;  // 64 blocks: a sample point itself
  EXPECT_EQ(sampled.time(op, plan).cycles, exact.time(op, plan).cycles);
}

// The plateau rule of the sampler (attention_cost) rests on this: with a head's rows
// fixed, one more token block never makes the attention faster (it adds a PE with its
// work, hops and combine stage at the end of the last row), from the second block of a
// row on. (The first block of a new row sits on column 0, under the head's root, and
// is measured 22-29 cycles slower than the second with the chain combine: 9,503 against
// 9,481 at 33 and 34 blocks.) Checked block by block, for both combines, on 16-column
// rows with Llama-3.1-70B's heads (8 queries per KV head, head_dim 128) and with small
// heads, up to 5 rows.
TEST(DecodeSimulated, AttentionTimeNeverFallsAsBlocksGrowWithTheRowsFixed) {
  const WaferConfig w = test::load_cs3();
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t head_dim : {16u, 128u}) {
      AttentionConfig a = head_grid(64, head_dim, 16, red);
      a.fold_rows = false;  // the whole head: the property of the mapping itself
      std::uint64_t last = 0;
      for (std::uint64_t blocks = 1; blocks <= 80; ++blocks) {
        a.context = blocks * 4 - 1;
        const std::uint64_t t = run_attention(w.fabric, w.pe, a).total_cycles;
        if ((blocks - 1) % 16 > 1) {  // from the second block count of a row band on
          EXPECT_GE(t, last) << blocks << " blocks, " << reduction_name(red) << ", head_dim " << head_dim;
        }
        last = t;
      }
    }
  }
}

// The same property of the tiled kernel at k = 8 (the decoder samples tiled decode
// attention the same way): one more block never makes it faster, from a row band's second
// block on (the head's rows in one node row up to 5 rows, both combines, both head sizes).
TEST(DecodeSimulated, TiledAttentionTimeNeverFallsAsBlocksGrowWithTheRowsFixed) {
  const WaferConfig w = test::load_cs3();
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t head_dim : {16u, 128u}) {
      AttentionConfig a = head_grid(64, head_dim, 16, red);
      a.fold_rows = false;
      std::uint64_t last = 0;
      for (std::uint64_t blocks = 1; blocks <= 80; ++blocks) {
        a.context = blocks * 4 - 1;
        const std::uint64_t t = run_attention_tiled(w.fabric, 8, w.pe, a).total_cycles;
        if ((blocks - 1) % 16 > 1) {
          EXPECT_GE(t, last) << blocks << " blocks, " << reduction_name(red) << ", head_dim " << head_dim;
        }
        last = t;
      }
    }
  }
}

// The sampler's plateaus across row bands (attention_cost) rest on this: past the first
// row, one more token block does not make the attention faster, whatever row it starts,
// except the first block of a row (column 0, under the head's root: measured slower than
// the second, above), and but for the folded rows' approximation (within 0.1%, tested
// below). Every block count from the second block of row 2 to the end of row 10
// (16-column rows, rows folded from 5 on, as the decoder runs them) takes at least every
// earlier one that is not a row's first, less 0.1%, for both combines, with
// Llama-3.1-70B's heads and small ones (measured: 11 of the 540 cases fall, all with the
// chain, by 1 or 2 cycles, 0.053% at most: 1,887 against 1,888 at 77-80 blocks, head_dim
// 16, where rows begin to fold; 9,482 against 9,484 at 130, head_dim 128). So where the times at
// both ends of a stretch of row bands agree, every block count between them (not a row's
// first) is within 0.1% of that time.
TEST(DecodeSimulated, AttentionTimeNeverFallsAcrossRowBandsBarARowsFirstBlock) {
  const WaferConfig w = test::load_cs3();
  int falls = 0, cases = 0;
  double worst = 0.0;
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t head_dim : {16u, 128u}) {
      AttentionConfig a = head_grid(64, head_dim, 16, red);
      std::uint64_t highest = 0;
      for (std::uint64_t blocks = 18; blocks <= 160; ++blocks) {
        if (blocks % 16 == 1) continue;  // a row's first block
        a.context = blocks * 4 - 1;
        const std::uint64_t t = run_attention(w.fabric, w.pe, a).total_cycles;
        EXPECT_GE(static_cast<double>(t), 0.999 * static_cast<double>(highest))
            << blocks << " blocks, " << reduction_name(red) << ", head_dim " << head_dim;
        falls += t < highest;
        ++cases;
        if (t < highest)
          worst = std::max(worst, static_cast<double>(highest - t) / static_cast<double>(highest));
        highest = std::max(highest, t);
      }
    }
  }
  std::printf("attention across row bands: %d of %d block counts below an earlier one, by %.6f at most\n",
              falls, cases, worst);
}

// On a plateau (the same cycles at both ends of a row band, from its second block count)
// the sampler returns those cycles for every block count in between without simulating
// them: 70B heads on 16-column rows, tree combine, 3 rows (34 to 48 blocks), grain 4.
TEST(DecodeSimulated, SampledAttentionOnAPlateauIsExactAndSimulatesOnlyItsEnds) {
  const WaferConfig w = test::load_cs3();
  KernelCache cache;
  SimulatedKernelOptions opt;
  opt.attention_block_grain = 4;
  opt.attention_combine = Reduction::kTree;
  SimulatedKernels sampled(w, opt, cache);
  LayerPlan plan;
  plan.attention_tokens_per_pe = 4;
  plan.region.width = 16;
  workloads::Operator op = decode_attention_op(64);
  AttentionConfig a = head_grid(64, 128, 16, Reduction::kTree);
  const auto exact_at = [&](std::uint64_t blocks) {
    a.context = blocks * 4 - 1;
    return run_attention(w.fabric, w.pe, a).total_cycles;
  };
  // The tree's levels: 4 along a row of 16 and 2 up a column of 3, for every block count
  // of the band, so 34..48 blocks is one plateau (its ends equal, checked here).
  ASSERT_EQ(exact_at(34), exact_at(48));
  for (const std::uint64_t blocks : {35u, 41u, 46u, 47u}) {
    op.kv_len = blocks * 4;  // a context of blocks x 4 - 1 and the new token: `blocks` blocks
    EXPECT_EQ(sampled.time(op, plan).cycles, exact_at(34)) << blocks << " blocks";
  }
  // Four kernels simulated: first the ends of the stretch across row bands from the end
  // of row 2 to that of row 4 (32 and 64 blocks: their times differ, as the tree gains a
  // level with row 3, so it is no plateau; halved, rows 2 to 3 are one band), then the
  // band's own ends, 34 and 48 blocks.
  EXPECT_NE(exact_at(32), exact_at(64));
  EXPECT_EQ(cache.misses(), 4u);
}

// A plateau across row bands: with the tree combine on 16-column rows, 70B heads, rows 5
// to 8 (80 to 128 blocks) all take 20,192 cycles (ends checked here). A decode at 90,
// 100 or 120 blocks is sampled from the stretch's ends: the ends of rows 2 and 8 first
// (32 and 128 blocks: 15,792 against 20,192, no plateau), then, halved toward the
// context's rows, of rows 5 and 8 (80 and 128 blocks: equal). Three kernels simulated
// for all three contexts, and each time is the exact one.
TEST(DecodeSimulated, SampledAttentionPlateauSpansRowBands) {
  const WaferConfig w = test::load_cs3();
  KernelCache cache;
  SimulatedKernelOptions opt;
  opt.attention_block_grain = 4;
  opt.attention_combine = Reduction::kTree;
  SimulatedKernels sampled(w, opt, cache);
  LayerPlan plan;
  plan.attention_tokens_per_pe = 4;
  plan.region.width = 16;
  workloads::Operator op = decode_attention_op(64);
  AttentionConfig a = head_grid(64, 128, 16, Reduction::kTree);
  const auto exact_at = [&](std::uint64_t blocks) {
    a.context = blocks * 4 - 1;
    return run_attention(w.fabric, w.pe, a).total_cycles;
  };
  for (const std::uint64_t blocks : {90u, 100u, 120u}) {
    op.kv_len = blocks * 4;
    EXPECT_EQ(sampled.time(op, plan).cycles, 20192u) << blocks << " blocks";
    EXPECT_EQ(exact_at(blocks), 20192u) << blocks << " blocks";
  }
  EXPECT_EQ(cache.misses(), 3u);
  EXPECT_EQ(exact_at(32), 15792u);
  EXPECT_EQ(exact_at(80), 20192u);
  EXPECT_EQ(exact_at(128), 20192u);
}

// Folded rows (AttentionConfig::fold_rows) against the whole head, WSE-3 PEs, 70B-sized
// GQA groups (8 queries per KV head) with small heads (head_dim 16 and 64, where the
// replayed column-0 deliveries weigh most), 16-column rows, 5 to 7 rows, every block
// count, both combines: within 0.1% (measured: 10 of the 188 cases differ, all with the
// chain, by 1 or 2 cycles; worst 1 cycle of 1,887, 0.053%, head_dim 16, 70 blocks).
TEST(DecodeSimulated, FoldedAttentionRowsStayWithinATenthOfAPercent) {
  const WaferConfig w = test::load_cs3();
  double worst = 0.0;
  int differ = 0;
  for (const Reduction red : {Reduction::kChain, Reduction::kTree}) {
    for (const std::uint32_t head_dim : {16u, 64u}) {
      AttentionConfig a = head_grid(64, head_dim, 16, red);
      for (std::uint64_t blocks = 66; blocks <= 112; ++blocks) {
        a.context = blocks * 4 - 1;
        a.fold_rows = false;
        const AttentionResult whole = run_attention(w.fabric, w.pe, a);
        a.fold_rows = true;
        const AttentionResult f = run_attention(w.fabric, w.pe, a);
        ASSERT_EQ(f.rows_simulated, 3u);
        const double e = static_cast<double>(whole.total_cycles);
        const double err = std::abs(static_cast<double>(f.total_cycles) - e) / e;
        worst = std::max(worst, err);
        differ += f.total_cycles != whole.total_cycles;
        EXPECT_LE(err, 0.001) << blocks << " blocks, " << reduction_name(red) << ", head_dim " << head_dim;
        EXPECT_EQ(f.wavelet_hops, whole.wavelet_hops) << blocks << " blocks";
      }
    }
  }
  std::printf("folded attention rows: worst relative error %.6f, %d of 188 cases differ\n", worst, differ);
}

}  // namespace
}  // namespace wse::wafer
