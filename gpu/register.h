// Microbenchmarks of the GPU models, offered as `wse-emu bench NAME`.
#pragma once

#include "systemc_models/sim/registry.h"

namespace wse::gpu {

// Registers the benches `gpu-gemm` and `gpu-allreduce`.
void register_gpu(sim::Registry& registry);

}  // namespace wse::gpu
