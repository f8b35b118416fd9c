#include "neuroncore/instance/collective_bench.h"

#include <cstdio>

#include "neuroncore/instance/torus.h"
#include "systemc_models/sim/output.h"

namespace wse::neuron {

std::vector<std::string> run_collective_bench(const sim::BenchArgs& args) {
  sim::CsvWriter csv({"collective", "chips", "bytes", "time_us", "algbw_GBps", "busbw_GBps",
                      "link_utilization", "messages"});
  const InstanceConfig inst;  // trn2.48xlarge, as configs/hardware/trn2_48xlarge.yaml
  const std::uint64_t max_bytes = args.quick ? (16ULL << 20) : (1ULL << 30);
  for (Collective c : {Collective::kAllReduce, Collective::kAllGather, Collective::kReduceScatter}) {
    for (std::uint64_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
      const CollectiveResult r = run_collective(inst, c, bytes);
      csv.row({std::string(to_string(c)), std::to_string(inst.chips()), std::to_string(bytes),
               sim::fmt_num(static_cast<double>(r.time_ps) * 1e-6),
               sim::fmt_num(r.algorithm_bandwidth / 1e9), sim::fmt_num(r.bus_bandwidth / 1e9),
               sim::fmt_num(r.link_utilization), std::to_string(r.messages)});
      if (!args.quiet) {
        std::printf("%-14s %11llu B  %10.2f us  algbw %7.1f GB/s  busbw %7.1f GB/s\n",
                    std::string(to_string(c)).c_str(), static_cast<unsigned long long>(bytes),
                    static_cast<double>(r.time_ps) * 1e-6, r.algorithm_bandwidth / 1e9,
                    r.bus_bandwidth / 1e9);
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "collective.csv", csv.str());
  return {"collective.csv"};
}

}  // namespace wse::neuron
