#include "neuroncore/register.h"

#include "neuroncore/core/gemm_bench.h"
#include "neuroncore/hbm/hbm_bench.h"
#include "neuroncore/instance/collective_bench.h"

namespace wse::neuron {

void register_neuroncore(sim::Registry& registry) {
  registry.add_bench("hbm",
                     sim::Bench{"HBM model: achieved bandwidth of sequential and random 32/64 B reads at "
                                "one channel and the whole memory, and read latency at low load "
                                "(hbm.csv)",
                                run_hbm_bench});
  registry.add_bench("gemm", sim::Bench{"NeuronCore tensor-engine utilization of a tiled GEMM versus M, K, N "
                                        "(128..16384), bf16 and fp8, operands in HBM (gemm.csv)",
                                        run_gemm_bench});
  registry.add_bench(
      "collective",
      sim::Bench{"NeuronLink collectives (all-reduce, all-gather, reduce-scatter) on 2 to 64 chips of "
                 "trn2.48xlarge links: latency of each algorithm (ring, rdh, mesh, torus2d) versus message "
                 "size 4 B to 1 GiB beside its alpha-beta price, and the one chosen (collective.csv)",
                 run_collective_bench});
}

}  // namespace wse::neuron
