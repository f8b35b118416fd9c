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

// The `prefill-wafer` benchmark (`wse-emu bench prefill-wafer`): a 4,096-token prompt of
// Llama-3.1-8B prefilled on one CS-3 and on WSE-2 sub-regions (300^2 to 660^2 PEs and the
// whole wafer), in pipelined chunks of 64, 128 and 512 tokens, its GEMMs as the faster of the GEMV passes and
// the weight-stationary Cannon GEMM (gemm_cannon.h) against the GEMV passes alone (the ablation). Writes
// prefill_wafer.csv (pass time, tokens/s, the floor and ratio, the critical path's GEMM and attention
// shares). Figures in docs/wse_mesh.md, "Prefill as a GEMM".
std::vector<std::string> bench_prefill_wafer(const sim::BenchArgs& args);

}  // namespace wse::wafer
