// The `parallelism` benchmark: Llama-3.1-70B prompts prefilled on a trn2.48xlarge under
// tensor x pipeline x data parallel splits of its 16 chips (pipeline_op.h): time to the
// first token and prompts per second of each, the best per prompt length.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Writes parallelism.csv into args.out_dir.
std::vector<std::string> run_parallelism_bench(const sim::BenchArgs& args);

}  // namespace wse::neuron
