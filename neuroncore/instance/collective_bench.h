// The `collective` microbenchmark: all-reduce, all-gather and reduce-scatter
// latency versus message size per algorithm on 2 to 64 chips of trn2.48xlarge links,
// beside the alpha-beta price of each schedule.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

std::vector<std::string> run_collective_bench(const sim::BenchArgs& args);

}  // namespace wse::neuron
