// A tiled GEMM, C[M, N] = A[M, K] x B[K, N], lowered onto one NeuronCore the way an NKI
// kernel does it:
//   for each block of n_tile (<= 512) columns of C:
//     load the B panel (K x n_tile) into SBUF, slice by 128-row slice (two panel
//     buffers when they fit, so the next panel loads while this one is used);
//     for each block of 128 rows of C:
//       for each slab of `a_slab_tiles` 128 x 128 tiles of A along K:
//         load the slab into one of `a_buffers` rotating SBUF buffers;
//         for each tile of the slab: matmul into the block's PSUM bank (accumulate);
//       vector engine: copy PSUM -> SBUF (one of `c_buffers` output buffers);
//       store the C tile to HBM.
// Every load and store is split evenly over all DMA queues of the core (pieces of at
// least `min_dma_piece`), as the DMA descriptors of a kernel are spread over the
// engines. Queues run in program order, so the store of a C tile is emitted after the
// first A loads of the next block (software pipelining): otherwise it would hold those
// loads back until the block's compute ends. Operands are stored tile-major in HBM (every tile is one
// contiguous range).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "neuroncore/core/chip_sim.h"
#include "neuroncore/core/program.h"

namespace wse::neuron {

struct GemmShape {
  std::uint64_t m = 128;
  std::uint64_t k = 128;
  std::uint64_t n = 512;
  DType dtype = DType::kBf16;  // of A and B; C is written in the same type
};

struct GemmPlan {
  std::uint32_t a_slab_tiles = 16;
  std::uint32_t a_buffers = 3;
  std::uint32_t c_buffers = 2;
  std::uint64_t min_dma_piece = 4096;
  std::uint64_t hbm_base = 0;  // A, then B, then C, contiguous
};

// Thrown when operands or buffers do not fit; the message names what and by how much.
class CapacityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GemmFootprint {
  std::uint64_t sbuf_bytes;  // B panel(s) + A buffers + C buffers
  std::uint32_t b_buffers;   // 2 when a second B panel fits, else 1
  std::uint64_t hbm_bytes;   // A + B + C
};
GemmFootprint gemm_footprint(const NeuronCoreConfig& nc, const GemmShape& s, const GemmPlan& p);

// Checks SBUF, PSUM and HBM capacity (CapacityError) and builds the program.
Program lower_gemm(const ChipConfig& chip, const GemmShape& s, const GemmPlan& p = {});

struct GemmResult {
  double seconds = 0.0;
  double tensor_utilization = 0.0;
  double achieved_tflops = 0.0;
  double hbm_utilization = 0.0;
  std::uint64_t instructions = 0;
};
// Runs the GEMM on core 0 of `chip` (other cores idle).
GemmResult run_gemm(const ChipConfig& chip, const GemmShape& s, const GemmPlan& p = {});

// Runs the GEMM split by columns of C over `cores` cores of the chip (tensor
// parallelism): core c computes C[:, c N / cores ...] from all of A (its own copy in HBM)
// and its slice of B. The cores share the HBM. tensor_utilization is the mean over cores.
GemmResult run_gemm_on_cores(const ChipConfig& chip, const GemmShape& s, std::uint32_t cores,
                             const GemmPlan& p = {});

}  // namespace wse::neuron
