// Vector kernels of a transformer layer mapped on a line of PEs that holds a vector
// (one token's hidden state, or a row of scores) split evenly, timed by the per-PE
// fabric: RMSNorm, LayerNorm, softmax, and elementwise operations (SwiGLU, residual add,
// RoPE).
//
// Mapping (docs/wse_mesh.md, "Vector kernels"): the vector of `elements` values is split
// over `pes` PEs of one row (a line), about elements / pes each.
//  - RMSNorm: each PE sums the squares of its values (FMACs), the line reduces the
//    partial sums to one PE (chain or tree of collectives.h), that PE computes the scale
//    (an rsqrt: `PeConfig` cost) and broadcasts it back along the line, each PE scales
//    its values (multiply by the scale and the norm weight).
//  - LayerNorm: as RMSNorm with the mean and the sum of squares reduced together (two
//    values per wavelet pair).
//  - Softmax: local maximum, max-reduce and broadcast, local exp and sum, sum-reduce and
//    broadcast, local scale.
//  - Elementwise: `ops_per_element` instructions per value, local only (no fabric).
// `vectors` tokens are processed one after another on the same PEs; their reductions
// and broadcasts pipeline on the fabric. Each PE first runs the first local stage of
// every vector (its data is in SRAM), then serves the fabric in arrival order. The chain
// reduces toward the east PE, the tree toward the west PE (collectives.h), and each
// round of reduce-and-broadcast has its own colors, the broadcast one multicast color.
#pragma once

#include <cstdint>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

enum class VectorOp : std::uint8_t { kRmsNorm, kLayerNorm, kSoftmax, kElementwise };

struct VectorKernelConfig {
  VectorOp op = VectorOp::kRmsNorm;
  std::uint64_t elements = 4096;         // values of one vector
  std::uint32_t vectors = 1;             // vectors (tokens) processed one after another
  std::uint32_t pes = 64;                // PEs of the line holding each vector
  std::uint32_t ops_per_element = 1;     // elementwise: instructions per value (SwiGLU: see docs)
  Accumulate dtype = Accumulate::kFp16;  // storage type of the values (fp16 or fp32)
  Reduction reduction = Reduction::kTree;
  PeCoord origin{0, 0};  // west PE of the line on the fabric
};

struct VectorKernelResult {
  std::uint64_t total_cycles = 0;      // the last vector's last value final on every PE
  std::uint64_t local_cycles = 0;      // PE instruction time of the fullest PE, all vectors
  std::uint64_t reduce_cycles = 0;     // fabric time spent in reductions (critical path)
  std::uint64_t broadcast_cycles = 0;  // fabric time spent in broadcasts (critical path)
  std::uint64_t wavelet_hops = 0;
  std::uint64_t fabric_cycles_simulated = 0;
  double wall_seconds = 0.0;
};

// Runs the kernel on `fabric` (which must contain the line at `origin`).
VectorKernelResult run_vector_kernel(Fabric& fabric, const PeConfig& pe, const VectorKernelConfig& v);
// The same on a fresh per-PE fabric exactly the size of the line.
VectorKernelResult run_vector_kernel(const FabricConfig& fabric, const PeConfig& pe,
                                     const VectorKernelConfig& v);

}  // namespace wse::wafer
