// GEMV on tiled fidelity: the GEMV of gemv.h on a P x Q PE grid, simulated on a fabric
// of nodes of k x k PEs (tiled(per_pe, k)) so that whole-wafer grids run fast.
//
// Mapping per node (J, I), which holds PE columns J*k .. J*k + kc - 1 and PE rows
// I*k .. I*k + kr - 1 (kc, kr <= k at the grid's east and south edges):
//  - x multicast: the top node row sends its kc PE columns' segments (ceil(Kt_j / 2)
//    wavelets each, vector after vector) south as one message on the k-wide link; a node
//    hands wavelet w of a vector to PE-column lane l in round-robin over the lanes that
//    still expect wavelets of that vector. Every PE (r, c) of the node has its own engine
//    (gemv_pe_engine.h, fmac_cycles over the node's largest Mt) fed by lane c, so the
//    node's k x k PEs compute as per-PE. All kr PE rows of a node receive x at its first
//    row's time (the tiled fabric's bound: up to (k - 1) x H cycles early).
//  - chain reduction to the east: a node sends its kr PE rows' sums (ceil(Mt_i / per)
//    wavelets each per vector, lanes interleaved round-robin) on the k-wide link. A
//    wavelet arriving at d passes the node's kc PE columns as the per-PE chain would: PE
//    (r, c) adds it on its own engine at max(ready, its adder free, its own FMACs of that
//    vector done), ready = d + 1 at the first PE column and the previous column's add end
//    + R + R (ramp out, ramp in) + 1 (issue) at the others; the H of each PE link is in
//    the node hop (k x H). Uncontended that is start + a + (kc - 1)(2R + 1 + a), the
//    per-PE chain stage 2R + H + 1 + a per PE crossed. The west node's sums start at its
//    west PE column (no add there), one wavelet per cycle per PE row's ramp.
//  - tree and K-tree (any m): the row's reduction graph of run_gemv over PE columns; an
//    edge inside a node is crossed there with the per-PE costs (2R + h H, then the add,
//    on the receiving PE's own engine, in arrival order with the node's other arrivals,
//    merged in time with the fabric's deliveries), an edge between nodes is carried by
//    the node fabric (a node sends at most one stream; a side list of PE rows travels
//    with it). Tree: k must be a power of two (rounds of span >= k join node column 0s,
//    2^s / k node hops: the per-PE hops). K-tree: groups of whole nodes (ktree_group a
//    multiple of k; auto picks the best multiple of k); inside a group the chain is
//    crossed as above without the H (in the node hop, as the chain), the chain over the
//    roots runs g / k node hops a stage.
#pragma once

#include <cstdint>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

// Runs `g` (origin ignored: a fresh tiled fabric sized to the grid) with nodes of k x k
// PEs; k = 1 is a per-PE fabric with this node mapping (one lane per node), equal to
// run_gemv cycle for cycle, for one vector or m. GemvConfig::simulated_vectors applies.
GemvResult run_gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                          const GemvConfig& g);

}  // namespace wse::wafer
