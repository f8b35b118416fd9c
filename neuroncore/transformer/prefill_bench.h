// The `prefill` benchmark: one Llama-3.1-70B prompt prefilled on a trn2.48xlarge (TP over
// all cores): per-layer timeline, the operators of a layer, engine utilizations.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "neuroncore/transformer/prefill.h"
#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Writes prefill_layers.csv, prefill_operators.csv, decode_steps.csv and
// prefill_batches.csv into args.out_dir.
std::vector<std::string> run_prefill_bench(const sim::BenchArgs& args);

// Wall time of a series of serving-like prefill batches on one TrainiumPrefill (as the
// serving experiments run them): `batches` batches of 1-3 whole prompts of 200-2,200
// tokens (uniform, from `seed`), each lowered and run.
struct PrefillBatchSeries {
  std::vector<std::uint64_t> tokens;  // M of each batch
  std::vector<double> simulated_ms;   // each batch's simulated prefill time
  std::vector<double> wall_ms;        // each batch's lowering + run wall time
  double first_wall_ms() const { return wall_ms.empty() ? 0.0 : wall_ms.front(); }
  // Mean wall time of batches [from, to) (to clamped to the series).
  double mean_wall_ms(std::size_t from, std::size_t to) const;
  double total_wall_ms() const {
    return mean_wall_ms(0, wall_ms.size()) * static_cast<double>(wall_ms.size());
  }
};
PrefillBatchSeries time_prefill_batches(const workloads::TransformerModel& model, const ChipConfig& chip,
                                        const InstanceConfig& instance, const PrefillConfig& cfg,
                                        std::uint32_t batches, std::uint64_t seed);

}  // namespace wse::neuron
