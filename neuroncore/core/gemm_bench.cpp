#include "neuroncore/core/gemm_bench.h"

#include <chrono>
#include <cstdio>
#include <set>
#include <tuple>

#include "neuroncore/core/gemm.h"
#include "systemc_models/sim/output.h"

namespace wse::neuron {

std::vector<std::string> run_gemm_bench(const sim::BenchArgs& args) {
  sim::CsvWriter csv({"cores", "dtype", "M", "K", "N", "time_us", "achieved_tflops", "peak_tflops",
                      "tensor_utilization", "hbm_utilization", "instructions"});
  ChipConfig chip = trainium2_chip();
  // Whole-GEMM runs move up to tens of GB: the streaming HBM keeps them fast (the bank
  // model agrees within 1% on compute-bound GEMMs; see docs/neuroncore.md).
  chip.hbm_fidelity = HbmFidelity::kStreaming;
  const std::vector<std::uint64_t> sizes = args.quick
                                               ? std::vector<std::uint64_t>{128, 512, 2048}
                                               : std::vector<std::uint64_t>{128, 512, 2048, 8192, 16384};
  const std::uint64_t fixed = args.quick ? 1024 : 4096;
  std::set<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> shapes;
  for (std::uint64_t s : sizes) {
    shapes.insert({s, s, s});
    shapes.insert({s, fixed, fixed});
    shapes.insert({fixed, s, fixed});
    shapes.insert({fixed, fixed, s});
  }
  for (DType d : {DType::kBf16, DType::kFp8}) {
    const TensorEngineConfig& te = chip.core.tensor;
    const double peak = 2.0 * te.rows * te.columns * te.moving_per_cycle(d) * te.clock.hz;
    for (const auto& [m, k, n] : shapes) {
      const auto w0 = std::chrono::steady_clock::now();
      const GemmResult r = run_gemm(chip, {m, k, n, d});
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      csv.row({"1", std::string(to_string(d)), std::to_string(m), std::to_string(k), std::to_string(n),
               sim::fmt_num(r.seconds * 1e6), sim::fmt_num(r.achieved_tflops), sim::fmt_num(peak * 1e-12),
               sim::fmt_num(r.tensor_utilization), sim::fmt_num(r.hbm_utilization),
               std::to_string(r.instructions)});
      if (!args.quiet) {
        std::printf("%-4s M %5llu K %5llu N %5llu  %10.1f us  %6.1f TFLOPS  util %.3f  (%.2f s)\n",
                    std::string(to_string(d)).c_str(), static_cast<unsigned long long>(m),
                    static_cast<unsigned long long>(k), static_cast<unsigned long long>(n), r.seconds * 1e6,
                    r.achieved_tflops, r.tensor_utilization, wall);
      }
    }
  }
  // The same GEMMs split over the 8 cores of the chip (N divided), sharing its HBM.
  for (DType d : {DType::kBf16, DType::kFp8}) {
    const TensorEngineConfig& te = chip.core.tensor;
    const double peak = chip.cores * 2.0 * te.rows * te.columns * te.moving_per_cycle(d) * te.clock.hz;
    for (const std::uint64_t s : sizes) {
      if (s < 4096 / (args.quick ? 4 : 1)) continue;
      const GemmResult r = run_gemm_on_cores(chip, {s, s, s, d}, chip.cores);
      csv.row({std::to_string(chip.cores), std::string(to_string(d)), std::to_string(s), std::to_string(s),
               std::to_string(s), sim::fmt_num(r.seconds * 1e6), sim::fmt_num(r.achieved_tflops),
               sim::fmt_num(peak * 1e-12), sim::fmt_num(r.tensor_utilization),
               sim::fmt_num(r.hbm_utilization), std::to_string(r.instructions)});
      if (!args.quiet) {
        std::printf("%-4s %u cores, %llu^3  %10.1f us  %6.1f TFLOPS  util %.3f  HBM %.3f\n",
                    std::string(to_string(d)).c_str(), chip.cores, static_cast<unsigned long long>(s),
                    r.seconds * 1e6, r.achieved_tflops, r.tensor_utilization, r.hbm_utilization);
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "gemm.csv", csv.str());
  return {"gemm.csv"};
}

}  // namespace wse::neuron
