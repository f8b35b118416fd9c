// Entries of the EFA link in the `wse-emu` registry: the `efa` microbenchmark.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::efa {
void register_efa_link(sim::Registry& registry);
}  // namespace wse::efa
