#include "gpu/core/gemm.h"

#include <algorithm>
#include <stdexcept>

#include "neuroncore/core/hbm_backend.h"
#include "systemc_models/units/integer.h"

namespace wse::gpu {

HbmPipe hbm_pipe(const neuron::HbmConfig& hbm) {
  const neuron::StreamingHbm pipe(hbm);
  HbmPipe p;
  p.bytes_per_s = pipe.bytes_per_ps() * 1e12;
  p.latency_s = static_cast<double>(pipe.latency_ps()) * 1e-12;
  p.peak_bytes_per_s = hbm.peak_bandwidth().bytes_per_s;
  return p;
}

GemmTiming gemm_timing(const GpuConfig& gpu, const HbmPipe& hbm, const GemmShape& s, const CtaTile& tile,
                       std::uint32_t split_k) {
  GemmTiming g;
  g.tile = tile;
  g.split_k = std::max<std::uint32_t>(split_k, 1);
  if (s.m == 0 || s.n == 0 || s.k == 0 || s.count == 0) return g;
  const std::uint64_t k_steps = ceil_div(s.k, tile.k);
  const std::uint64_t steps_per_cta = ceil_div(k_steps, g.split_k);
  g.ctas = ceil_div(s.m, tile.m) * ceil_div(s.n, tile.n) * s.count * g.split_k;
  g.waves = ceil_div(g.ctas, gpu.sms);
  const double fpc = gpu.tensor.flops_per_clock(s.dtype);
  const double step_clocks = static_cast<double>(tile.m) * tile.n * tile.k * 2.0 / fpc;
  g.cta_s = static_cast<double>(steps_per_cta) * step_clocks / gpu.tensor.clock.hz;
  g.compute_s = static_cast<double>(g.waves) * g.cta_s;
  // A (activations) and C in bf16, B (weights) in its own type.
  g.hbm_bytes = (s.m * s.k + s.m * s.n) * 2 * s.count + workloads::bytes_of(s.k * s.n * s.count, s.dtype);
  // Split K: every part's fp32 partial sums are written, then read by the sum; they stay
  // in L2 when they fit there.
  const std::uint64_t partials = g.split_k > 1 ? 2 * 4 * std::uint64_t{g.split_k} * s.m * s.n * s.count : 0;
  if (partials > gpu.l2.bytes) g.hbm_bytes += partials;
  g.hbm_s = hbm.seconds(g.hbm_bytes);
  g.seconds = std::max(g.compute_s, g.hbm_s);
  g.flops = 2 * s.m * s.n * s.k * s.count;
  g.efficiency = static_cast<double>(g.flops) / (g.compute_s * gpu.peak_flops(s.dtype));
  return g;
}

GemmTiming best_gemm(const GpuConfig& gpu, const HbmPipe& hbm, const GemmShape& s,
                     const std::vector<CtaTile>& tiles) {
  if (tiles.empty()) throw std::invalid_argument("gpu gemm: no CTA tile configured");
  GemmTiming best;
  bool have = false;
  for (const CtaTile& t : tiles) {
    const std::uint64_t tiles_mn =
        ceil_div(s.m, t.m) * ceil_div(s.n, t.n) * std::max<std::uint32_t>(s.count, 1);
    const std::uint64_t k_steps = ceil_div(std::max<std::uint64_t>(s.k, 1), t.k);
    const std::uint64_t fill =
        std::clamp<std::uint64_t>(gpu.sms / std::max<std::uint64_t>(tiles_mn, 1), 1, k_steps);
    for (std::uint64_t split : {std::uint64_t{1}, fill}) {
      const GemmTiming g = gemm_timing(gpu, hbm, s, t, static_cast<std::uint32_t>(split));
      if (!have || g.seconds < best.seconds) {
        best = g;
        have = true;
      }
    }
  }
  return best;
}

}  // namespace wse::gpu
