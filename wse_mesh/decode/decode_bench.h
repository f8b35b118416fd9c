// The `decode` benchmark (registered with wse-emu as `wse-emu bench decode`): one decode
// step of Llama-3.1-8B on one CS-3 and of Llama-3.1-70B on four, for several batch
// sizes and contexts, at tiled fidelity k = 8 for the GEMVs. Writes decode.csv (step
// time, per-kernel critical-path breakdown, tokens/s) and prints each step's wall time.
// Figures in docs/wse_mesh.md, "Decode on the wafer".
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::wafer {

std::vector<std::string> bench_decode(const sim::BenchArgs& args);

}  // namespace wse::wafer
