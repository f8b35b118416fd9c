// Reductions and broadcasts mapped on the per-PE fabric, timed by simulated wavelets.
//
// Reduction (sum) of a vector held by every PE of a P x Q grid (a line of p PEs is the
// grid 1 x p, a row, or p x 1, a column):
//  - each grid row is reduced to its root column, then that column is reduced to the
//    root PE (rows, then columns: a two-dimensional reduction when P > 1 and Q > 1);
//  - Reduction::kChain: a pipelined chain toward the east (rows) and the south (the root
//    column); PE k adds each arriving wavelet of sums to its own and sends the sum on.
//    The colors alternate by position (a PE receives on one color and sends on the
//    other, since a route is per PE and color). Root: the south-east PE.
//  - Reduction::kTree: a binary tree toward the west (rows) and the north (the root
//    column) in ceil(log2 n) rounds; in round s the PE at k with k mod 2^(s+1) = 2^s
//    sends to k - 2^s over 2^s hops on color base + s (PEs between pass it on). A
//    wavelet of sums goes on once every stream feeding its PE has delivered that
//    wavelet and it has been added. Root: the north-west PE.
//  - Reduction::kKTree: WaferLLM's K-tree (reduce part): each line is cut into groups of
//    g = ktree_group PEs (0: ktree_auto_group), chained east (south) to the group's last
//    PE on colors base, base + 1 by position parity, then the group roots chained to the
//    line's last PE, g hops a stage, on colors base + 2, base + 3 by group parity (the
//    PEs in between pass them on). Root: the south-east PE, as the chain.
//  Each arriving wavelet costs its PE one add instruction (add_cycles: SIMD add width and
//  SRAM ports) starting the cycle after delivery, once the PE's engine is free; the
//  stream's operand comes from the fabric (no SRAM read port), the running sum is read
//  and written in SRAM. The reduction's time is the cycle its root's last add ends.
//
// All-reduce (run_allreduce): the reduction above, then its result broadcast back from the
// root on `broadcast_color` along the same lines (up and down the root column, and from
// each of its PEs along its row), pipelined wavelet by wavelet: the root sends each
// wavelet of the sum the cycle its last add ends. The time is the cycle after the last
// wavelet reaches the last PE.
//
// Broadcast of a vector from one PE of a P x Q grid to all the others by one multicast
// color: along the source's row (east and west), and from every PE of that row down and
// up its column; each PE takes a copy off its RAMP. The time is the cycle after the last
// wavelet reaches the last PE (when it is usable there).
#pragma once

#include <cstdint>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

struct ReduceConfig {
  std::uint64_t elements = 64;           // vector length held by each PE
  Accumulate dtype = Accumulate::kFp32;  // element type: fp16 (2 per wavelet) or fp32 (1)
  std::uint32_t grid_rows = 1;           // P: PEs north to south (1: a row line)
  std::uint32_t grid_cols = 4;           // Q: PEs west to east (1: a column line)
  Reduction reduction = Reduction::kChain;
  PeCoord origin{0, 0};  // north-west PE of the grid on the fabric
  Color row_color = 0;   // first color of the row phase (chain: 2 colors, tree: ceil(log2 Q))
  // First color of the column phase (chain: 2, tree: ceil(log2 P)). Rows and columns
  // of up to 4096 PEs fit in 12 colors each (a WSE-3 side is at most 1176: 11 rounds).
  Color col_color = 12;
  std::uint32_t ktree_group = 0;  // K-tree: PEs per group along a line (0 = auto, about sqrt(n))
  Color broadcast_color = 23;     // all-reduce: the color the result comes back on
};

struct BroadcastConfig {
  std::uint64_t elements = 64;           // vector length
  Accumulate dtype = Accumulate::kFp32;  // element type (sets elements per 32-bit wavelet)
  std::uint32_t grid_rows = 1;           // P
  std::uint32_t grid_cols = 4;           // Q
  PeCoord origin{0, 0};                  // north-west PE of the grid on the fabric
  PeCoord source{0, 0};                  // the sending PE, relative to origin
  Color color = 0;
};

struct CollectiveResult {
  std::uint64_t total_cycles = 0;  // reduce: root's last add done; broadcast, all-reduce: last wavelet usable
  std::uint64_t reduce_cycles = 0;  // reduce, all-reduce: the root's last add done
  std::uint64_t wavelets = 0;       // wavelets of the vector
  PeCoord root{0, 0};               // reduce: the PE that holds the sum (relative to origin)
  std::uint64_t wavelet_hops = 0;
  std::uint64_t fabric_cycles_simulated = 0;
  double wall_seconds = 0.0;
};

// Run on `fabric` (which must contain the grid at `origin`), from its current cycle.
CollectiveResult run_reduce(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r);
CollectiveResult run_broadcast(Fabric& fabric, const PeConfig& pe, const BroadcastConfig& b);
CollectiveResult run_allreduce(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r);
// The same on a fresh fabric exactly the size of the grid (plus its origin offset).
CollectiveResult run_reduce(const FabricConfig& fabric, const PeConfig& pe, const ReduceConfig& r);
CollectiveResult run_broadcast(const FabricConfig& fabric, const PeConfig& pe, const BroadcastConfig& b);
CollectiveResult run_allreduce(const FabricConfig& fabric, const PeConfig& pe, const ReduceConfig& r);

}  // namespace wse::wafer
