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
//  - GEMM (GemvConfig::vectors = m > 1): the m x segments follow each other on the
//    multicast color, each PE computes vector by vector with m x Mt accumulators, and the
//    sums of vector v follow those of v - 1 down the reduction, so the reduction of one
//    vector overlaps the FMACs of the next. A PE's engine runs the adds of incoming sums
//    before its FMACs (they steal cycles from the FMAC loop), an add of vector v only once
//    the PE's own vector-v FMACs are done (gemv_pe_engine.h). In steady state each vector
//    adds the busiest engine's FMAC + add time (or a link's or ramp's wavelets, if more).
// All time comes from the fabric simulation (hops, ramps, link sharing, buffers) and the
// PE's instruction costs; nothing is added as a closed formula (save the steady-state
// shortcut of GemvConfig::simulated_vectors, which extends a simulated period).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

// How partial sums are reduced along a grid row.
//  - kChain: pipelined chain to the east (Q - 1 stages of one hop each).
//  - kTree: binary tree to the west in ceil(log2 Q) rounds; round s joins PEs 2^s apart
//    on its own color (colors tree_color .. tree_color + rounds - 1).
//  - kKTree: the reduce half of WaferLLM's K-tree all-reduce (MeshGEMV): the row is cut
//    into groups of g = ktree_group consecutive PEs; phase 1 reduces each group to its
//    east PE (the group root) by a pipelined chain (colors psum_colors, by column
//    parity); phase 2 reduces the group roots to the row's east PE by a pipelined chain
//    over the roots, g hops a stage, the PEs in between passing the wavelets on (colors
//    ktree_colors, by group parity). Root: the east PE, as the chain.
enum class Reduction : std::uint8_t { kChain, kTree, kKTree };

// "chain", "tree", "ktree".
const char* reduction_name(Reduction r);
// Parses one of reduction_name's names; false (and `r` unchanged) for anything else.
bool parse_reduction(std::string_view name, Reduction& r);

// Rounds of a tree reduction of n PEs: ceil(log2 n).
inline std::uint32_t tree_rounds(std::uint32_t n) {
  std::uint32_t r = 0;
  while ((1u << r) < n) ++r;
  return r;
}
// Colors one line reduction of n PEs takes (chain: two alternating; tree: one per round;
// K-tree: two for the group chains and two for the chain over the group roots).
inline std::uint32_t reduction_colors(Reduction red, std::uint32_t n) {
  if (n <= 1) return 0;
  if (red == Reduction::kChain) return n > 2 ? 2u : 1u;
  if (red == Reduction::kKTree) return n > 2 ? 4u : 2u;
  return tree_rounds(n);
}
// Throws std::invalid_argument naming `kernel` when `red` is a reduction it does not map.
void require_mapped(Reduction red, std::initializer_list<Reduction> mapped, const char* kernel);

// Uncontended latency of one wavelet of sums through a K-tree over n PEs with groups of
// g (PEs per group): (g' - 1) chain stages of 2R + H + 1 + a inside the largest group
// (g' = min(g, n)), then (ceil(n / g) - 1) stages of 2R + g H + 1 + a over the group
// roots (a = add cycles of one wavelet). With R = H = a = 1: 4g + 4n/g + n - 9 (for g
// dividing n), least at g = sqrt(n).
std::uint64_t ktree_latency(std::uint32_t n, std::uint32_t g, std::uint32_t hop, std::uint32_t ramp,
                            std::uint64_t add);
