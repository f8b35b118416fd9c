// Transformer passes on a group of GPUs (gpu/transformer/pass.h): the attention CTA
// schedule and the decode attention kernel derived by hand, a row-parallel GEMM with its
// all-reduce, and a whole decode step's structure (layers reused, floor below the time).
// H100 SXM defaults: 132 SMs, 4,096 bf16 FLOP per clock per SM at 1.83 GHz.
#include <gtest/gtest.h>

#include "gpu/transformer/pass.h"
#include "systemc_models/config/config.h"
#include "util/systemc_test.h"
#include "workloads/model/operators.h"

namespace wse::gpu {
namespace {

using workloads::Operator;
using workloads::OpKind;

// Llama-3.1-70B's attention shape: 64 query heads, 8 KV heads, head dim 128.
Operator attention(std::uint64_t query_len, std::uint64_t offset, std::uint32_t window = 0) {
  Operator op;
  op.kind = OpKind::attention;
  op.name = "self_attn";
  op.layer = 0;
  op.q_heads = 64;
  op.kv_heads = 8;
  op.qk_head_dim = 128;
  op.v_head_dim = 128;
  op.query_len = query_len;
  op.context_offset = offset;
  op.kv_len = offset + query_len;
  op.window = window;
  return op;
}

workloads::OperatorGraph graph_of(std::vector<Operator> ops) {
  workloads::OperatorGraph g;
  g.phase = "decode";
  g.ops = std::move(ops);
  return g;
}

// At tp 8 a GPU has 8 query heads. A CTA step (128 queries x 128 keys, QK^T and PV with
// head dim 128) is 128 x 128 x (128 + 128) x 2 / 4,096 = 2,048 clocks.
TEST(GpuPass, PrefillAttentionCtasScheduledOnTheSms) {
  GpuPass pass(GpuConfig{}, NodeConfig{}, PassConfig{});
  // 256 queries from 0: query tile 0 (rows 0-127) sees 1 key block, tile 1 (rows
  // 128-255) 2 blocks; 8 heads x 2 tiles = 16 CTAs on 132 SMs: the longest, 2 x 2,048 =
  // 4,096 clocks = 2.2383 us.
  EXPECT_DOUBLE_EQ(pass.attention_compute_s(attention(256, 0)), 4096.0 / 1.83e9);
  // 2,048 queries: 16 tiles x 8 heads = 128 CTAs, one wave; the last tile sees 16 blocks:
  // 32,768 clocks.
  EXPECT_DOUBLE_EQ(pass.attention_compute_s(attention(2048, 0)), 32768.0 / 1.83e9);
  // A chunk of 128 at offset 1,024: rows 1,024-1,151 see keys 0-1,151, ceil(1,152 / 128)
  // = 9 blocks: 18,432 clocks.
  EXPECT_DOUBLE_EQ(pass.attention_compute_s(attention(128, 1024)), 18432.0 / 1.83e9);
  // A sliding window of 256 over 512 queries: tile 3 (rows 384-511) starts at key
  // 384 + 1 - 256 = 129, blocks 1 to 3 (ceil(512 / 128) - floor(129 / 128) = 3); tile 2
  // (rows 256-383) from key 1: blocks 0 to 2 (3). 3 x 2,048 = 6,144 clocks.
  EXPECT_DOUBLE_EQ(pass.attention_compute_s(attention(512, 0, 256)), 6144.0 / 1.83e9);
  // 4,224 queries: 33 tiles x 8 heads = 264 CTAs of 1 to 33 blocks (8 of each) on 132
  // SMs, longest first to the least loaded SM. The first 132 are the 8 x 16 of 33 to 18
  // blocks and 4 of 17; then the other 4 of 17 join the 17s, the 16s the 18s, ..., the 1s
  // the 33s: every SM ends at 34 blocks (the total 8 x 561 = 4,488 / 132 = 34, no
  // quantisation loss): 34 x 2,048 = 69,632 clocks.
  EXPECT_DOUBLE_EQ(pass.attention_compute_s(attention(33 * 128, 0)), 69632.0 / 1.83e9);
}

// A decode step's attention of two Llama-3.1-70B sequences (contexts 1,000 and 3,000) in
// one layer, tp 8: one KV head per GPU. A KV head's 8 query heads padded to 64 rows; a
// block is 64 x 128 keys x 256 x 2 / 4,096 = 1,024 clocks; ceil(1,000 / 128) +
// ceil(3,000 / 128) = 8 + 24 = 32 blocks over 132 SMs: one round, 1,024 clocks = 0.5596
// us. Bytes on one GPU: KV read + written / 8 (its KV head) + query in and output out x
// 8 / 64 (its query heads):
//   (1,000 x 4,096 + 4,096) / 8 + (16,384 + 16,384) / 8 = 512,512 + 4,096 = 516,608
//   (3,000 x 4,096 + 4,096) / 8 + 4,096               = 1,536,512 + 4,096 = 1,540,608
// 2,057,216 B in all: 0.66 us through the H100's HBM pipe, more than the compute, so the
// kernel takes the launch (1 us) + the pipe's time for 2,057,216 B.
TEST(GpuPass, DecodeAttentionOfALayerIsOneKernel) {
  GpuPass pass(GpuConfig{}, NodeConfig{}, PassConfig{});
  std::vector<Operator> ops;
  for (std::uint64_t ctx : {1000u, 3000u}) {
    Operator op = attention(1, ctx - 1);
    op.kv_len = ctx;
    op.kv_read_bytes = ctx * 4096;  // 2 x 8 KV heads x 128 x 2 B per token and layer
    op.kv_write_bytes = 4096;
    op.input_bytes = 64 * 128 * 2;
    op.output_bytes = 64 * 128 * 2;
    ops.push_back(op);
  }
  const GpuPassResult r = pass.run(graph_of(ops));
  EXPECT_EQ(r.busy.kernels, 1u);
  EXPECT_GT(pass.hbm().seconds(2057216), 1024.0 / 1.83e9);
  EXPECT_DOUBLE_EQ(r.seconds, 1e-6 + pass.hbm().seconds(2057216));
  EXPECT_DOUBLE_EQ(r.busy.hbm_s, 2057216.0 / pass.hbm().bytes_per_s);
}

// A speculative verification's attention (graph phase "verify", k = 3) of the same two
// sequences, 4 new tokens each at 1,000 and 3,000 cached: one batched kernel, as a decode
// step's. A KV head's 8 query heads x 4 tokens = 32 rows, padded to 64: the same
// 1,024-clock block; ceil(1,004 / 128) + ceil(3,004 / 128) = 8 + 24 = 32 blocks, one
// round. Bytes on one GPU: the cached KV read and the 4 tokens' written / 8, queries in
// and outputs out (4 x 64 x 128 x 2 B = 65,536 B each) x 8 / 64:
//   (1,000 x 4,096 + 4 x 4,096) / 8 + 131,072 / 8 = 514,048 + 16,384 = 530,432
//   (3,000 x 4,096 + 4 x 4,096) / 8 + 16,384      = 1,538,048 + 16,384 = 1,554,432
// 2,084,864 B: the kernel takes the launch + the pipe's time for them. Outside a
// verification the same operators run as prefill attention, a kernel per sequence.
TEST(GpuPass, VerificationAttentionOfALayerIsOneKernel) {
  GpuPass pass(GpuConfig{}, NodeConfig{}, PassConfig{});
  std::vector<Operator> ops;
  for (std::uint64_t ctx : {1000u, 3000u}) {
    Operator op = attention(4, ctx);
    op.kv_read_bytes = ctx * 4096;
    op.kv_write_bytes = 4 * 4096;
    op.input_bytes = 4 * 64 * 128 * 2;
    op.output_bytes = 4 * 64 * 128 * 2;
    ops.push_back(op);
  }
  workloads::OperatorGraph g = graph_of(ops);
  g.phase = "verify";
  const GpuPassResult r = pass.run(g);
  EXPECT_EQ(r.busy.kernels, 1u);
  EXPECT_GT(pass.hbm().seconds(2084864), 1024.0 / 1.83e9);
  EXPECT_DOUBLE_EQ(r.seconds, 1e-6 + pass.hbm().seconds(2084864));
  g.phase = "prefill";
  EXPECT_EQ(pass.run(g).busy.kernels, 2u);
}

// o_proj of a 64-request decode step at tp 8: K = 8,192 / 8 = 1,024 on each GPU, then
// the all-reduce of the 64 x 8,192 x 2 B = 1 MiB output (nvls on the NVSwitch: 2 us +
// 2 x 1 us + 1.125 x 1 MiB / 450 GB/s = 6.6214 us with NodeConfig's defaults).
TEST(GpuPass, RowParallelGemmAddsItsAllReduce) {
  const GpuConfig h100;
  const NodeConfig node;
  const PassConfig cfg;
  GpuPass pass(h100, node, cfg);
  Operator op;
  op.kind = OpKind::gemm;
  op.name = "self_attn.o_proj";
  op.layer = 0;
  op.m = 64;
  op.k = 8192;
  op.n = 8192;
  op.output_bytes = 64 * 8192 * 2;
  const GemmShape s = pass.shard(op);
  EXPECT_EQ(s.k, 1024u);
  EXPECT_EQ(s.n, 8192u);
  const NodeCollective ar = node_all_reduce(node, 8, 1048576);
  EXPECT_EQ(ar.algorithm, NodeAlgorithm::kNvls);
  EXPECT_DOUBLE_EQ(ar.seconds, 2e-6 + 2e-6 + 1.125 * 1048576.0 / 450e9);
  const GpuPassResult r = pass.run(graph_of({op}));
  const GemmTiming g = best_gemm(h100, pass.hbm(), s, cfg.gemm_tiles);
  EXPECT_DOUBLE_EQ(r.seconds, 1e-6 + g.seconds + ar.seconds);
  EXPECT_DOUBLE_EQ(r.busy.nvlink_s, ar.seconds);
  EXPECT_DOUBLE_EQ(r.floor.collective_s, 1048576.0 / 450e9);
}

workloads::TransformerModel load_model(const std::string& file,
                                       const std::vector<std::string>& overrides = {}) {
  auto doc =
      config::parse("model:\n  include: " + testing::source_path("workloads/data/models/" + file) + "\n",
                    "model.yaml", overrides);
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  workloads::TransformerModel t = workloads::read_transformer(m);
  doc.finish();
  return t;
}

TEST(GpuPass, DecodeStepReusesEqualLayersAndStaysAboveItsFloor) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-70B_config.json", {"model.num_hidden_layers=4"});
  GpuPass pass(GpuConfig{}, NodeConfig{}, PassConfig{});
  const auto g = workloads::lower_decode(m, {1000, 2000, 3000});
  const GpuPassResult r = pass.run(g);
  ASSERT_EQ(r.layer_done_s.size(), 4u);
  EXPECT_EQ(r.reused_layers, 3u);
  for (std::size_t l = 1; l < 4; ++l) {
    // Equal layers take equal times.
    EXPECT_DOUBLE_EQ(r.layer_done_s[l] - r.layer_done_s[l - 1], r.layer_done_s[1] - r.layer_done_s[0]);
  }
  // The floor: weights + KV over 8 GPUs' HBM peak (3.35 TB/s each) dominates a decode step.
  EXPECT_DOUBLE_EQ(r.floor.hbm_s, static_cast<double>(g.total_weight_bytes() + g.total_kv_read_bytes() +
                                                      g.total_kv_write_bytes()) /
                                      8.0 / 3.35e12);
  EXPECT_DOUBLE_EQ(r.floor.step_s, r.floor.hbm_s);
  EXPECT_GT(r.seconds, r.floor.step_s);
  // Same inputs, same result.
  GpuPass again(GpuConfig{}, NodeConfig{}, PassConfig{});
  EXPECT_EQ(again.run(g).seconds, r.seconds);
}

// A group spans whole nodes or divides one: tp 16 (two nodes) and tp 8 x pp 3 (three
// nodes) are groups; tp 12 is not, nor a pipeline of stages spanning nodes.
TEST(GpuPass, GroupsSpanWholeNodesOrDivideOne) {
  const auto make = [](std::uint32_t tp, std::uint32_t pp) {
    PassConfig cfg;
    cfg.tp_degree = tp;
    cfg.pp_degree = pp;
    return GpuPass(GpuConfig{}, NodeConfig{}, cfg);
  };
  EXPECT_EQ(make(16, 1).tp_nodes(), 2u);
  EXPECT_EQ(make(8, 3).tp_nodes(), 1u);
  EXPECT_EQ(make(4, 2).pp_degree(), 2u);
  EXPECT_THROW(make(12, 1), std::invalid_argument);
  EXPECT_THROW(make(16, 2), std::invalid_argument);
  EXPECT_THROW(make(4, 3), std::invalid_argument);
}

// One decode step of a tiny model (Llama-3.1-8B cut to 2 layers: hidden 4,096, 32 query
// and 8 KV heads) for one sequence of 100 cached tokens, on two p5.48xlarge.
//
// TP 8 x PP 2: layer 0 (with the embedding) on node 0, layer 1 (with the final norm and
// LM head) on node 1. Each stage runs the kernels TP 8 on one node runs, so the step is the
// one-node step plus one stage transfer: the token's 4,096 x 2 B = 8,192 B of activations,
// each of node 0's 8 GPUs sending 1,024 B on its rail to its peer (15 us + 1,024 / Be,
// Be = 49.612403 GB/s as in GpuNode.HierarchicalAllReduceOverTwoNodesByHand), then an
// all-gather on node 1 (1 us + 7/8 x 8,192 / 450 GB/s), 2 us setup: 2 + 15 + 0.020640 +
// 1 + 0.015929 = 18.036569 us. Its EFA
// floor is 1,024 / Be = 20.64 ns; the HBM floor is the larger stage's, node 1's: layer 1
// and the head.
//
// TP 16 over both nodes: 2 row-parallel GEMMs per layer (o_proj, down_proj), 4 all-reduces
// of 8,192 B, each with an EFA phase between the nodes of one_shot 15 us + 1,024 / Be =
// 15.020640 us (each GPU's 8,192 / 8 B after its node's reduce-scatter, sent to its peer);
// the EFA floor 4 x 2 (1/2) x 1,024 / Be = 82.56 ns, 4 x 1,024 B sent by each GPU.
TEST(GpuPass, MultiNodeDecodeStepOfATinyModel) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json", {"model.num_hidden_layers=2"});
  const auto g = workloads::lower_decode(m, {100});
  const double be = 4.0 * 12.5e9 * 8192.0 / 8256.0;
  PassConfig one_node;
  GpuPass tp8(GpuConfig{}, NodeConfig{}, one_node);
  const GpuPassResult a = tp8.run(g);
  PassConfig piped;
  piped.pp_degree = 2;
  GpuPass pp2(GpuConfig{}, NodeConfig{}, piped);
  const GpuPassResult b = pp2.run(g);
  const double transfer = 2e-6 + 15e-6 + 1024.0 / be + 1e-6 + 7.0 / 8.0 * 8192.0 / 450e9;
  EXPECT_NEAR(transfer, 18.036569e-6, 1e-12);
  EXPECT_NEAR(b.seconds, a.seconds + transfer, 1e-15);
  ASSERT_EQ(b.layer_done_s.size(), 2u);
  EXPECT_NEAR(b.layer_done_s[0], a.layer_done_s[0], 1e-15);
  EXPECT_NEAR(b.layer_done_s[1], a.layer_done_s[1] + transfer, 1e-15);
  EXPECT_NEAR(b.busy.efa_s, 15e-6 + 1024.0 / be, 1e-15);
  EXPECT_EQ(b.busy.efa_bytes, 1024u);
  EXPECT_NEAR(b.floor.efa_s, 1024.0 / be, 1e-18);
  std::uint64_t stage1 = 0;
  bool second = false;
  for (const auto& op : g.ops) {
    second = second || op.layer == 1;
    if (second) stage1 += op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes;
  }
  EXPECT_DOUBLE_EQ(b.floor.hbm_s, static_cast<double>(stage1) / 8.0 / pp2.hbm().peak_bytes_per_s);
  EXPECT_DOUBLE_EQ(b.floor.step_s, b.floor.hbm_s);
  EXPECT_GT(b.seconds, b.floor.step_s);

  PassConfig wide;
  wide.tp_degree = 16;
  GpuPass tp16(GpuConfig{}, NodeConfig{}, wide);
  const GpuPassResult c = tp16.run(g);
  EXPECT_EQ(tp16.tp_nodes(), 2u);
  const NodeCollective ar = multi_node_all_reduce(NodeConfig{}, 2, 8192);
  EXPECT_EQ(ar.efa_algorithm, NodeAlgorithm::kOneShot);
  EXPECT_NEAR(ar.efa_s, 15e-6 + 1024.0 / be, 1e-15);
  EXPECT_NEAR(ar.efa_s, 15.020640e-6, 1e-12);
  EXPECT_NEAR(c.busy.efa_s, 4.0 * ar.efa_s, 1e-15);
  EXPECT_EQ(c.busy.efa_bytes, 4u * 1024u);
  EXPECT_NEAR(c.floor.efa_s, 4.0 * 1024.0 / be, 1e-18);
  EXPECT_GT(c.seconds, c.floor.step_s);
}

}  // namespace
}  // namespace wse::gpu
