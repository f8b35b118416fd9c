// GEMV on tiled fidelity: the GEMV of gemv.h on a P x Q PE grid, simulated on a fabric
// of nodes of k x k PEs (tiled(per_pe, k)) so that whole-wafer grids run fast.
//
// Mapping per node (J, I), which holds PE columns J*k .. J*k + kc - 1 and PE rows
// I*k .. I*k + kr - 1 (kc, kr <= k at the grid's east and south edges):
//  - x multicast: the top node row sends its kc PE columns' segments (ceil(Kt_j / 2)
//    wavelets each) south as one message on the k-wide link; a node hands wavelet w to
//    PE-column lane l in round-robin over the lanes that still expect wavelets. Each lane
//    is one PE column: its FMACs (fmac_cycles over the node's largest Mt) run in parallel
//    with the other lanes', so the node's k x k PEs compute as per-PE. All kr PE rows of a
//    node receive x at its first row's time (the tiled fabric's bound: up to (k - 1) x H
//    cycles early).
//  - chain reduction to the east: a node sends its kr PE rows' sums (ceil(Mt_i / per)
//    wavelets each, lanes interleaved round-robin) on the k-wide link. A wavelet arriving
//    at d passes the node's kc PE columns in a pipeline: the first add starts at
//    max(d + 1, lane free, node FMACs done), and each further PE column adds after
//    R + R (ramp out, ramp in) + 1 (issue) cycles: final at start + a + (kc - 1)(2R + 1 + a);
//    the H of each PE link is in the node hop (k x H). That is exactly the per-PE chain
//    stage 2R + H + 1 + a per PE crossed. A lane (PE row) starts one add per a cycles.
//  Only the chain reduction is mapped at node granularity (kTree is rejected).
#pragma once

#include <cstdint>

#include "wse_mesh/fabric.h"
#include "wse_mesh/gemv.h"
#include "wse_mesh/pe.h"

namespace wse::wafer {

// Runs `g` (origin ignored: a fresh tiled fabric sized to the grid) with nodes of k x k
// PEs; k = 1 is a per-PE fabric with this node mapping (one lane per node).
GemvResult run_gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                          const GemvConfig& g);

}  // namespace wse::wafer
