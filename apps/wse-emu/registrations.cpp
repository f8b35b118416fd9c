#include "apps/wse-emu/registrations.h"

#include "apps/experiments/register.h"
// Each component library present in the build defines WSE_HAVE_<COMPONENT> for this
// file (apps/wse-emu/CMakeLists.txt).
#ifdef WSE_HAVE_EFA_LINK
#include "efa_link/register.h"
#endif
#ifdef WSE_HAVE_NEURONCORE
#include "neuroncore/register.h"
#endif
#ifdef WSE_HAVE_NEURONCORE_TRANSFORMER
#include "neuroncore/transformer/register.h"
#endif
#ifdef WSE_HAVE_GPU
#include "gpu/register.h"
#endif
#ifdef WSE_HAVE_WSE_MESH
#include "wse_mesh/register.h"
#endif
#ifdef WSE_HAVE_WSE_MESH_DECODE
#include "wse_mesh/benches/decode_bench.h"
#endif

namespace wse::app {

void register_all(sim::Registry& registry) {
  experiments::register_experiments(registry);
#ifdef WSE_HAVE_EFA_LINK
  efa::register_efa_link(registry);
#endif
#ifdef WSE_HAVE_NEURONCORE
  neuron::register_neuroncore(registry);
#endif
#ifdef WSE_HAVE_NEURONCORE_TRANSFORMER
  neuron::register_neuroncore_transformer(registry);
#endif
#ifdef WSE_HAVE_GPU
  gpu::register_gpu(registry);
#endif
#ifdef WSE_HAVE_WSE_MESH
  wafer::register_wse_mesh(registry);
#endif
#ifdef WSE_HAVE_WSE_MESH_DECODE
  registry.add_bench("decode", sim::Bench{"wafer decode step: Llama-3.1-8B on one CS-3 and Llama-3.1-70B on four, "
                                          "batch 1/8/32, 1K/4K context: step time, per-kernel critical path, tokens/s",
                                          wafer::bench_decode});
  registry.add_bench(
      "prefill-wafer",
      sim::Bench{"wafer prefill of a 4K prompt: Llama-3.1-8B on one CS-3 and WSE-2 sub-regions, "
                 "chunks pipelined through the layers, GEMMs as the faster of the GEMV passes and "
                 "the weight-stationary Cannon GEMM against the GEMV passes alone: tokens/s, floor, "
                 "ratio, GEMM and attention shares",
                 wafer::bench_prefill_wafer});
#endif
}

}  // namespace wse::app
