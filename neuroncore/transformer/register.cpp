#include "neuroncore/transformer/register.h"

#include "neuroncore/transformer/parallelism_bench.h"
#include "neuroncore/transformer/prefill_bench.h"

namespace wse::neuron {

void register_neuroncore_transformer(sim::Registry& registry) {
  registry.add_bench(
      "prefill",
      sim::Bench{"Transformer prefill and decode: one 10,000-token Llama-3.1-70B prompt on a trn2.48xlarge "
                 "(TP 64 x LNC 2): per-layer timeline and the operators of a layer, then decode steps of "
                 "1, 8 and 64 sequences of 1,000 cached tokens "
                 "(prefill_layers.csv, prefill_operators.csv, decode_steps.csv)",
                 run_prefill_bench});
  registry.add_bench(
      "parallelism",
      sim::Bench{
          "Trainium parallelism: Llama-3.1-70B prompts of 1K, 4K and 16K tokens on a trn2.48xlarge split "
          "tp x pp x dp over its 16 chips (pp stages of contiguous layers, pp microbatches, the stage "
          "boundary on NeuronLink): time to first token and prompts/s of each, the best per prompt "
          "length (parallelism.csv)",
          run_parallelism_bench});
}

}  // namespace wse::neuron
