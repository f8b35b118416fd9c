// Speed of the transformer prefill on a trn2.48xlarge: one 10,000-token Llama-3.1-70B
// prompt (target: under 2 s of wall time) and a batch of 64 such prompts (under 60 s),
// TP over all cores (configs/hardware/trn2_48xlarge.yaml). Prints the wall times, the
// simulated prefill time, per-layer timeline excerpts and the engine utilizations.
// Usage: neuroncore_prefill_bench [batch ...] [HARDWARE.yaml] [hw.KEY=VALUE ...]
// (default: 1 64 on configs/hardware/trn2_48xlarge.yaml), e.g.
// neuroncore_prefill_bench 1 configs/hardware/trn3_instance.yaml hw.prefill.overlap=true;
// decode:B:CONTEXT runs a decode step of B sequences of CONTEXT cached tokens instead
// (its time, step breakdown and floor).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "neuroncore/transformer/prefill.h"
#include "systemc_models/config/config.h"

namespace {

using wse::neuron::PrefillResult;

void print(const char* what, const PrefillResult& r, double wall_s, double flops) {
  std::printf("%s\n", what);
  std::printf(
      "  wall time            %.3f s (%llu instructions simulated, %llu chip runs, %llu layers and "
      "%llu operators reused)\n",
      wall_s, static_cast<unsigned long long>(r.busy.instructions),
      static_cast<unsigned long long>(r.busy.chip_runs), static_cast<unsigned long long>(r.reused_layers),
      static_cast<unsigned long long>(r.reused_operators));
  std::printf("  simulated pass       %.3f ms on %u cores (%u chips)\n", r.seconds() * 1e3, r.physical_cores,
              r.chips);
  const auto first =
      std::find_if(r.layers.begin(), r.layers.end(), [](const auto& l) { return l.layer >= 0; });
  const auto last =
      std::find_if(r.layers.rbegin(), r.layers.rend(), [](const auto& l) { return l.layer >= 0; });
  if (first != r.layers.end()) {
    std::printf("  layer 0 ready at     %.3f ms, last layer at %.3f ms\n", first->end_ps * 1e-9,
                last->end_ps * 1e-9);
  }
  if (first != r.layers.end() && first->operators.size() <= 16) {
    std::printf(
        "  decoder layer 0 by operator (time, tensor / vector / scalar / DMA busy per core, collective):\n");
    for (const auto& o : first->operators) {
      std::printf("    %-44s %9.1f us  %8.1f / %7.1f / %7.1f / %8.1f us  %8.1f us\n", o.name.c_str(),
                  o.busy.elapsed_ps * 1e-6, o.busy.tensor_ps * 1e-6, o.busy.vector_ps * 1e-6,
                  o.busy.scalar_ps * 1e-6, o.busy.dma_ps * 1e-6, o.busy.collective_ps * 1e-6);
    }
  }
  std::printf("  achieved             %.1f TFLOPS (model FLOPs / time)\n", flops / r.seconds() * 1e-12);
  std::printf(
      "  utilization          tensor %.1f%%  vector %.1f%%  scalar %.1f%%  DMA %.1f%%  HBM %.1f%%  "
      "NeuronLink %.1f%% (collectives %.1f%% of the time)\n",
      100 * r.tensor_utilization(), 100 * r.vector_utilization(), 100 * r.scalar_utilization(),
      100 * r.dma_utilization(), 100 * r.hbm_utilization(), 100 * r.link_utilization(),
      100 * r.busy.collective_ps / static_cast<double>(r.total_ps));
}

}  // namespace

