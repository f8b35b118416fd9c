// The `gemm` microbenchmark: tensor-engine utilization of a tiled GEMM on one
// NeuronCore versus M, K, N (128..16384), bf16 and fp8.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Writes gemm.csv into args.out_dir; returns the file names written.
std::vector<std::string> run_gemm_bench(const sim::BenchArgs& args);

}  // namespace wse::neuron
