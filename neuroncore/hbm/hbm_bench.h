// The `hbm` microbenchmark: achieved bandwidth and latency of the HBM model.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Writes hbm.csv into args.out_dir; returns the file names written.
std::vector<std::string> run_hbm_bench(const sim::BenchArgs& args);

}  // namespace wse::neuron
