// A Trainium chip as a SystemC module: runs one program per core on the chip model
// (ChipSim) when the simulation starts, advances SystemC time to the chip's finish,
// notifies `done`, and exposes the utilization of every engine, DMA queue set and the
// HBM as statistics.
//
// The chip model is one event-driven model inside this module (engines, queues and HBM
// channels are flat state, not modules); it does not exchange transactions with other
// modules while it runs. Other modules wait on `done`.
#pragma once

#include <vector>

#include <systemc>

#include "neuroncore/core/chip_sim.h"
#include "systemc_models/stats/stats.h"

namespace wse::neuron {

class TrainiumChip : public sc_core::sc_module, public stats::Provider {
 public:
  SC_HAS_PROCESS(TrainiumChip);
  // `cfg` must outlive the module.
  TrainiumChip(const sc_core::sc_module_name& name, const ChipConfig& cfg, std::vector<Program> programs);
  const stats::Group& stats() const override;
  // Valid after the simulation passed `done`.
  const ChipResult& result() const { return result_; }
  sc_core::sc_event done;

 private:
  void run();

  const ChipConfig& cfg_;
  std::vector<Program> programs_;
  ChipResult result_;
  stats::Group stats_;
  struct CoreStats {
    stats::Utilization* tensor;
    stats::Utilization* vector;
    stats::Utilization* scalar;
    stats::Utilization* gpsimd;
    stats::Utilization* dma;
    stats::Counter* flops;
    stats::Counter* dma_bytes;
  };
  std::vector<CoreStats> core_stats_;
  stats::Utilization* hbm_;
  stats::Scalar* finish_;
};

}  // namespace wse::neuron
