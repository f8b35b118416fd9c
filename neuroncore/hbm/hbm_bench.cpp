#include "neuroncore/hbm/hbm_bench.h"

#include <cstdio>

#include "neuroncore/hbm/hbm_presets.h"
#include "neuroncore/hbm/hbm_traffic.h"
#include "systemc_models/sim/output.h"

namespace wse::neuron {

std::vector<std::string> run_hbm_bench(const sim::BenchArgs& args) {
  sim::CsvWriter csv({"device", "refresh", "pattern", "scope", "request_bytes", "outstanding", "requests",
                      "achieved_GBps", "peak_GBps", "efficiency", "mean_latency_ns"});
  struct Device {
    std::string name;
    HbmConfig cfg;
  };
  const std::vector<Device> devices = {{"hbm3_6400_1stack", hbm3_reference()},
                                       {"trainium2", trainium2_hbm()}};
  const std::uint64_t n_channel = args.quick ? 4000 : 100000;
  const std::uint64_t n_chip = args.quick ? 20000 : 400000;
  const std::uint64_t n_latency = args.quick ? 2000 : 20000;
  for (const Device& d : devices) {
    auto run = [&](HbmPattern p, HbmScope s, std::uint64_t bytes, std::uint64_t outstanding, std::uint64_t n,
                   bool refresh = true) {
      HbmConfig cfg = d.cfg;
      cfg.refresh = refresh;
      HbmTrafficSpec spec;
      spec.pattern = p;
      spec.scope = s;
      spec.request_bytes = bytes;
      spec.outstanding = outstanding;
      spec.requests = n;
      const HbmTrafficResult r = run_hbm_traffic(cfg, spec);
      const std::uint64_t shown_outstanding =
          outstanding != 0 ? outstanding
                           : 2ULL * d.cfg.queue_depth * (s == HbmScope::kOneChannel ? 1 : d.cfg.channels());
      csv.row({d.name, refresh ? "on" : "off", to_string(p), to_string(s), std::to_string(bytes),
               std::to_string(shown_outstanding), std::to_string(r.requests),
               sim::fmt_num(r.achieved_bytes_per_s / 1e9), sim::fmt_num(r.peak_bytes_per_s / 1e9),
               sim::fmt_num(r.efficiency), sim::fmt_num(r.mean_latency_s * 1e9)});
      if (!args.quiet) {
        std::printf("%-18s refresh %-3s %-10s %-7s %4llu B  eff %.3f  %8.1f GB/s  lat %7.1f ns\n",
                    d.name.c_str(), refresh ? "on" : "off", to_string(p).c_str(), to_string(s).c_str(),
                    static_cast<unsigned long long>(bytes), r.efficiency, r.achieved_bytes_per_s / 1e9,
                    r.mean_latency_s * 1e9);
      }
    };
    for (HbmScope s : {HbmScope::kOneChannel, HbmScope::kAllChannels}) {
      const std::uint64_t n = s == HbmScope::kOneChannel ? n_channel : n_chip;
      run(HbmPattern::kSequential, s, 32, 0, n);
      run(HbmPattern::kSequential, s, 64, 0, n);
      run(HbmPattern::kRandom, s, 32, 0, n);
      run(HbmPattern::kRandom, s, 64, 0, n);
    }
    // Latency at low load: one request in flight at a time.
    run(HbmPattern::kRandom, HbmScope::kAllChannels, 32, 1, n_latency);
    run(HbmPattern::kSequential, HbmScope::kAllChannels, 32, 1, n_latency);
    // Without refresh closing rows, a random read nearly always meets another open row:
    // the precharge-activate-read path.
    run(HbmPattern::kRandom, HbmScope::kAllChannels, 32, 1, n_latency, false);
  }
  sim::write_file_atomic(args.out_dir / "hbm.csv", csv.str());
  return {"hbm.csv"};
}

}  // namespace wse::neuron