// The group size K-tree uses over n PEs when GemvConfig::ktree_group is 0: the g in
// 1..n, a multiple of `multiple_of` (tiled fidelity: whole nodes, k), that minimises
// ktree_latency (the smallest such g on ties); about sqrt(n) on the default fabric.
std::uint32_t ktree_auto_group(std::uint32_t n, std::uint32_t hop, std::uint32_t ramp, std::uint64_t add,
                               std::uint32_t multiple_of = 1);

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
  // K-tree: PEs per group along the row (0 = auto: ktree_auto_group, about sqrt(Q)).
  // Phase 1 (the chains inside the groups) takes psum_colors, phase 2 (the chain over
  // the group roots) ktree_colors: four colors in all, besides x_color.
  std::uint32_t ktree_group = 0;
  std::array<Color, 2> ktree_colors{3, 4};
  // Input vectors streamed through the grid one after another against the same
  // stationary weights: 1 = GEMV; m > 1 = the GEMM Y = W X of m columns (a decode batch
  // of m tokens, or m prompt tokens of a prefill). Vector v's x segment follows vector
  // v-1's on the multicast color, each PE runs its FMACs vector by vector, and the partial
  // sums of vector v follow those of v-1 down the reduction; results per vector are the
  // Mt sums of each grid row (m x Mt in all).
  // Engine: a PE's FMACs run vector by vector; the adds of incoming sums of vector v may
  // start once the PE's own vector-v FMACs are done, and take the engine before the FMACs
  // of later vectors (gemv_pe_engine.h). SRAM: the top row holds the m x segments, every
  // PE m x Mt accumulators.
  std::uint32_t vectors = 1;
  // Simulation shortcut for large m, on a fresh fabric (the FabricConfig overloads and
  // run_gemv_tiled): 0 simulates all m vectors; s > 0 (at least 6) with m > s simulates
  // s vectors, and if the completion times of their last 4 have the same spacing p (the
  // pipeline's steady state), adds the other m - s vectors at p cycles each; otherwise it
  // simulates all m after all. GemvResult::vectors_simulated tells which happened.
  std::uint32_t simulated_vectors = 8;
  // Simulation shortcut of run_gemv_tiled: node rows below the top one whose PE rows hold
  // the same tile heights run alike, each later by the x multicast's node hop (k H), so
  // only the last node row of each such run of rows is simulated and the others follow
  // by that shift (gemv_tiled.h, "Folded node rows"). Exact; false simulates every row.
  bool fold_rows = true;
};

// With m = `vectors` > 1 every field covers all m vectors: the times are those of the
// last vector (the GEMM's end), compute_cycles is one PE's FMAC time for all m.
struct GemvResult {
  std::uint64_t tile_rows = 0;            // Mt
  std::uint64_t tile_cols = 0;            // Kt
  std::uint64_t sram_bytes_per_pe = 0;    // largest (top-row) PE
  std::uint64_t total_cycles = 0;         // last y wavelet (of the last vector) summed at the root
  std::uint64_t first_vector_cycles = 0;  // vector 0's last y wavelet summed: the pipeline's fill
  std::uint64_t multicast_cycles = 0;     // last x wavelet delivered to its PE (0 if P = 1)
  std::uint64_t compute_cycles = 0;       // FMAC cycles of one PE, all vectors, without adds
  std::uint64_t compute_done_cycles = 0;  // last PE to finish its FMACs (of the last vector)
  std::uint64_t reduction_cycles = 0;     // total - compute_done: the exposed reduction
  std::uint64_t wavelet_hops = 0;
  std::uint64_t fabric_cycles_simulated = 0;
  std::uint32_t vectors_simulated = 0;  // < vectors: the rest follow the steady state (simulated_vectors)
  double wall_seconds = 0.0;
};

// A lower bound on any GEMV (GEMM of m vectors) of `g` on its grid: the larger of
//  compute: m x ceil(Mt Kt / simd_fp16_fmac), every multiply-add of the largest tile at
//           the widest SIMD rate (fp16), no port limit;
//  latency: ((P - 1) + (Q - 1)) H + 2R, x crossing the grid's rows and the sums its
//           columns, one ramp out and one in.
std::uint64_t gemv_floor_cycles(const FabricConfig& fabric, const PeConfig& pe, const GemvConfig& g);

// Runs the GEMV on `fabric` (which must contain the grid at `origin`). Throws
// CapacityError if a PE's tile, input segment and accumulators exceed its SRAM.
GemvResult run_gemv(Fabric& fabric, const PeConfig& pe, const GemvConfig& gemv);
// The same on a fresh fabric exactly the size of the grid.
GemvResult run_gemv(const FabricConfig& fabric, const PeConfig& pe, const GemvConfig& gemv);

}  // namespace wse::wafer
