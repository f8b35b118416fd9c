// The runtime's work around a pass, one graph invocation (PrefillConfig::runtime;
// docs/neuroncore.md): a launch barrier between the chips before it; after it the logits'
// all-gather, on-device sampling and the host overhead the device time does not hide.
#pragma once

#include <cstdint>

#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

class RuntimeMapping {
 public:
  explicit RuntimeMapping(MappingContext& ctx) : ctx_(ctx) {}

  // The launch barrier, from `start_ps` (no operator on one chip).
  LayerTime before(std::uint64_t start_ps);
  // The logits' all-gather, sampling and exposed host overhead of graph `g` from
  // `start_ps`, after `device_ps` of the pass on the device.
  LayerTime after(const workloads::OperatorGraph& g, std::uint64_t start_ps, std::uint64_t device_ps);

 private:
  MappingContext& ctx_;
};

}  // namespace wse::neuron
