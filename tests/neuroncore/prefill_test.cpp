// Transformer prefill on the Trainium model: operator timings derived by hand, causal
// block skipping, the all-reduce on the torus, layer reuse, capacity and a FLOP bound.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "neuroncore/transformer/prefill.h"
#include "systemc_models/config/config.h"
#include "util/systemc_test.h"

namespace wse::neuron {
namespace {

using workloads::OpKind;
using workloads::Operator;

PrefillConfig single_core() {
  PrefillConfig p;
  p.tp_degree = 1;
  p.lnc = 1;
  return p;
}

workloads::OperatorGraph graph_of(std::vector<Operator> ops) {
  workloads::OperatorGraph g;
  g.phase = "prefill";
  g.ops = std::move(ops);
  return g;
}

workloads::TransformerModel load_model(const std::string& file, const std::vector<std::string>& overrides = {}) {
  auto doc = config::parse("model:\n  include: " + testing::source_path("workloads/data/models/" + file) + "\n",
                           "model.yaml", overrides);
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  workloads::TransformerModel t = workloads::read_transformer(m);
  doc.finish();
  return t;
}

TEST(Prefill, NormTimeFollowsTheVectorEngineRate) {
  // One core, one tile of 128 x 2048 = 262,144 values, 4 vector ops per value (square,
  // accumulate, rsqrt scale, weight scale): one vector instruction of 1,048,576 elements
  // = 64 + 1,048,576 / 512 = 2,112 cycles at 0.96 GHz = 2,200 ns exactly.
  Operator norm;
  norm.kind = OpKind::norm;
  norm.name = "input_layernorm";
  norm.layer = 0;
  norm.elements = 262144;
  norm.vector_ops = 4 * 262144;
  norm.input_bytes = 2 * 262144;
  norm.output_bytes = 2 * 262144;
  TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, single_core());
  const PrefillResult r = p.run(graph_of({norm}));
  EXPECT_DOUBLE_EQ(r.busy.vector_ps, 2200000.0);
  EXPECT_DOUBLE_EQ(r.busy.scalar_ps, 0.0);
  // Load, compute and store are in series: at least two DMA instruction costs (600 ns)
  // around the 2.2 us of the vector engine.
  EXPECT_GT(r.total_ps, 2200000u + 2 * 600000u);
  ASSERT_EQ(r.layers.size(), 1u);
  EXPECT_EQ(r.layers[0].end_ps, r.total_ps);
}

Operator attention(std::uint64_t queries, std::uint32_t heads, std::uint32_t kv_heads) {
  Operator a;
  a.kind = OpKind::attention;
  a.name = "self_attn";
  a.layer = 0;
  a.q_heads = heads;
  a.kv_heads = kv_heads;
  a.qk_head_dim = 128;
  a.v_head_dim = 128;
  a.query_len = queries;
  a.kv_len = queries;
  return a;
}

TEST(Prefill, OneAttentionTileByHand) {
  // 128 queries, 1 head of 128: one key block of 128 keys, on the diagonal (masked).
  //  tensor: QK^T (K 128, M 128, N 128) and PV (K 128 keys, M 128, N 128): each streams
  //    128 cycles at 2.4 GHz = 53,333 ps with the whole array -> 106,666 ps;
  //    flops 2 x 2 x 128^3 = 8,388,608.
  //  vector: max + subtract + mask = 3 x 16,384 fp32 / 256 = 192 + 64 = 256 cycles at
  //    0.96 GHz = 266,667 ps; normalisation 16,384 / 256 + 64 = 128 cycles = 133,333 ps.
  //  scalar: exp 16,384 / 128 + 64 = 192 cycles at 1.2 GHz = 160,000 ps.
  TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, single_core());
  const PrefillResult r = p.run(graph_of({attention(128, 1, 1)}));
  EXPECT_DOUBLE_EQ(r.busy.tensor_ps, 2.0 * 53333);
  EXPECT_EQ(r.busy.flops, 8388608u);
  EXPECT_DOUBLE_EQ(r.busy.vector_ps, 266667.0 + 133333.0);
  EXPECT_DOUBLE_EQ(r.busy.scalar_ps, 160000.0);
}

