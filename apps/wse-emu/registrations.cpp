#include "apps/wse-emu/registrations.h"

#include "apps/experiments/register.h"
#include "efa_link/register.h"
#include "gpu/register.h"
#include "neuroncore/register.h"
#include "neuroncore/transformer/register.h"
#include "wse_mesh/benches/decode_bench.h"
#include "wse_mesh/register.h"

namespace wse::app {

void register_all(sim::Registry& registry) {
  experiments::register_experiments(registry);
  efa::register_efa_link(registry);
  neuron::register_neuroncore(registry);
  neuron::register_neuroncore_transformer(registry);
  gpu::register_gpu(registry);
  wafer::register_wse_mesh(registry);
  registry.add_bench("decode",
                     sim::Bench{"wafer decode step: Llama-3.1-8B on one CS-3 and Llama-3.1-70B on four, "
                                "batch 1/8/32, 1K/4K context: step time, per-kernel critical path, tokens/s",
                                wafer::bench_decode});
  registry.add_bench(
      "prefill-wafer",
      sim::Bench{"wafer prefill of a 4K prompt: Llama-3.1-8B on one CS-3 and WSE-2 sub-regions, "
                 "chunks pipelined through the layers, GEMMs as the faster of the GEMV passes and "
                 "the weight-stationary Cannon GEMM against the GEMV passes alone: tokens/s, floor, "
                 "ratio, GEMM and attention shares",
                 wafer::bench_prefill_wafer});
}

}  // namespace wse::app
