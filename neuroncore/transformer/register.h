// Microbenchmarks of the transformer mapping on Trainium, offered as `wse-emu bench NAME`.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Registers the benches `prefill` and `parallelism`.
void register_neuroncore_transformer(sim::Registry& registry);

}  // namespace wse::neuron
