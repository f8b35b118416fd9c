#include "neuroncore/transformer/kernel_builders.h"

#include <cmath>

namespace wse::neuron {

DType chip_dtype(workloads::DType t) {
  switch (t) {
    case workloads::DType::fp32:
      return DType::kFp32;
    case workloads::DType::fp8:
      return DType::kFp8;
    // mxfp4 weights are taken as fp8 on the tensor engine (assumption: dequantised to the
    // narrowest type the array multiplies).
    case workloads::DType::mxfp4:
      return DType::kFp8;
    case workloads::DType::bf16:
    case workloads::DType::fp16:
      return DType::kBf16;
  }
  return DType::kBf16;
}

std::string binary(std::uint64_t bytes) { return pretty_binary(Size{bytes}); }

// The smallest DMA instruction that still lets a chip's queues outrun its HBM: a queue
// spends `instruction_overhead` per instruction and then moves data at its bandwidth, so
// with pieces of s bytes the queues of all cores deliver
//   R_dma x s / (s + overhead x b_q)   (R_dma = cores x queues x b_q),
// which stays at or above the HBM peak R_hbm for s >= overhead x b_q x R_hbm / (R_dma - R_hbm).
// Smaller pieces let the consumers start earlier; larger ones would only add pipeline
// fill. 0 when the queues cannot outrun the HBM at all (then as large as allowed).
std::uint64_t smallest_efficient_dma_piece(const ChipConfig& chip) {
  const DmaConfig& d = chip.core.dma;
  const double b_q = d.bandwidth_per_queue.bytes_per_s;
  const double r_dma = b_q * d.queues * chip.cores;
  const double r_hbm = chip.hbm.peak_bandwidth().bytes_per_s;
  if (r_dma <= r_hbm) return 0;
  const double s = d.instruction_overhead.seconds * b_q * r_hbm / (r_dma - r_hbm);
  return ceil_div(static_cast<std::uint64_t>(std::ceil(s)), 4096) * 4096;
}

}  // namespace wse::neuron