TEST(Prefill, CausalMaskSkipsTheBlocksAboveTheDiagonal) {
  // 1,024 queries in 8 tiles of 128, keys in blocks of 512: tiles 0-3 see block 0 only,
  // tiles 4-7 blocks 0 and 1 -> 12 (tile, block) pairs of 512 keys instead of 16.
  // Each pair: QK^T 2 x 128 x 128 x 512 and PV 4 x 2 x 128 x 128 x 128 (same FLOPs).
  TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, single_core());
  const PrefillResult r = p.run(graph_of({attention(1024, 1, 1)}));
  EXPECT_EQ(r.busy.flops, 12u * 2u * (2u * 128u * 128u * 512u));
}

TEST(Prefill, SlidingWindowSkipsTheBlocksBelowTheWindow) {
  // 2,048 queries (16 tiles), window 512, key blocks of 512. Tile t spans positions
  // 128t .. 128t + 127 and needs keys from max(0, 128t - 511) to 128t + 127:
  // tiles 0-3 one block (block 0); tiles 4-15 two blocks (e.g. tile 8: keys 513..1151 ->
  // blocks 1 and 2) -> 4 + 12 x 2 = 28 pairs (full causal attention: 4 x (1+2+3+4) = 40).
  Operator a = attention(2048, 1, 1);
  a.window = 512;
  TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, single_core());
  const PrefillResult r = p.run(graph_of({a}));
  EXPECT_EQ(r.busy.flops, 28u * 2u * (2u * 128u * 128u * 512u));
}

TEST(Prefill, AllReduceAfterORunsOnTheTorus) {
  // TP 16 x LNC 1 = 16 cores = 2 chips: the o_proj partial sums (128 tokens x 1024 x 2 B)
  // cross the chips as an all-reduce on a 2 x 1 torus, timed by the link model.
  PrefillConfig cfg = single_core();
  cfg.tp_degree = 16;
  Operator o;
  o.kind = OpKind::gemm;
  o.name = "self_attn.o_proj";
  o.layer = 0;
  o.m = 128;
  o.k = 2048;
  o.n = 1024;
  TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, cfg);
  EXPECT_EQ(p.chips(), 2u);
  EXPECT_EQ(p.simulated_cores(), 8u);
  const PrefillResult r = p.run(graph_of({o}));
  InstanceConfig two;
  two.chips_x = 2;
  two.chips_y = 1;
  const CollectiveResult c = run_collective(two, Collective::kAllReduce, 128 * 1024 * 2);
  EXPECT_DOUBLE_EQ(r.busy.collective_ps, static_cast<double>(c.time_ps));
  EXPECT_GT(r.link_utilization(), 0.0);
  EXPECT_GT(r.total_ps, c.time_ps);
  // Row-parallel: each core multiplies K / 16 = 128 rows; 2 chips x 8 cores.
  EXPECT_EQ(r.busy.flops, 2u * 128u * 2048u * 1024u);
}

TEST(Prefill, ReusedLayersGiveTheSameAnswer) {
  // Llama-3.1-8B cut to 3 layers, one 256-token prompt, TP 8 on one chip.
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=3"});
  PrefillConfig cfg = single_core();
  cfg.tp_degree = 8;
  PrefillConfig off = cfg;
  off.reuse = false;
  TrainiumPrefill with(trainium2_chip(), InstanceConfig{}, cfg);
  TrainiumPrefill without(trainium2_chip(), InstanceConfig{}, off);
  const PrefillResult a = with.run(m, {256});
  const PrefillResult b = without.run(m, {256});
  EXPECT_EQ(a.total_ps, b.total_ps);
  ASSERT_EQ(a.layers.size(), 5u);  // embedding, 3 layers, final norm + LM head
  ASSERT_EQ(b.layers.size(), 5u);
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_EQ(a.layers[i].end_ps, b.layers[i].end_ps) << i;
    if (i > 0) {
      EXPECT_GT(a.layers[i].end_ps, a.layers[i - 1].end_ps) << i;
    }
  }
  EXPECT_EQ(a.busy.flops, b.busy.flops);
  EXPECT_DOUBLE_EQ(a.busy.tensor_ps, b.busy.tensor_ps);
  EXPECT_DOUBLE_EQ(a.busy.hbm_ps, b.busy.hbm_ps);
  EXPECT_EQ(a.reused_layers, 2u);
  EXPECT_EQ(b.reused_layers, 0u);
  EXPECT_LT(a.busy.instructions, b.busy.instructions);
  // Identical layers take identical times.
  EXPECT_EQ(a.layers[2].end_ps - a.layers[2].start_ps, a.layers[1].end_ps - a.layers[1].start_ps);
}

