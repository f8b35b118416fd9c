#include "neuroncore/transformer/prefill_bench.h"

#include <chrono>
#include <cstdio>

#include "neuroncore/transformer/prefill.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"

namespace wse::neuron {

namespace {

// Llama-3.1-70B: the architecture fields of its Hugging Face config.json
// (workloads/data/models/meta-llama--Meta-Llama-3.1-70B_config.json).
constexpr const char* kLlama70B = R"(model:
  name: Llama-3.1-70B
  model_type: llama
  hidden_size: 8192
  intermediate_size: 28672
  num_attention_heads: 64
  num_hidden_layers: 80
  num_key_value_heads: 8
  vocab_size: 128256
  tie_word_embeddings: false
)";

}  // namespace

std::vector<std::string> run_prefill_bench(const sim::BenchArgs& args) {
  auto doc = config::parse(kLlama70B, "llama-3.1-70b");
  config::Section root = doc.root();
  config::Section ms = root.section("model", "model");
  const workloads::TransformerModel model = workloads::read_transformer(ms);
  doc.finish();
  const std::uint64_t tokens = args.quick ? 2000 : 10000;
  // trn2.48xlarge with the defaults of configs/hardware/trn2_48xlarge.yaml.
  const ChipConfig chip = trainium2_chip();
  const InstanceConfig instance;
  const PrefillConfig cfg;
  const auto w0 = std::chrono::steady_clock::now();
  TrainiumPrefill prefill(chip, instance, cfg);
  const PrefillResult r = prefill.run(model, {tokens});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();

  sim::CsvWriter layers({"layer", "start_us", "end_us", "reused"});
  for (const LayerTime& l : r.layers) {
    layers.row({std::to_string(l.layer), sim::fmt_num(l.start_ps * 1e-6), sim::fmt_num(l.end_ps * 1e-6),
                l.reused ? "1" : "0"});
  }
  sim::CsvWriter ops({"layer", "operator", "kind", "time_us", "tensor_busy_us", "vector_busy_us",
                      "scalar_busy_us", "dma_busy_us", "hbm_busy_us", "collective_us", "flops"});
  for (const LayerTime& l : r.layers) {
    if (l.layer > 0) continue;  // the parts outside the layers and layer 0 (the others repeat it)
    for (const OperatorTime& o : l.operators) {
      ops.row({std::to_string(l.layer), o.name, o.kind, sim::fmt_num(o.busy.elapsed_ps * 1e-6),
               sim::fmt_num(o.busy.tensor_ps * 1e-6), sim::fmt_num(o.busy.vector_ps * 1e-6),
               sim::fmt_num(o.busy.scalar_ps * 1e-6), sim::fmt_num(o.busy.dma_ps * 1e-6),
               sim::fmt_num(o.busy.hbm_ps * 1e-6), sim::fmt_num(o.busy.collective_ps * 1e-6),
               std::to_string(o.busy.flops)});
    }
  }
  sim::write_file_atomic(args.out_dir / "prefill_layers.csv", layers.str());
  sim::write_file_atomic(args.out_dir / "prefill_operators.csv", ops.str());
  if (!args.quiet) {
    std::printf("Llama-3.1-70B, %llu tokens, trn2.48xlarge TP %u x LNC %u: %.3f ms simulated (%.2f s wall); "
                "tensor %.1f%%, vector %.1f%%, scalar %.1f%%, DMA %.1f%%, HBM %.1f%%, NeuronLink %.1f%%\n",
                static_cast<unsigned long long>(tokens), cfg.tp_degree, cfg.lnc, r.seconds() * 1e3, wall,
                100 * r.tensor_utilization(), 100 * r.vector_utilization(), 100 * r.scalar_utilization(),
                100 * r.dma_utilization(), 100 * r.hbm_utilization(), 100 * r.link_utilization());
  }
  return {"prefill_layers.csv", "prefill_operators.csv"};
}

}  // namespace wse::neuron
