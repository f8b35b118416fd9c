// The wafer's entries in the `wse-emu` registry.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::wafer {

// Benches: `fabric` (synthetic traffic on per-PE meshes), `gemv` (GEMV on WSE-2/3 grids).
void register_wse_mesh(sim::Registry& registry);

}  // namespace wse::wafer
