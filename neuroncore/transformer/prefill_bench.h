// The `prefill` benchmark: one Llama-3.1-70B prompt prefilled on a trn2.48xlarge (TP over
// all cores): per-layer timeline, the operators of a layer, engine utilizations.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Writes prefill_layers.csv and prefill_operators.csv into args.out_dir.
std::vector<std::string> run_prefill_bench(const sim::BenchArgs& args);

}  // namespace wse::neuron
