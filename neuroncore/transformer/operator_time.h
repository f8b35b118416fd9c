// What a piece of the transformer mapping costs: the busy times of the engines, the HBM,
// the NeuronLink and the runtime (EngineBusy), and the timeline entries of a pass built
// from them (OperatorTime, LayerTime).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "neuroncore/instance/torus.h"

namespace wse::neuron {

// Busy times of one engine class (per simulated core, averaged), in ps.
struct EngineBusy {
  std::uint64_t elapsed_ps = 0;  // time of the work (pieces add: they run one after another)
  double tensor_ps = 0;          // stream time weighted by the fraction of the array used
  double vector_ps = 0;
  double scalar_ps = 0;
  double gpsimd_ps = 0;
  double dma_ps = 0;         // averaged over the core's DMA queues
  double hbm_ps = 0;         // data-bus time of one chip's HBM
  double link_ps = 0;        // summed over the directed NeuronLink links of the group
  double collective_ps = 0;  // time spent in inter-chip collectives
  // collective_ps by the algorithm that ran (index: CollectiveAlgorithm, auto excluded).
  std::array<double, kCollectiveAlgorithms.size()> algorithm_ps{};
  double collective_floor_ps = 0;  // the collectives' bandwidth-only floor (collective_floor_seconds)
  double runtime_ps = 0;           // launch barrier, logits gather, sampling, host overhead not hidden
  std::uint64_t flops = 0;         // matmul flops of the whole group of cores
  std::uint64_t instructions = 0;  // simulated (not reused) instructions
  std::uint64_t chip_runs = 0;     // chip simulations run
  EngineBusy& operator+=(const EngineBusy& o);
  EngineBusy scaled(std::uint64_t times) const;  // a repeated piece of work
  // Busy times (elapsed included) interpolated between a and b, w in [0, 1] of the way to
  // b; flops left to the caller (counted exactly); instructions and chip runs summed
  // (what was simulated for the two points).
  static EngineBusy interpolated(const EngineBusy& a, const EngineBusy& b, double w);
};

struct OperatorTime {
  std::string name;  // fused operators are joined by '+'
  std::string kind;
  EngineBusy busy;  // busy.elapsed_ps: the operator's time (its all-reduces included)
};

struct LayerTime {
  std::int32_t layer = -1;  // -1: before the first layer (embedding) or after the last
  std::uint64_t start_ps = 0;
  std::uint64_t end_ps = 0;             // when the layer's output is ready, from the start
  bool reused = false;                  // taken from an identical layer simulated before
  std::vector<OperatorTime> operators;  // in execution order
};

}  // namespace wse::neuron
