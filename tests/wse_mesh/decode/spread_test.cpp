// The spread mapping (decode.mapping: spread), the physical floor beside every pass, and
// the hardware what-ifs the mapping must not get wrong (docs/wse_mesh.md, "Mappings",
// "The floor").
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "decode_test_util.h"
#include "workloads/model/operators.h"
#include "wse_mesh/decode/schedule.h"
#include "wse_mesh/decode/simulated_kernels.h"
#include "wse_mesh/decode/wafer_decoder.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/gemv_tiled.h"

namespace wse::wafer {
namespace {

using test::load_cs3;
using test::load_model;
using test::tiny_llama;
using test::tiny_wafer;

TEST(DecodeSpread, TinyModelFusesAndSpreadsOverEachRegion) {
  // Two layers on a 16 x 40 wafer of 8 KiB PEs: q, k, v (64 x 64, 2 x 32 x 64) fuse into
  // one 128 x 64 matrix, gate and up (2 x 128 x 64) into one 256 x 64, each tiled over its
  // layer's whole region (kernel grid: min(region rows, M) x min(region columns, K)).
  const WaferConfig w = tiny_wafer(40);
  DecodeConfig cfg;
  cfg.reserved_sram_bytes = 1024;
  cfg.vocab_slices = 1;
  WaferDecoder d(w, cfg, tiny_llama());
  for (const LayerPlan& p : d.plans()) {
    SCOPED_TRACE(p.region.layer);
    ASSERT_TRUE(p.spread);
    const TensorGrid* qkv = p.grid("self_attn.k_proj");
    ASSERT_NE(qkv, nullptr);
    EXPECT_EQ(qkv, p.grid("self_attn.q_proj"));
    EXPECT_EQ(qkv, p.grid("self_attn.v_proj"));
    EXPECT_EQ(qkv->tensor, "self_attn.qkv_proj");
    EXPECT_EQ(qkv->rows, 128u);
    EXPECT_EQ(qkv->cols, 64u);
    // The vocabulary tensor (embedding table on layer 0, LM head on layer 1) takes rows at
    // the bottom of the region in proportion to its bytes; the matrices the rows above.
    std::uint64_t vocab = 0, other = 0;
    for (const TensorGrid& t : p.grids) {
      (t.kind == "embedding" || t.kind == "lm_head" ? vocab : other) += t.weight_bytes;
    }
    ASSERT_GT(vocab, 0u);  // 256 x 64 bf16 = 32 KiB at each end
    EXPECT_EQ(vocab, 32768u);
    const auto vocab_rows = static_cast<std::uint32_t>(
        std::lround(static_cast<double>(vocab) / static_cast<double>(vocab + other) * p.region.height));
    EXPECT_EQ(qkv->area, (GridShape{p.region.height - vocab_rows, p.region.width}));
    EXPECT_EQ(qkv->grid, (GridShape{std::min(qkv->area.rows, 128u), std::min(p.region.width, 64u)}));
    // Its PE: the fuller orientation's tile ceil(128 / P) x ceil(64 / Q) bf16 values,
    // one x segment (2 Kt B) and fp16 accumulators... counted as the placement counts them.
    const GridShape g = qkv->grid;
    const GridShape turned{std::min(g.cols, 128u), std::min(g.rows, 64u)};
    EXPECT_EQ(qkv->pe_bytes, std::max(gemv_pe_bytes(128, 64, g, workloads::DType::bf16),
                                      gemv_pe_bytes(128, 64, turned, workloads::DType::bf16)));
    const TensorGrid* gate_up = p.grid("mlp.up_proj");
    ASSERT_NE(gate_up, nullptr);
    EXPECT_EQ(gate_up->tensor, "mlp.gate_up_proj");
    EXPECT_EQ(gate_up->rows, 256u);
    EXPECT_EQ(p.grid("mlp.down_proj")->rows, 64u);
    // Every PE of the region holds its tiles of all the layer's matrices and the rest is
    // KV: capacity = region bytes - what the grids' PEs hold - the vector weights.
    std::uint64_t held = 0;
    for (const TensorGrid& t : p.grids)
      held += std::uint64_t{t.copies} * t.grid.rows * t.grid.cols * t.pe_bytes;
    EXPECT_EQ(p.grid_pe_bytes, held);
    EXPECT_EQ(p.region.kv_capacity_bytes,
              std::uint64_t{p.region.width} * p.region.height * (8192 - 1024) - held - p.vector_weight_bytes);
  }
}

TEST(DecodeSpread, FourByFourSpreadGemvTakesTheFasterReduction) {
  // A fused 16 x 16 matrix spread over a 4 x 4 region of WSE-2 PEs, fp16 accumulation,
  // one token: the kernel runs it with each reduction and keeps the fastest. By hand
  // (docs/wse_mesh.md, the 4 x 4 GEMV): chain 30 cycles, tree 26 (round 0 ends 6 cycles
  // after the last FMACs, round 1, two hops, at 12); turned by 90 degrees the grid is the
  // same 4 x 4. So 26.
  WaferConfig w = tiny_wafer(4);
  w.width = 4;
  w.fabric.width = 4;
  w.pe = PeConfig{};  // WSE-2
  LayerPlan layer;
  layer.region = {0, 0, 0, 0, 4, 4, 0, 0};
  TensorGrid t;
  t.tensor = "self_attn.qkv_proj";
  t.kind = "qkv";
  t.rows = 16;
  t.cols = 16;
  t.grid = {4, 4};
  t.area = {4, 4};
  t.members = {"self_attn.q_proj", "self_attn.k_proj"};
  t.origins = {PeCoord{0, 0}};
  layer.grids.push_back(t);
  KernelCache cache;
  SimulatedKernelOptions o;  // fp16, reduction auto
  SimulatedKernels k(w, o, cache);
  workloads::Operator op;
  op.kind = workloads::OpKind::gemm;
  op.name = "self_attn.k_proj";
  op.m = 1;
  op.n = 8;  // one member's rows: the fused grid computes all 16
  op.k = 16;
  const KernelTiming time = k.time(op, layer);
  GemvConfig c;
  c.rows = 16;
  c.cols = 16;
  c.accumulate = Accumulate::kFp16;
  c.reduction = Reduction::kChain;
  EXPECT_EQ(run_gemv(w.fabric, w.pe, c).total_cycles, 30u);
  c.reduction = Reduction::kTree;
  EXPECT_EQ(run_gemv(w.fabric, w.pe, c).total_cycles, 26u);
  EXPECT_EQ(time.cycles, 26u);
  EXPECT_EQ(k.reductions_chosen().at("tree"), 1u);
  // SRAM traffic of the whole fused matrix: 256 multiply-accumulates, each reading the
  // fp16 weight and accumulator and writing the accumulator.
  EXPECT_EQ(time.sram_read_bytes, 256u * 4);
  EXPECT_EQ(time.sram_write_bytes, 256u * 2);
}

TEST(DecodeSpread, RootEngineFloorByHandAndBelowEveryRun) {
  // The bound the reduction search prunes with. 16 x 16 on 4 x 4 WSE-2 PEs, fp16: the
  // first row's tiles are 4 x 4; an FMAC over 4 accumulators takes max(4 / 4 SIMD,
  // 4 x 32 bits / (2 ports x 32), 4 x 16 / 32) = 2 cycles, 4 x elements: 8 cycles. Four
  // sums are 2 wavelets, each added in max(2 / 4, 32 / 64, 32 / 32) = 1 cycle. The tree's
  // root receives ceil(log2 4) = 2 streams: 8 + 2 x 2 = 12; the chain's and the K-tree's
  // root at least one: 10. Three vectors: three times as much.
  GemvConfig c;
  c.rows = 16;
  c.cols = 16;
  c.accumulate = Accumulate::kFp16;
  c.reduction = Reduction::kTree;
  EXPECT_EQ(gemv_root_engine_floor(PeConfig{}, c), 12u);
  c.reduction = Reduction::kChain;
  EXPECT_EQ(gemv_root_engine_floor(PeConfig{}, c), 10u);
  c.vectors = 3;
  EXPECT_EQ(gemv_root_engine_floor(PeConfig{}, c), 30u);
  // Never above a simulated run, per PE or tiled, whatever the shape, reduction, vectors
  // or accumulator (otherwise the search could skip the fastest candidate).
  struct Shape {
    std::uint64_t m, n;
    std::uint32_t P, Q;
  };
  for (const Shape& s :
       {Shape{16, 16, 4, 4}, Shape{1002, 64, 16, 32}, Shape{300, 1000, 40, 24}, Shape{64, 512, 4, 64}}) {
    for (Reduction red : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
      for (Accumulate acc : {Accumulate::kFp16, Accumulate::kFp32}) {
        for (std::uint32_t m : {1u, 4u}) {
          GemvConfig g;
          g.rows = s.m;
          g.cols = s.n;
          g.grid_rows = s.P;
          g.grid_cols = s.Q;
          g.reduction = red;
          g.accumulate = acc;
          g.vectors = m;
          SCOPED_TRACE(std::to_string(s.m) + "x" + std::to_string(s.n) + " on " + std::to_string(s.P) + "x" +
                       std::to_string(s.Q) + " " + reduction_name(red) + " m " + std::to_string(m));
          const std::uint64_t floor = gemv_root_engine_floor(PeConfig{}, g);
          EXPECT_LE(floor, run_gemv_tiled(FabricConfig{}, 4, PeConfig{}, g).total_cycles);
          if (s.P * s.Q <= 1024) {
            EXPECT_LE(floor, run_gemv(FabricConfig{}, PeConfig{}, g).total_cycles);
          }
        }
      }
    }
  }
}

TEST(DecodeSpread, FloorOfATinyStepByHand) {
  // The floor of one decode step of tiny_llama at context 40 on a 16 x 20 wafer of 8 KiB
  // WSE-2 PEs at 1 GHz (packed, hand-placed grids): compute = matrix FLOPs / (320 PEs x 4
  // fp16 FMACs x 2 x 1e9); SRAM = max(bytes read / (320 x 8 B), written / (320 x 4 B)) per
  // ns; latency = each dependent collective's fewest hops (operands of n PEs: the
  // smallest d with 2 d^2 + 2 d + 1 >= n) x 1 cycle.
  const WaferConfig w = tiny_wafer(20);
  const workloads::TransformerModel m = tiny_llama();
  WaferDecoder d(w, test::tiny_decode_config(), m);
  const WaferRunResult r = d.decode_step({40});
  const workloads::OperatorGraph g = workloads::lower_decode(m, {40});
  std::uint64_t flops = 0;
  for (const auto& op : g.ops) {
    if (op.kind == workloads::OpKind::gemm || op.kind == workloads::OpKind::attention) flops += op.flops;
  }
  // Per layer: q 64x64, k, v 32x64, o 64x64, gate, up 128x64, down 64x128 (36,864 MACs),
  // two layers and the LM head (256 x 64): 2 x 2 x 36,864 + 2 x 16,384 = 180,224 GEMM
  // FLOPs, plus attention.
  EXPECT_GT(flops, 180224u);
  EXPECT_DOUBLE_EQ(r.floor.compute_s, static_cast<double>(flops) / (320.0 * 4 * 2 * 1e9));
  const double reads = static_cast<double>(g.total_weight_bytes() + g.total_kv_read_bytes());
  const double writes = static_cast<double>(g.total_kv_write_bytes());
  EXPECT_DOUBLE_EQ(r.floor.sram_s, std::max(reads / (320.0 * 8 * 1e9), writes / (320.0 * 4 * 1e9)));
  // Fewest hops: 8 KiB x n PEs hold the operands. q/k/v at once (the largest, q: 8 KiB:
  // 1 PE: 0 hops), attention (KV of 41 tokens: 5,248 B: 0), o (8 KiB: 0), the norms (0),
  // gate/up at once (16 KiB: 2 PEs: 1 hop), down (16 KiB: 1 hop), per layer 2 hops; the
  // LM head (32 KiB: 4 PEs: 1 hop): 5 hops in all.
  EXPECT_EQ(floor_hops(8192, 8192), 0u);
  EXPECT_EQ(floor_hops(16384, 8192), 1u);
  EXPECT_EQ(floor_hops(5 * 8192, 8192), 1u);
  EXPECT_EQ(floor_hops(6 * 8192, 8192), 2u);
  EXPECT_DOUBLE_EQ(r.floor.latency_s, 5e-9);
  EXPECT_DOUBLE_EQ(r.floor.step_s, std::max({r.floor.compute_s, r.floor.sram_s, r.floor.latency_s}));
  EXPECT_GE(r.seconds, r.floor.step_s);
  EXPECT_DOUBLE_EQ(r.floor_ratio, r.seconds / r.floor.step_s);
}

// Llama-3.1-8B decode steps on a CS-3 at tiled fidelity (the bench's setting).
WaferConfig cs3_tiled() {
  WaferConfig w = load_cs3();
  w.tile = 8;
  return w;
}

TEST(DecodeSpread, NoStepBeatsItsFloorAndSpreadBeatsPacked) {
  const WaferConfig w = cs3_tiled();
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  double spread_s = 0.0, packed_s = 0.0;
  for (Mapping mapping : {Mapping::kSpread, Mapping::kPacked}) {
    DecodeConfig cfg;
    cfg.mapping = mapping;
    WaferDecoder d(w, cfg, m);
    for (const auto& batch : {std::vector<std::uint64_t>{1024}, std::vector<std::uint64_t>(8, 2048)}) {
      const WaferRunResult r = d.decode_step(batch);
      EXPECT_GT(r.floor.step_s, 0.0);
      EXPECT_GE(r.seconds, r.floor.step_s) << (mapping == Mapping::kSpread ? "spread" : "packed");
      if (batch.size() == 1) (mapping == Mapping::kSpread ? spread_s : packed_s) = r.seconds;
    }
    const WaferRunResult p = d.prefill({64});
    EXPECT_GE(p.seconds, p.floor.step_s);
  }
  EXPECT_LT(spread_s, packed_s / 2);
}

TEST(DecodeSpread, TwiceTheSramDoesNotSlowDecode) {
  const WaferConfig w = cs3_tiled();
  WaferConfig big = w;
  big.pe.sram_bytes *= 2;
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  WaferDecoder d(w, DecodeConfig{}, m);
  WaferDecoder d2(big, DecodeConfig{}, m);
  const double t = d.decode_step({1024}).seconds;
  const double t2 = d2.decode_step({1024}).seconds;
  EXPECT_LE(t2, t);
  EXPECT_GT(d2.kv_capacity_bytes(), 2 * d.kv_capacity_bytes());
}

TEST(DecodeSpread, RegionPlacesAndChangesTheResult) {
  const WaferConfig w = cs3_tiled();
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  DecodeConfig part;
  part.region = {700, 700};  // rows x columns
  WaferDecoder whole(w, DecodeConfig{}, m);
  WaferDecoder sub(w, part, m);
  std::uint64_t pes = 0;
  for (const LayerRegion& r : sub.regions()) {
    EXPECT_LE(r.x0 + r.width, 700u);
    EXPECT_LE(r.y0 + r.height, 700u);
    pes += std::uint64_t{r.width} * r.height;
  }
  EXPECT_EQ(pes, 700u * 700u);
  EXPECT_LT(sub.kv_capacity_bytes(), whole.kv_capacity_bytes());
  const WaferRunResult a = whole.decode_step({1024});
  const WaferRunResult b = sub.decode_step({1024});
  EXPECT_NE(a.seconds, b.seconds);
  EXPECT_GE(b.seconds, b.floor.step_s);
  // A region larger than the wafer is refused.
  DecodeConfig huge;
  huge.region = {2000, 100};
  EXPECT_THROW(WaferDecoder(w, huge, m), std::invalid_argument);
}

}  // namespace
}  // namespace wse::wafer
