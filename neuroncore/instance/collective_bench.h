// The `collective` microbenchmark: all-reduce, all-gather and reduce-scatter bandwidth
// versus message size on one trn2.48xlarge instance (4 x 4 NeuronLink torus).
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

std::vector<std::string> run_collective_bench(const sim::BenchArgs& args);

}  // namespace wse::neuron
