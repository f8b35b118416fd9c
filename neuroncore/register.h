// Microbenchmarks of the Trainium models, offered as `wse-emu bench NAME`.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::neuron {

// Registers the benches `hbm`, `gemm` and `collective` (`prefill`: transformer/register.h).
void register_neuroncore(sim::Registry& registry);

}  // namespace wse::neuron
