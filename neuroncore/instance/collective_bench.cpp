#include "neuroncore/instance/collective_bench.h"

#include <cstdio>
#include <utility>

#include "neuroncore/instance/torus.h"
#include "systemc_models/sim/output.h"

namespace wse::neuron {

namespace {

// The torus of `ranks` chips: sub-tori of the trn2.48xlarge's 4 x 4 (whole rows of X
// first, as a tensor-parallel group takes them) up to 16; 32 and 64 are 2-D tori of the
// same links that no instance has (4 x 8, 8 x 8), for the trend.
std::pair<std::uint32_t, std::uint32_t> shape_of(std::uint32_t ranks) {
  if (ranks <= 4) return {ranks, 1};
  if (ranks <= 16) return {4, ranks / 4};
  return {ranks / 8, 8};
}

}  // namespace

std::vector<std::string> run_collective_bench(const sim::BenchArgs& args) {
  sim::CsvWriter csv({"collective", "chips", "torus", "bytes", "algorithm", "chosen", "time_us",
                      "alpha_beta_us", "rounds", "algbw_GBps", "busbw_GBps", "link_utilization", "messages"});
  const InstanceConfig base;  // trn2.48xlarge links, as configs/hardware/trn2_48xlarge.yaml
  const std::uint64_t max_bytes = args.quick ? (16ULL << 20) : (1ULL << 30);
  if (!args.quiet) {
    std::printf("link %.1f GiB/s per direction, %.2f us per hop, setup %.2f us; time (alpha-beta) in us\n",
                base.link_bandwidth.bytes_per_s / (1ULL << 30), base.link_latency.seconds * 1e6,
                base.collective_setup.seconds * 1e6);
  }
  for (Collective c : {Collective::kAllReduce, Collective::kAllGather, Collective::kReduceScatter}) {
    for (std::uint32_t ranks = 2; ranks <= 64; ranks *= 2) {
      InstanceConfig inst = base;
      std::tie(inst.chips_x, inst.chips_y) = shape_of(ranks);
      const std::string shape = std::to_string(inst.chips_x) + "x" + std::to_string(inst.chips_y);
      if (!args.quiet) {
        std::printf("\n%s on %u chips (%s)\n%12s", std::string(to_string(c)).c_str(), ranks, shape.c_str(),
                    "bytes");
        for (CollectiveAlgorithm a : kCollectiveAlgorithms)
          std::printf(" %21s", std::string(to_string(a)).c_str());
        std::printf("  chosen\n");
      }
      for (std::uint64_t bytes = 4; bytes <= max_bytes; bytes *= 4) {
        const CollectiveResult best = run_collective(inst, c, bytes);
        if (!args.quiet) std::printf("%12llu", static_cast<unsigned long long>(bytes));
        for (CollectiveAlgorithm a : kCollectiveAlgorithms) {
          if (!algorithm_applies(inst, a)) {
            if (!args.quiet) std::printf(" %21s", "-");
            continue;
          }
          const CollectiveResult r = run_collective(inst, c, bytes, a);
          csv.row({std::string(to_string(c)), std::to_string(ranks), shape, std::to_string(bytes),
                   std::string(to_string(a)), a == best.algorithm ? "1" : "0",
                   sim::fmt_num(static_cast<double>(r.time_ps) * 1e-6),
                   sim::fmt_num(static_cast<double>(r.alpha_beta_ps) * 1e-6), std::to_string(r.rounds),
                   sim::fmt_num(r.algorithm_bandwidth / 1e9), sim::fmt_num(r.bus_bandwidth / 1e9),
                   sim::fmt_num(r.link_utilization), std::to_string(r.messages)});
          if (!args.quiet) {
            std::printf(" %10.2f (%8.2f)", static_cast<double>(r.time_ps) * 1e-6,
                        static_cast<double>(r.alpha_beta_ps) * 1e-6);
          }
        }
        if (!args.quiet) std::printf("  %s\n", std::string(to_string(best.algorithm)).c_str());
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "collective.csv", csv.str());
  return {"collective.csv"};
}

}  // namespace wse::neuron
