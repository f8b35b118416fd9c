#include "neuroncore/core/chip_module.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace wse::neuron {

TrainiumChip::TrainiumChip(const sc_core::sc_module_name& name, const ChipConfig& cfg,
                           std::vector<Program> programs)
    : sc_core::sc_module(name), cfg_(cfg), programs_(std::move(programs)), stats_(this->name()) {
  for (std::size_t c = 0; c < programs_.size(); ++c) {
    stats::Group& g = stats_.child("core" + std::to_string(c));
    CoreStats s{};
    s.tensor = &g.utilization("tensor_engine", "array fully busy (stream time x fraction used)");
    s.vector = &g.utilization("vector_engine", "vector engine busy");
    s.scalar = &g.utilization("scalar_engine", "scalar engine busy");
    s.gpsimd = &g.utilization("gpsimd_engine", "GpSimd engine busy");
    s.dma = &g.utilization("dma_queues", "DMA queues busy (instruction start to end)");
    s.dma->set_lanes(cfg_.core.dma.queues);
    s.flops = &g.counter("flops", "flop", "2 x multiply-accumulates of the matmuls");
    s.dma_bytes = &g.counter("dma_bytes", "B", "bytes moved by DMA");
    core_stats_.push_back(s);
  }
  hbm_ = &stats_.utilization("hbm", "HBM data buses busy");
  finish_ = &stats_.scalar("finish", "s", "time the last instruction of any core ended");
  SC_THREAD(run);
}

void TrainiumChip::run() {
  ChipSim sim(cfg_);
  result_ = sim.run(programs_);
  for (std::size_t c = 0; c < result_.cores.size(); ++c) {
    const CoreResult& r = result_.cores[c];
    CoreStats& s = core_stats_[c];
    s.tensor->add_busy(r.tensor_full_array_ps * 1e-12);
    s.vector->add_busy(static_cast<double>(r.vector_busy_ps) * 1e-12);
    s.scalar->add_busy(static_cast<double>(r.scalar_busy_ps) * 1e-12);
    s.gpsimd->add_busy(static_cast<double>(r.gpsimd_busy_ps) * 1e-12);
    s.dma->add_busy(static_cast<double>(r.dma_busy_ps) * 1e-12);
    s.flops->add(r.flops);
    s.dma_bytes->add(r.dma_bytes);
  }
  hbm_->set_lanes(result_.hbm_lanes);
  hbm_->add_busy(static_cast<double>(result_.hbm_busy_ps) * 1e-12);
  finish_->set(static_cast<double>(result_.end_ps) * 1e-12);
  const auto resolution_ps =
      static_cast<std::uint64_t>(std::llround(sc_core::sc_get_time_resolution().to_seconds() * 1e12));
  sc_core::wait(sc_core::sc_time::from_value(result_.end_ps / std::max<std::uint64_t>(resolution_ps, 1)));
  done.notify(sc_core::SC_ZERO_TIME);
}

const stats::Group& TrainiumChip::stats() const { return stats_; }

}  // namespace wse::neuron
