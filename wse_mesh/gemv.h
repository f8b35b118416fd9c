// GEMV y = W x mapped on a P x Q grid of PEs, timed by the per-PE fabric.
//
// Mapping (the decode projections of a transformer):
//  - W (M rows x K columns, fp16) is tiled: PE (j, i) of the grid (column j west to east,
//    row i north to south) holds a block of about M/P rows and K/Q columns (the first
//    M mod P grid rows take one row more, likewise for columns; at most Mt = ceil(M/P)
//    by Kt = ceil(K/Q)).
//  - Input multicast along the columns: segment j of x (Kt fp16, two per wavelet) starts
//    in the SRAM of the grid's top-row PE (j, 0), which sends it south on color
//    `x_color`; every PE below takes a copy off its RAMP and forwards it south.
//  - Compute overlaps the multicast: each arriving x element triggers one vector FMAC
//    over the PE's Mt accumulators (fmac_cycles(Mt)), taking its operand straight from
//    the fabric; wavelets wait in the PE's input queue while the engine is busy.
//  - Partial sums are reduced along the rows, by default by a pipelined chain to the
//    east: PE (0, i) sends its Mt partial sums east as soon as its last FMAC is done;
//    PE (j, i) adds each arriving wavelet to its own partial sums (add_cycles) and sends
//    the sum on east; the easternmost PE (Q-1, i) holds y's rows of block i. Colors
//    alternate between the two `psum_colors` by column parity, because a PE receives a
//    sum on one color and sends on the other (a route is per color and PE). Or by a
//    binary tree (Reduction::kTree) rooted at the west PE: a wavelet of sums moves on
//    once every stream feeding that PE has delivered and been added.
// All time comes from the fabric simulation (hops, ramps, link sharing, buffers) and the
// PE's instruction costs; nothing is added as a closed formula.
#pragma once

#include <array>
#include <cstdint>

#include "wse_mesh/fabric.h"
#include "wse_mesh/pe.h"

namespace wse::wafer {

// How partial sums are reduced along a grid row.
//  - kChain: pipelined chain to the east (Q - 1 stages of one hop each).
//  - kTree: binary tree to the west in ceil(log2 Q) rounds; round s joins PEs 2^s apart
//    on its own color (colors tree_color .. tree_color + rounds - 1).
enum class Reduction : std::uint8_t { kChain, kTree };

struct GemvConfig {
  std::uint64_t rows = 4096;    // M: output elements
  std::uint64_t cols = 4096;    // K: input elements
  std::uint32_t grid_rows = 4;  // P: PEs north to south (split M)
  std::uint32_t grid_cols = 4;  // Q: PEs west to east (split K)
  Accumulate accumulate = Accumulate::kFp32;
  PeCoord origin{0, 0};  // north-west PE of the grid on the fabric
  Color x_color = 0;
  Reduction reduction = Reduction::kChain;
  std::array<Color, 2> psum_colors{1, 2};  // chain
  Color tree_color = 1;                    // tree: first of ceil(log2 Q) colors
};

struct GemvResult {
  std::uint64_t tile_rows = 0;            // Mt
  std::uint64_t tile_cols = 0;            // Kt
  std::uint64_t sram_bytes_per_pe = 0;    // largest (top-row) PE
  std::uint64_t total_cycles = 0;         // last y wavelet summed at the east edge
  std::uint64_t multicast_cycles = 0;     // last x wavelet delivered to its PE (0 if P = 1)
  std::uint64_t compute_cycles = 0;       // FMAC cycles of one PE (engine busy time)
  std::uint64_t compute_done_cycles = 0;  // last PE to finish its FMACs
  std::uint64_t reduction_cycles = 0;     // total - compute_done: the exposed reduction
  std::uint64_t wavelet_hops = 0;
  std::uint64_t fabric_cycles_simulated = 0;
  double wall_seconds = 0.0;
};

// Runs the GEMV on `fabric` (which must contain the grid at `origin`). Throws
// CapacityError if a PE's tile, input segment and accumulators exceed its SRAM.
GemvResult run_gemv(Fabric& fabric, const PeConfig& pe, const GemvConfig& gemv);
// The same on a fresh fabric exactly the size of the grid.
GemvResult run_gemv(const FabricConfig& fabric, const PeConfig& pe, const GemvConfig& gemv);

}  // namespace wse::wafer
