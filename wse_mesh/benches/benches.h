// Microbenchmarks of the wafer model, run by `wse-emu bench fabric|gemv --out DIR`.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"
#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

// Latency and accepted throughput versus offered load for uniform, transpose and
// hotspot traffic on 8x8, 32x32 and 64x64 meshes (quick: 8x8 only), and the 32x32
// saturation under other router assumptions (not in quick). Writes fabric_sensitivity.csv,
// fabric_traffic.csv and fabric_saturation.csv.
std::vector<std::string> bench_fabric(const sim::BenchArgs& args);

// GEMV time versus matrix size and PE grid on WSE-2 and WSE-3, split into compute,
// multicast and reduction, for chain and tree reductions (quick: 4096 on 60x60 and
// 120x120). Writes gemv.csv.
std::vector<std::string> bench_gemv(const sim::BenchArgs& args);

// Reductions (chain and tree, on a row line and a square grid) and broadcasts (row from
// its end, grid from a corner and from the centre) versus size, per-PE fabric, WSE-3 PE
// (quick: 16 and 64 PEs a side, 8 elements). Writes collectives.csv.
std::vector<std::string> bench_collectives(const sim::BenchArgs& args);

// GEMV on tiled fidelity (k = 4, 8) against per-PE (k = 1) on 240 x 240 and 720 x 720
// grids, WSE-3, chain reduction (quick: 4096 on 120 x 120, k = 1 and 8). Writes
// gemv_tiled.csv.
std::vector<std::string> bench_gemv_tiled(const sim::BenchArgs& args);

// The built-in defaults of the two wafers (the same values as configs/hardware/*.yaml).
PeConfig wse2_pe_config();
PeConfig wse3_pe_config();

}  // namespace wse::wafer
