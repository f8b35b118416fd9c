// A GEMM C[M, N] = A[M, K] x B[K, N] (`count` independent instances, e.g. experts) as a
// GPU kernel runs it: the output is cut into thread-block (CTA) tiles of tile.m x tile.n,
// each computed by one SM looping over K in steps of tile.k; optionally K is split into
// `split_k` parts (separate CTAs whose fp32 partial tiles are then summed). CTAs run in
// waves of at most one CTA per SM.
//
//   ctas      = ceil(M / tile.m) x ceil(N / tile.n) x count x split_k
//   waves     = ceil(ctas / sms)
//   cta_s     = ceil(ceil(K / tile.k) / split_k) x (tile.m x tile.n x tile.k x 2) / flops_per_clock / clock
//   compute_s = waves x cta_s                  (tile and wave quantisation)
//   hbm_bytes = (M K + M N) x 2 B x count + K N count in the weights' type
//               (+ 2 x 4 B x split_k x M N count, the fp32 partial sums written and read
//               back, when they do not fit in L2)
//   hbm_s     = latency + hbm_bytes / streaming bandwidth of the HBM model
//   seconds   = max(compute_s, hbm_s)          (loads overlap the math: multistage pipelines)
//   efficiency = 2 M N K count / (compute_s x sms x flops_per_clock x clock)
//
// The kernel library chooses, for each shape, the fastest of the configured tiles with
// split_k = 1 or the split that fills one wave, floor(sms / tiles) (at most the K steps).
#pragma once

#include <cstdint>
#include <vector>

#include "gpu/core/gpu_config.h"
#include "workloads/model/transformer.h"

namespace wse::gpu {

struct CtaTile {
  std::uint32_t m = 128;
  std::uint32_t n = 256;
  std::uint32_t k = 64;
  bool operator==(const CtaTile&) const = default;
};

// The HBM as a streaming pipe: the neuroncore HBM model's streaming fidelity (peak x
// (1 - tRFC / tREFI), each transfer delivered tRCD + tCL + burst after its last byte).
struct HbmPipe {
  double bytes_per_s = 0.0;
  double latency_s = 0.0;
  double peak_bytes_per_s = 0.0;  // all pins, no refresh
  double seconds(std::uint64_t bytes) const {
    return bytes == 0 ? 0.0 : latency_s + static_cast<double>(bytes) / bytes_per_s;
  }
};
HbmPipe hbm_pipe(const neuron::HbmConfig& hbm);

struct GemmShape {
  std::uint64_t m = 0, k = 0, n = 0;
  std::uint32_t count = 1;
  workloads::DType dtype = workloads::DType::bf16;  // of B (the weights); A and C are bf16
};

struct GemmTiming {
  CtaTile tile;
  std::uint32_t split_k = 1;
  std::uint64_t ctas = 0;
  std::uint64_t waves = 0;
  double cta_s = 0.0;
  double compute_s = 0.0;
  std::uint64_t hbm_bytes = 0;
  double hbm_s = 0.0;
  double seconds = 0.0;
  double efficiency = 0.0;  // of the tensor cores while compute_s runs
  std::uint64_t flops = 0;  // 2 M N K count
};

// One tile and split, as above.
GemmTiming gemm_timing(const GpuConfig& gpu, const HbmPipe& hbm, const GemmShape& s, const CtaTile& tile,
                       std::uint32_t split_k);
// The fastest of `tiles` (each with split_k 1 and the one-wave split); ties keep the
// earlier tile and the smaller split. `tiles` must not be empty.
GemmTiming best_gemm(const GpuConfig& gpu, const HbmPipe& hbm, const GemmShape& s,
                     const std::vector<CtaTile>& tiles);

}  // namespace wse::gpu
