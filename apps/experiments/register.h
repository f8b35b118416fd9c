// Experiment modes composed from the component models.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::experiments {
void register_experiments(sim::Registry& registry);
}
