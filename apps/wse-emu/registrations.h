// Every experiment mode and benchmark the command knows, registered explicitly.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::app {
void register_all(sim::Registry& registry);
}