TEST(Prefill, NoPrefillBeatsItsFlopsOverThePeakOfItsCores) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  PrefillConfig cfg = single_core();
  cfg.tp_degree = 4;
  cfg.lnc = 2;
  TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, cfg);
  const auto g = workloads::lower_prefill(m, {1024});
  const PrefillResult r = p.run(g);
  const double peak = 8 * 128.0 * 128 * 2 * 2.4e9;  // 8 cores x 78.6 TFLOPS bf16
  EXPECT_GE(r.seconds(), static_cast<double>(g.total_flops()) / peak);
  // The simulated matmuls cover at least the model's FLOPs (shards round up).
  EXPECT_GE(r.busy.flops, g.total_flops());
  EXPECT_GT(r.tensor_utilization(), 0.0);
  EXPECT_LE(r.tensor_utilization(), 1.0);
  EXPECT_LE(r.hbm_utilization(), 1.0);
  EXPECT_LE(r.dma_utilization(), 1.0);
}

TEST(Prefill, MoeAndSlidingWindowModelsRun) {
  // Mixtral (8 experts, top 2: expert GEMMs with `count` instances) and gpt-oss (sliding
  // window layers, mxfp4 experts), cut to 2 layers: every operator kind runs and the FLOP
  // bound holds.
  const std::vector<std::pair<const char*, std::vector<std::string>>> models = {
      {"mistralai--Mixtral-8x7B-v0.1_config.json", {"model.num_hidden_layers=2"}},
      {"openai--gpt-oss-20b_config.json",
       {"model.num_hidden_layers=2", "model.layer_types=[sliding_attention, full_attention]"}}};
  for (const auto& [file, overrides] : models) {
    const auto m = load_model(file, overrides);
    PrefillConfig cfg = single_core();
    cfg.tp_degree = 8;
    TrainiumPrefill p(trainium2_chip(), InstanceConfig{}, cfg);
    const auto g = workloads::lower_prefill(m, {512});
    const PrefillResult r = p.run(g);
    EXPECT_GE(r.seconds(), static_cast<double>(g.total_flops()) / (8 * 128.0 * 128 * 2 * 2.4e9)) << file;
    EXPECT_EQ(r.layers.size(), 4u) << file;
    EXPECT_GT(r.busy.scalar_ps, 0.0) << file;  // softmax exp, router, SiLU
  }
}

TEST(Prefill, ModelThatDoesNotFitIsAClearError) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-405B_config.json");
  const auto g = workloads::lower_prefill(m, {1024});
  // TP 8 x LNC 1: one chip holds all 811 GB of weights: far over its 96 GiB.
  PrefillConfig one_chip = single_core();
  one_chip.tp_degree = 8;
  TrainiumPrefill small(trainium2_chip(), InstanceConfig{}, one_chip);
  try {
    small.check_capacity(g, m.weight_bytes());
    FAIL() << "expected a capacity error";
  } catch (const CapacityError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("HBM capacity exceeded"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("weights 755."));  // 811 GB = 755.x GiB
    EXPECT_THAT(e.what(), ::testing::HasSubstr("holds 96.00 GiB"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("over)"));
  }
  EXPECT_THROW(small.run(m, {1024}), CapacityError);
  // The whole instance (TP 64 x LNC 2 = 16 chips): 1/16 of the weights per chip fits.
  TrainiumPrefill all(trainium2_chip(), InstanceConfig{}, PrefillConfig{});
  const HbmFootprint f = all.check_capacity(g, m.weight_bytes());
  EXPECT_EQ(f.weight_bytes, (m.weight_bytes() + 15) / 16);
  EXPECT_LT(f.total(), trainium2_chip().hbm.capacity().bytes);
}

TEST(Prefill, GroupLargerThanTheInstanceIsRejected) {
  PrefillConfig cfg;
  cfg.tp_degree = 128;  // x LNC 2 = 256 cores > 128
  EXPECT_THROW(TrainiumPrefill(trainium2_chip(), InstanceConfig{}, cfg), std::invalid_argument);
  cfg.tp_degree = 6;
  cfg.lnc = 2;  // 12 cores: not whole chips
  EXPECT_THROW(TrainiumPrefill(trainium2_chip(), InstanceConfig{}, cfg), std::invalid_argument);
}

}  // namespace
}  // namespace wse::neuron
