#include "gpu/register.h"

#include <cstdio>
#include <string>
#include <vector>

#include "gpu/core/gemm.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"
#include "gpu/transformer/pass.h"
#include "systemc_models/sim/output.h"

namespace wse::gpu {

namespace {

// GEMM time and tensor-core efficiency on an H100 SXM (the GpuConfig defaults, the HBM
// model's streaming pipe, the default CTA tiles) versus M, for the GEMMs of one
// Llama-3.1-70B layer on one GPU at tp 8: the sawtooth of wave quantisation and the
// point where a GEMM turns from HBM-bound to compute-bound.
std::vector<std::string> run_gemm_bench(const sim::BenchArgs& args) {
  const GpuConfig gpu;
  const HbmPipe hbm = hbm_pipe(gpu.hbm);
  const PassConfig pass;
  sim::CsvWriter csv({"gemm", "dtype", "M", "K", "N", "tile_m", "tile_n", "tile_k", "split_k", "ctas",
                      "waves", "compute_us", "hbm_us", "time_us", "efficiency", "achieved_tflops", "bound"});
  struct Shape {
    const char* name;
    std::uint64_t k, n;
  };
  // q/k/v fused: (8,192 + 2 x 1,024) / 8 columns; o_proj: K 8,192 / 8; gate/up fused:
  // 2 x 28,672 / 8 columns; down_proj: K 28,672 / 8.
  const std::vector<Shape> shapes = {
      {"qkv", 8192, 1280}, {"o_proj", 1024, 8192}, {"gate_up", 8192, 7168}, {"down_proj", 3584, 8192}};
  std::vector<std::uint64_t> ms = {1, 8, 16, 32, 64, 128, 256, 512};
  for (std::uint64_t m = 1024; m <= (args.quick ? 2048u : 16384u); m += args.quick ? 1024 : 256)
    ms.push_back(m);
  for (workloads::DType d : {workloads::DType::bf16, workloads::DType::fp8}) {
    for (const Shape& s : shapes) {
      for (std::uint64_t m : ms) {
        const GemmTiming t = best_gemm(gpu, hbm, GemmShape{m, s.k, s.n, 1, d}, pass.gemm_tiles);
        const double tflops = static_cast<double>(t.flops) / t.seconds * 1e-12;
        csv.row({s.name, d == workloads::DType::fp8 ? "fp8" : "bf16", std::to_string(m), std::to_string(s.k),
                 std::to_string(s.n), std::to_string(t.tile.m), std::to_string(t.tile.n),
                 std::to_string(t.tile.k), std::to_string(t.split_k), std::to_string(t.ctas),
                 std::to_string(t.waves), sim::fmt_num(t.compute_s * 1e6), sim::fmt_num(t.hbm_s * 1e6),
                 sim::fmt_num(t.seconds * 1e6), sim::fmt_num(t.efficiency), sim::fmt_num(tflops),
                 t.compute_s >= t.hbm_s ? "compute" : "hbm"});
        if (!args.quiet && (m & (m - 1)) == 0) {
          std::printf(
              "%-4s %-9s M %5llu  %8.2f us  %6.1f TFLOPS  efficiency %.3f  %s (tile %ux%u, split %u)\n",
              d == workloads::DType::fp8 ? "fp8" : "bf16", s.name, static_cast<unsigned long long>(m),
              t.seconds * 1e6, tflops, t.efficiency, t.compute_s >= t.hbm_s ? "compute" : "hbm", t.tile.m,
              t.tile.n, t.split_k);
        }
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "gpu_gemm.csv", csv.str());
  return {"gpu_gemm.csv"};
}

// All-reduce on a p5.48xlarge's NVSwitch (NodeConfig defaults: 450 GB/s per direction,
// 1 us per step, 2 us setup) for 2 to 8 GPUs, 1 KiB to 1 GiB: each algorithm's price and
// the one auto takes, beside the bandwidth floor.
std::vector<std::string> run_allreduce_bench(const sim::BenchArgs& args) {
  const NodeConfig node;
  sim::CsvWriter csv(
      {"gpus", "bytes", "ring_us", "one_shot_us", "nvls_us", "chosen", "floor_us", "bus_bandwidth_gb_s"});
  for (std::uint32_t p : {2u, 4u, 8u}) {
    for (std::uint64_t bytes = 1024; bytes <= (args.quick ? (1ULL << 20) : (1ULL << 30)); bytes *= 4) {
      const NodeCollective a = node_all_reduce(node, p, bytes);
      const double bus =
          2.0 * (p - 1) / p * static_cast<double>(bytes) / a.seconds * 1e-9;  // NCCL-tests convention
      csv.row({std::to_string(p), std::to_string(bytes),
               sim::fmt_num(node_all_reduce(node, p, bytes, NodeAlgorithm::kRing).seconds * 1e6),
               sim::fmt_num(node_all_reduce(node, p, bytes, NodeAlgorithm::kOneShot).seconds * 1e6),
               sim::fmt_num(node_all_reduce(node, p, bytes, NodeAlgorithm::kNvls).seconds * 1e6),
               std::string(to_string(a.algorithm)), sim::fmt_num(a.floor_s * 1e6), sim::fmt_num(bus)});
      if (!args.quiet && p == 8) {
        std::printf("8 GPUs %11llu B  %10.2f us  %-8s  bus %7.1f GB/s\n",
                    static_cast<unsigned long long>(bytes), a.seconds * 1e6,
                    std::string(to_string(a.algorithm)).c_str(), bus);
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "gpu_allreduce.csv", csv.str());
  // Over 2 and 4 p5.48xlarge (8 GPUs each, 32 EFA adapters of 100 Gb/s): the hierarchical
  // all-reduce with each algorithm between the nodes, the one auto takes, its EFA phase,
  // and the NVLink and EFA floors.
  sim::CsvWriter nodes_csv({"nodes", "gpus", "bytes", "efa_ring_us", "efa_one_shot_us", "chosen", "total_us",
                            "efa_us", "nvlink_floor_us", "efa_floor_us", "bus_bandwidth_gb_s"});
  for (std::uint32_t n : {2u, 4u}) {
    for (std::uint64_t bytes = 1024; bytes <= (args.quick ? (1ULL << 20) : (1ULL << 30)); bytes *= 4) {
      NodeConfig fixed = node;
      fixed.efa.algorithm = NodeAlgorithm::kRing;
      const NodeCollective ring = multi_node_all_reduce(fixed, n, bytes);
      fixed.efa.algorithm = NodeAlgorithm::kOneShot;
      const NodeCollective one = multi_node_all_reduce(fixed, n, bytes);
      const NodeCollective a = multi_node_all_reduce(node, n, bytes);
      const double p = static_cast<double>(n) * node.gpus;
      const double bus = 2.0 * (p - 1) / p * static_cast<double>(bytes) / a.seconds * 1e-9;
      nodes_csv.row({std::to_string(n), std::to_string(n * node.gpus), std::to_string(bytes),
                     sim::fmt_num(ring.seconds * 1e6), sim::fmt_num(one.seconds * 1e6),
                     std::string(to_string(a.efa_algorithm)), sim::fmt_num(a.seconds * 1e6),
                     sim::fmt_num(a.efa_s * 1e6), sim::fmt_num(a.floor_s * 1e6),
                     sim::fmt_num(a.efa_floor_s * 1e6), sim::fmt_num(bus)});
      if (!args.quiet && n == 2) {
        std::printf("2 x 8 GPUs %11llu B  %10.2f us (EFA %s %.2f us)  bus %7.1f GB/s\n",
                    static_cast<unsigned long long>(bytes), a.seconds * 1e6,
                    std::string(to_string(a.efa_algorithm)).c_str(), a.efa_s * 1e6, bus);
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "gpu_allreduce_nodes.csv", nodes_csv.str());
  return {"gpu_allreduce.csv", "gpu_allreduce_nodes.csv"};
}

}  // namespace

void register_gpu(sim::Registry& registry) {
  registry.add_bench(
      "gpu-gemm",
      sim::Bench{"GPU GEMM on an H100 SXM: time, tile, split K, waves and tensor-core efficiency of "
                 "Llama-3.1-70B's layer GEMMs at tp 8 versus M (1..16384), bf16 and fp8 (gpu_gemm.csv)",
                 run_gemm_bench});
  registry.add_bench(
      "gpu-allreduce",
      sim::Bench{"all-reduce on a p5.48xlarge NVSwitch, 2 to 8 GPUs, 1 KiB to 1 GiB: ring, one_shot "
                 "and nvls prices, the one chosen, the floor and the bus bandwidth (gpu_allreduce.csv); "
                 "the hierarchical all-reduce over 2 and 4 p5.48xlarge over EFA (gpu_allreduce_nodes.csv)",
                 run_allreduce_bench});
}

}  // namespace wse::gpu
