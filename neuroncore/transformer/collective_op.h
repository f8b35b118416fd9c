// Collectives of the tensor-parallel group (docs/neuroncore.md, "Transformer prefill"):
// the all-reduce after a row-parallel GEMM is a reduce-scatter inside the chip through HBM
// (DMA and vector adds), a collective between the chips on the NeuronLink torus
// (instance/torus.h, link-level messages), and an all-gather inside the chip through HBM.
#pragma once

#include <cstdint>

#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"

namespace wse::neuron {

class CollectiveMapping {
 public:
  explicit CollectiveMapping(MappingContext& ctx) : ctx_(ctx) {}

  // The all-reduce of `bytes` of partial sums: the three parts one after another; nothing
  // on one core.
  EngineBusy all_reduce(std::uint64_t bytes);
  // The two chip runs of an all-reduce of `bytes` inside the chip (through HBM): each core
  // loads its share of the other cores' partial sums and adds them, then stores it; each
  // core loads the other cores' shares.
  EngineBusy in_chip_reduce_scatter(std::uint64_t bytes);
  EngineBusy in_chip_all_gather(std::uint64_t bytes);
  // An inter-chip collective of the group with its busy times (collective, links, floor);
  // nothing on one chip.
  EngineBusy link_collective(Collective c, std::uint64_t bytes);

 private:
  MappingContext& ctx_;
};

}  // namespace wse::neuron
