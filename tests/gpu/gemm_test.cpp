// GPU GEMM timing from tile and wave quantisation (gpu/core/gemm.h), with every time
// derived by hand below, on the H100 SXM of configs/hardware/h100_sxm.yaml (the defaults
// of GpuConfig): 132 SMs, 4,096 dense bf16 FLOP per clock per SM at 1.83 GHz.
//
// A 128 x 256 x 64 CTA step is 128 x 256 x 64 x 2 / 4,096 = 1,024 clocks; 128 x 128 x 64
// is 512 clocks; 64 x 128 x 64 is 256 clocks. K = 8,192 is 128 steps of 64.
#include <gtest/gtest.h>

#include "gpu/core/gemm.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"

namespace wse::gpu {
namespace {

// A hand-made HBM pipe: 3 TB/s, no latency (the HBM model's own pipe is tested in
// neuroncore; here the GEMM's arithmetic is the subject).
HbmPipe pipe_3tb() {
  HbmPipe p;
  p.bytes_per_s = 3e12;
  p.peak_bytes_per_s = 3e12;
  return p;
}

const std::vector<CtaTile> kTiles = {{128, 256, 64}, {128, 128, 64}, {64, 128, 64}};

// Llama-3.1-70B's fused q/k/v GEMM of an 8,192-token prefill batch on one of 8 GPUs:
// M = 8,192, K = 8,192, N = (8,192 + 2 x 1,024) / 8 = 1,280.
TEST(GpuGemm, WaveQuantisationOfOnePrefillGemm) {
  const GpuConfig h100;
  const GemmShape s{8192, 8192, 1280, 1, workloads::DType::bf16};
  // 128 x 256 tiles: 64 x 5 = 320 CTAs, ceil(320 / 132) = 3 waves (396 CTA slots, 76
  // idle in the last wave); each CTA 128 steps x 1,024 clocks = 131,072 clocks
  // = 71.6240 us at 1.83 GHz; the GEMM 3 x 131,072 = 393,216 clocks = 214.872 us;
  // efficiency 320 / 396 = 0.80808.
  const GemmTiming t = gemm_timing(h100, pipe_3tb(), s, kTiles[0], 1);
  EXPECT_EQ(t.ctas, 320u);
  EXPECT_EQ(t.waves, 3u);
  EXPECT_DOUBLE_EQ(t.cta_s, 131072.0 / 1.83e9);
  EXPECT_DOUBLE_EQ(t.compute_s, 393216.0 / 1.83e9);
  EXPECT_NEAR(t.efficiency, 320.0 / 396.0, 1e-12);
  // Bytes: A 8,192 x 8,192 x 2 + C 8,192 x 1,280 x 2 + B 8,192 x 1,280 x 2 = 176,160,768 B,
  // 58.72 us at 3 TB/s: below the compute time, so the GEMM is compute-bound.
  EXPECT_EQ(t.hbm_bytes, 176160768u);
  EXPECT_DOUBLE_EQ(t.hbm_s, 176160768.0 / 3e12);
  EXPECT_DOUBLE_EQ(t.seconds, t.compute_s);

  // The library's choice: 128 x 128 tiles give 64 x 10 = 640 CTAs in ceil(640 / 132) = 5
  // waves (660 slots) of 128 x 512 = 65,536 clocks: 327,680 clocks = 179.060 us,
  // efficiency 640 / 660 = 0.96970. 64 x 128 tiles tie (1,280 CTAs, 10 waves of 32,768
  // clocks = 327,680): the earlier tile is kept. No split: 132 / 320 < 1.
  const GemmTiming b = best_gemm(h100, pipe_3tb(), s, kTiles);
  EXPECT_EQ(b.tile, (CtaTile{128, 128, 64}));
  EXPECT_EQ(b.split_k, 1u);
  EXPECT_EQ(b.waves, 5u);
  EXPECT_DOUBLE_EQ(b.seconds, 327680.0 / 1.83e9);
  EXPECT_NEAR(b.efficiency, 640.0 / 660.0, 1e-12);
}

// The same GEMM in a decode step of 64 requests: M = 64.
TEST(GpuGemm, DecodeGemmSplitsKAndIsBoundByHbm) {
  const GpuConfig h100;
  const GemmShape s{64, 8192, 1280, 1, workloads::DType::bf16};
  // 128 x 256 tiles: 1 x 5 = 5 output tiles. Unsplit: 5 CTAs, one wave of 128 x 1,024 =
  // 131,072 clocks = 71.624 us, while 127 SMs idle.
  const GemmTiming one = gemm_timing(h100, pipe_3tb(), s, kTiles[0], 1);
  EXPECT_EQ(one.ctas, 5u);
  EXPECT_DOUBLE_EQ(one.compute_s, 131072.0 / 1.83e9);
  // Split K to fill a wave: floor(132 / 5) = 26 parts, 130 CTAs, each ceil(128 / 26) = 5
  // steps = 5,120 clocks = 2.798 us. Partials 2 x 4 B x 26 x 64 x 1,280 = 17.0 MB fit the
  // 50 MB L2, so HBM moves A 64 x 8,192 x 2 + C 64 x 1,280 x 2 + B 8,192 x 1,280 x 2
  // = 22,183,936 B = 7.3946 us at 3 TB/s: the GEMM is HBM-bound at 7.3946 us. The other
  // tiles split to 13 parts and reach the same HBM time (ties keep the first tile).
  const GemmTiming b = best_gemm(h100, pipe_3tb(), s, kTiles);
  EXPECT_EQ(b.tile, kTiles[0]);
  EXPECT_EQ(b.split_k, 26u);
  EXPECT_EQ(b.ctas, 130u);
  EXPECT_EQ(b.waves, 1u);
  EXPECT_DOUBLE_EQ(b.compute_s, 5120.0 / 1.83e9);
  EXPECT_EQ(b.hbm_bytes, 22183936u);
  EXPECT_DOUBLE_EQ(b.seconds, 22183936.0 / 3e12);
  // With an L2 too small for the partials (1 MB), they go through HBM too:
  // + 17,039,360 B = 39,223,296 B = 13.0744 us; the 128 x 128 and 64 x 128 tiles split
  // 13 ways write half as much (8,519,680 B): 30,703,616 B = 10.2345 us, and win.
  GpuConfig small_l2;
  small_l2.l2 = Size{1000000};
  const GemmTiming c = best_gemm(small_l2, pipe_3tb(), s, kTiles);
  EXPECT_EQ(c.tile, kTiles[1]);
  EXPECT_EQ(c.split_k, 13u);
  EXPECT_EQ(c.hbm_bytes, 30703616u);
  EXPECT_DOUBLE_EQ(c.seconds, 30703616.0 / 3e12);
}

TEST(GpuGemm, Fp8RunsAtTwiceTheRate) {
  const GpuConfig h100;
  // A 128 x 256 x 64 fp8 step: 128 x 256 x 64 x 2 / 8,192 = 512 clocks; K = 64 is one
  // step: one CTA of 512 clocks.
  const GemmTiming t =
      gemm_timing(h100, pipe_3tb(), GemmShape{128, 64, 256, 1, workloads::DType::fp8}, kTiles[0], 1);
  EXPECT_DOUBLE_EQ(t.compute_s, 512.0 / 1.83e9);
  // B in fp8: 64 x 256 x 1 B; A and C bf16: (128 x 64 + 128 x 256) x 2 B = 81,920 + 16,384.
  EXPECT_EQ(t.hbm_bytes, 81920u + 16384u);
}

// All-reduces on the NVSwitch of a p5.48xlarge (8 GPUs, 450 GB/s each way), with
// alpha 1 us per step and 2 us setup.
TEST(GpuNode, AllReduceAlgorithmsPricedAlphaBeta) {
  NodeConfig n;
  n.link_bandwidth = Bandwidth{450e9};
  n.link_latency = Duration{1e-6};
  n.collective_setup = Duration{2e-6};
  const std::uint64_t mib = 1048576;  // 64 tokens x 8,192 x 2 B
  // ring: 2 us + 14 x (1 us + 1 MiB / (8 x 450 GB/s)) = 2 + 14 x 1.291271 = 20.0778 us
  EXPECT_DOUBLE_EQ(node_all_reduce(n, 8, mib, NodeAlgorithm::kRing).seconds,
                   2e-6 + 14.0 * (1e-6 + 1048576.0 / (8.0 * 450e9)));
  // one_shot: 2 + 1 + 7 x 1 MiB / 450 GB/s = 3 + 16.3110 = 19.3110 us
  EXPECT_DOUBLE_EQ(node_all_reduce(n, 8, mib, NodeAlgorithm::kOneShot).seconds,
                   3e-6 + 7.0 * 1048576.0 / 450e9);
  // nvls: 2 + 2 + 1.125 x 1 MiB / 450 GB/s = 4 + 2.6214 = 6.6214 us: the fastest
  const NodeCollective a = node_all_reduce(n, 8, mib);
  EXPECT_EQ(a.algorithm, NodeAlgorithm::kNvls);
  EXPECT_DOUBLE_EQ(a.seconds, 4e-6 + 1.125 * 1048576.0 / 450e9);
  EXPECT_DOUBLE_EQ(a.floor_s, 1048576.0 / 450e9);
  // 16 KiB (one token): ring 16.064, one_shot 3 + 7 x 0.036409 = 3.2549, nvls 4.0410 us.
  const NodeCollective small = node_all_reduce(n, 8, 16384);
  EXPECT_EQ(small.algorithm, NodeAlgorithm::kOneShot);
  EXPECT_DOUBLE_EQ(small.seconds, 3e-6 + 7.0 * 16384.0 / 450e9);
  // Without in-switch reduction, auto chooses between ring and one_shot.
  n.in_switch_reduction = false;
  EXPECT_EQ(node_all_reduce(n, 8, mib).algorithm, NodeAlgorithm::kOneShot);
  // One GPU: nothing to reduce.
  EXPECT_EQ(node_all_reduce(n, 1, mib).seconds, 0.0);
}

// The hierarchical all-reduce of a tensor-parallel group over 2 p5.48xlarge (2 nodes x 8
// H100), 1 MiB per GPU (64 tokens x 8,192 x 2 B), NodeConfig's defaults: NVLink 450 GB/s,
// alpha 1 us, setup 2 us; EFA 32 adapters of 100 Gb/s (12.5 GB/s), MTU 8,192 B, header
// 64 B, NIC 1.5 us, path 12 us.
//   1. reduce-scatter in each node, direct: 1 us + 7/8 x 1 MiB / 450 GB/s = 1 + 2.038898
//      = 3.038898 us (each GPU then holds C = 1 MiB / 8 = 131,072 B reduced over its node)
//   2. between the nodes, each GPU on its rail of 32 / 8 = 4 adapters: Be = 4 x 12.5 GB/s x
//      8,192 / 8,256 = 49.612403 GB/s, Le = 2 x 1.5 + 12 = 15 us;
//      one_shot 15 + 131,072 / Be = 15 + 2.641920 = 17.641920 us,
//      ring 2 x (15 + 65,536 / Be) = 32.641920 us: one_shot
//   3. all-gather in each node: 3.038898 us
// 2 + 3.038898 + 17.641920 + 3.038898 = 25.719716 us. Floors: NVLink 7/8 x 1 MiB /
// 450 GB/s = 2.038898 us; EFA 2 x (1/2) x 131,072 / Be = 2.641920 us.
TEST(GpuNode, HierarchicalAllReduceOverTwoNodesByHand) {
  const NodeConfig n;
  const double be = 4.0 * 12.5e9 * 8192.0 / 8256.0;
  const double rs = 1e-6 + 7.0 * 1048576.0 / (8.0 * 450e9);
  const NodeCollective r = multi_node_all_reduce(n, 2, 1048576);
  EXPECT_NEAR(n.efa.rail_bytes_per_s(8), be, 1e-3);
  EXPECT_NEAR(n.efa.latency_s(), 15e-6, 1e-18);
  EXPECT_EQ(r.efa_algorithm, NodeAlgorithm::kOneShot);
  EXPECT_NEAR(r.efa_s, 15e-6 + 131072.0 / be, 1e-15);
  EXPECT_NEAR(r.seconds, 2e-6 + 2.0 * rs + 15e-6 + 131072.0 / be, 1e-15);
  EXPECT_NEAR(r.seconds, 25.719716e-6, 1e-12);
  EXPECT_NEAR(r.floor_s, 7.0 / 8.0 * 1048576.0 / 450e9, 1e-15);
  EXPECT_NEAR(r.efa_floor_s, 131072.0 / be, 1e-15);
  EXPECT_EQ(r.efa_bytes, 131072u);
  // 64 MiB over 4 nodes: C = 8 MiB, C / Be = 169.083 us; one_shot 15 + 3 x 169.083 =
  // 522.25 us, ring 6 x 15 + 1.5 x 169.083 = 343.62 us: ring, each GPU sending 2 x 3/4 C.
  const NodeCollective big = multi_node_all_reduce(n, 4, 64ULL << 20);
  EXPECT_EQ(big.efa_algorithm, NodeAlgorithm::kRing);
  EXPECT_NEAR(big.efa_s, 6.0 * (15e-6 + 8388608.0 / (4.0 * be)), 1e-15);
  EXPECT_EQ(big.efa_bytes, 12582912u);
  // One node: the node's all-reduce.
  EXPECT_EQ(multi_node_all_reduce(n, 1, 1048576).seconds, node_all_reduce(n, 8, 1048576).seconds);
}

}  // namespace
}  // namespace wse::gpu
