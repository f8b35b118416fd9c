// Decode attention on tiled fidelity: the mapping and phases of run_attention
// (attention.h: append, query multicast, local scores / softmax / P V, the flash-decoding
// combine by chain or tree along each head row, then up column 0) on a fabric of nodes of
// k x k PEs (tiled(per_pe, k)), so that whole-wafer heads run fast. Equations, error
// bound and measurements: docs/wse_mesh.md, "Attention on tiled fidelity".
//
// Every PE keeps its own state and engine (the per-PE kernel's: stores, score FMACs,
// softmax, P V, combine steps, in arrival order). The node fabric carries only what
// crosses between nodes:
//  - query and append: the per-PE trees, a node taking the ports by which a tree enters
//    and leaves its PEs (the source's node loops its own wavelets back through its RAMP).
//    A wavelet delivered to a node at d reaches its PE (c, r) at d + ((c mod k) + (r mod
//    k)) H, the PE hops from the node's north-west PE: exact when the links inside the
//    node carry nothing else. The source is one PE: at k > 1 its append and query
//    wavelets enter the fabric one a cycle, alternately (its ramp's round-robin);
//  - combine: an edge of the chain or tree whose two PEs lie in different nodes is a
//    stream on the node fabric (a node hop is k H; chain colors alternate by node); an
//    edge inside a node is an event: each wavelet leaves the sender's ramp one a cycle
//    and reaches its parent 2R + h H later, h = 0 for the chain (its PE hops are in the
//    k H node hop of the stream that leaves the node, as in the tiled GEMV's chain) and
//    the edge's span for the tree (k a power of two: rounds of span >= k join nodes'
//    north-west PEs, hop for hop). Events due at cycle d are taken before the fabric's
//    deliveries of d.
// Links and ramps inside a node are not contended. Wavelet hops are those of the per-PE
// routes (each wavelet crosses each link of its route once), so they equal run_attention's.
// Heads of 5 rows or more fold as run_attention's (the first pass on the tiled fabric, the
// column pass per-PE).
#pragma once

#include <cstdint>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

// One head on a fresh fabric tiled(per-PE grid, k), reported for all heads (as the
// FabricConfig overload of run_attention; `a.origin` is ignored). k = 1 is the per-PE
// fabric with this node mapping, equal to run_attention cycle for cycle. Throws
// std::invalid_argument for k = 0 or a tree combine with k not a power of two, and
// CapacityError as run_attention. Defined in attention.cpp (it shares run_attention's run).
AttentionResult run_attention_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                    const AttentionConfig& a);

}  // namespace wse::wafer
