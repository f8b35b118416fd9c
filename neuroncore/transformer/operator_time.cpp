#include "neuroncore/transformer/operator_time.h"

#include <cmath>

namespace wse::neuron {

EngineBusy& EngineBusy::operator+=(const EngineBusy& o) {
  elapsed_ps += o.elapsed_ps;
  tensor_ps += o.tensor_ps;
  vector_ps += o.vector_ps;
  scalar_ps += o.scalar_ps;
  gpsimd_ps += o.gpsimd_ps;
  dma_ps += o.dma_ps;
  hbm_ps += o.hbm_ps;
  link_ps += o.link_ps;
  collective_ps += o.collective_ps;
  for (std::size_t i = 0; i < algorithm_ps.size(); ++i) algorithm_ps[i] += o.algorithm_ps[i];
  collective_floor_ps += o.collective_floor_ps;
  runtime_ps += o.runtime_ps;
  flops += o.flops;
  instructions += o.instructions;
  chip_runs += o.chip_runs;
  return *this;
}

EngineBusy EngineBusy::scaled(std::uint64_t times) const {
  EngineBusy b = *this;
  const auto t = static_cast<double>(times);
  b.elapsed_ps *= times;
  b.tensor_ps *= t;
  b.vector_ps *= t;
  b.scalar_ps *= t;
  b.gpsimd_ps *= t;
  b.dma_ps *= t;
  b.hbm_ps *= t;
  b.link_ps *= t;
  b.collective_ps *= t;
  for (double& a : b.algorithm_ps) a *= t;
  b.collective_floor_ps *= t;
  b.runtime_ps *= t;
  b.flops *= times;
  return b;  // instructions and chip runs are what was simulated: not repeated
}

EngineBusy EngineBusy::interpolated(const EngineBusy& a, const EngineBusy& b, double w) {
  auto lerp = [w](double x, double y) { return x + (y - x) * w; };
  EngineBusy r;
  r.elapsed_ps = static_cast<std::uint64_t>(
      std::llround(lerp(static_cast<double>(a.elapsed_ps), static_cast<double>(b.elapsed_ps))));
  r.tensor_ps = lerp(a.tensor_ps, b.tensor_ps);
  r.vector_ps = lerp(a.vector_ps, b.vector_ps);
  r.scalar_ps = lerp(a.scalar_ps, b.scalar_ps);
  r.gpsimd_ps = lerp(a.gpsimd_ps, b.gpsimd_ps);
  r.dma_ps = lerp(a.dma_ps, b.dma_ps);
  r.hbm_ps = lerp(a.hbm_ps, b.hbm_ps);
  r.link_ps = lerp(a.link_ps, b.link_ps);
  r.collective_ps = lerp(a.collective_ps, b.collective_ps);
  for (std::size_t i = 0; i < r.algorithm_ps.size(); ++i)
    r.algorithm_ps[i] = lerp(a.algorithm_ps[i], b.algorithm_ps[i]);
  r.collective_floor_ps = lerp(a.collective_floor_ps, b.collective_floor_ps);
  r.runtime_ps = lerp(a.runtime_ps, b.runtime_ps);
  r.instructions = a.instructions + b.instructions;
  r.chip_runs = a.chip_runs + b.chip_runs;
  return r;
}

}  // namespace wse::neuron