int sc_main(int argc, char** argv) {  // libsystemc provides main()
  std::vector<std::uint64_t> batches;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> decodes;  // (sequences, cached tokens)
  std::vector<std::string> overrides;                            // hw.prefill.overlap=true, ...
  const std::string root = WSE_SOURCE_DIR;
  std::string hardware = root + "/configs/hardware/trn2_48xlarge.yaml";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("decode:", 0) == 0) {
      const std::size_t colon = a.find(':', 7);
      decodes.emplace_back(
          std::strtoull(a.c_str() + 7, nullptr, 10),
          colon == std::string::npos ? 1000 : std::strtoull(a.c_str() + colon + 1, nullptr, 10));
    } else if (a.size() > 5 && a.compare(a.size() - 5, 5, ".yaml") == 0) {
      hardware = std::filesystem::absolute(a).string();
    } else if (a.find('=') != std::string::npos) {
      overrides.push_back(a);
    } else {
      batches.push_back(std::strtoull(argv[i], nullptr, 10));
    }
  }
  if (batches.empty() && decodes.empty()) batches = {1, 64};
  auto doc = wse::config::parse("model:\n  include: " + root +
                                    "/workloads/data/models/meta-llama--Meta-Llama-3.1-70B_config.json\n"
                                    "hw:\n  include: " +
                                    hardware + "\n",
                                "prefill_bench.yaml", overrides);
  wse::config::Section r = doc.root();
  wse::config::Section ms = r.section("model", "model");
  const wse::workloads::TransformerModel model = wse::workloads::read_transformer(ms);
  wse::config::Section hw = r.section("hw", "instance");
  wse::config::Section trn = hw.section("trainium", "chip");
  const wse::neuron::ChipConfig chip = wse::neuron::read_chip_config(trn);
  wse::config::Section inst = hw.section("instance", "instance");
  const wse::neuron::InstanceConfig instance = wse::neuron::read_instance_config(inst);
  wse::config::Section pre = hw.section("prefill", "prefill");
  const wse::neuron::PrefillConfig cfg = wse::neuron::read_prefill_config(pre);
  doc.finish();
  std::printf("Llama-3.1-70B bf16 prefill on %s: TP %u x LNC %u, %s HBM, GEMM token block %llu\n",
              std::filesystem::path(hardware).filename().c_str(), cfg.tp_degree, cfg.lnc,
              cfg.hbm_fidelity == wse::neuron::HbmFidelity::kStreaming ? "streaming" : "bank",
              static_cast<unsigned long long>(cfg.gemm_token_block));
  for (std::uint64_t b : batches) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto g = wse::workloads::lower_prefill(model, std::vector<std::uint64_t>(b, 10000));
    wse::neuron::TrainiumPrefill prefill(chip, instance, cfg);
    const PrefillResult res = prefill.run(g, model.weight_bytes());
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string what = std::to_string(b) + " x 10,000-token prompt(s)" +
                             (b == 1    ? " (target < 2 s)"
                              : b == 64 ? " (target < 60 s)"
                                        : "");
    print(what.c_str(), res, wall, static_cast<double>(g.total_flops()));
    std::printf("  FLOP bound           %.3f ms (model FLOPs / peak of %u cores)\n",
                static_cast<double>(g.total_flops()) / (res.physical_cores * 128.0 * 128 * 2 * 2.4e9) * 1e3,
                res.physical_cores);
  }
  for (const auto& [sequences, context] : decodes) {
    const auto g = wse::workloads::lower_decode(model, std::vector<std::uint64_t>(sequences, context));
    const auto t0 = std::chrono::steady_clock::now();
    wse::neuron::TrainiumPrefill step(chip, instance, cfg);
    const PrefillResult res = step.run(g, model.weight_bytes());
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string what =
        "decode step of " + std::to_string(sequences) + " x " + std::to_string(context) + " cached tokens";
    print(what.c_str(), res, wall, static_cast<double>(g.total_flops()));
    double runtime = 0;
    for (const auto& l : res.layers) {
      for (const auto& o : l.operators) runtime += o.busy.runtime_ps;
    }
    std::printf(
        "  step                 %.3f ms (collectives %.3f ms, runtime %.3f ms); floor compute %.3f / HBM "
        "%.3f / collective %.3f ms, ratio %.2f\n",
        res.seconds() * 1e3, res.busy.collective_ps * 1e-9, runtime * 1e-9, res.floor.compute_s * 1e3,
        res.floor.hbm_s * 1e3, res.floor.collective_s * 1e3, res.seconds() / res.floor.step_s);
  }
  return 0;
}
