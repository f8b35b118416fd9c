#include "apps/experiments/trainium_prefill_run.h"

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/experiments/inputs.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/pipeline_op.h"
#include "systemc_models/sim/output.h"
#include "workloads/model/transformer.h"

namespace wse::experiments {

namespace {

class TrainiumPrefillRun final : public sim::Experiment {
 public:
  TrainiumPrefillRun(workloads::TransformerModel model, std::uint64_t prompt_tokens, const neuron::ChipConfig& chip,
                     const neuron::InstanceConfig& instance, const neuron::PrefillConfig& prefill)
      : model_(std::move(model)),
        prompt_tokens_(prompt_tokens),
        prefill_(prefill),
        pipeline_(chip, instance, prefill, prefill.pp_degree, prefill.dp_degree, prefill.microbatches) {}

  void run(sim::RunContext&) override { result_ = pipeline_.run(model_, prompt_tokens_); }
  double simulated_seconds() const override { return result_.seconds(); }
  void summarize(nlohmann::json& s) const override {
    s["model"] = model_summary(model_);
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& chunk : result_.stage_ps) {
      nlohmann::json c = nlohmann::json::array();
      for (std::uint64_t ps : chunk) c.push_back(static_cast<double>(ps) * 1e-12);
      stages.push_back(c);
    }
    s["trainium_prefill"] = {
        {"prompt_tokens", prompt_tokens_},
        {"tp", prefill_.tp_degree},
        {"lnc", prefill_.lnc},
        {"pp", prefill_.pp_degree},
        {"dp", prefill_.dp_degree},
        {"microbatches", result_.stage_ps.size()},
        {"chips", result_.chips},
        {"chips_per_stage", result_.chips_per_stage},
        {"ttft_s", result_.seconds()},
        {"stage_boundary_transfer_s",
         result_.transfer_ps.empty() ? 0.0 : static_cast<double>(result_.transfer_ps.front()) * 1e-12},
        {"bottleneck_stage_s", static_cast<double>(result_.bottleneck_ps) * 1e-12},
        {"prompts_per_s", result_.prompts_per_s()},
        {"stage_s", stages}};
  }

 private:
  workloads::TransformerModel model_;
  std::uint64_t prompt_tokens_;
  neuron::PrefillConfig prefill_;
  neuron::TrainiumPipeline pipeline_;
  neuron::PipelineResult result_;
};

}  // namespace

std::unique_ptr<sim::Experiment> make_trainium_prefill(config::Section& root, const sim::ExperimentInfo& /*info*/) {
  config::Section ms = root.section("model", "the transformer (a Hugging Face config.json)");
  workloads::TransformerModel model = workloads::read_transformer(ms);
  config::Section pr = root.section("prompt", "the prompt prefilled");
  const auto tokens = static_cast<std::uint64_t>(
      pr.integer("tokens", {.doc = "prompt tokens prefilled (one prompt, from an empty KV cache)",
                            .def = "1024", .min = 1, .max = 1 << 20}));
  if (model.max_position_embeddings > 0 && tokens > model.max_position_embeddings) {
    pr.fail("tokens", std::to_string(tokens) + " tokens exceed the model's max_position_embeddings " +
                          std::to_string(model.max_position_embeddings) + "; use a shorter prompt");
  }
  config::Section trn = root.section("trainium", "the Trainium chip");
  const neuron::ChipConfig chip = neuron::read_chip_config(trn);
  config::Section inst = root.section("instance", "the Trainium instance (chips on a NeuronLink torus)");
  const neuron::InstanceConfig instance = neuron::read_instance_config(inst);
  config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
  const neuron::PrefillConfig prefill = neuron::read_prefill_config(pre);
  std::unique_ptr<TrainiumPrefillRun> run;
  try {
    run = std::make_unique<TrainiumPrefillRun>(model, tokens, chip, instance, prefill);
  } catch (const std::invalid_argument& e) {
    // The key whose choice does not fit: the stage's chips, or the stages and replicas.
    const std::string what = e.what();
    const char* key = what.find("tp_degree") != std::string::npos || what.find("whole number") != std::string::npos ||
                              what.rfind("prefill:", 0) == 0
                          ? "tp_degree"
                      : prefill.pp_degree > 1 ? "pp_degree"
                                              : "dp_degree";
    pre.fail(key, what + "; lower prefill.tp_degree, pp_degree or dp_degree, or use an instance with more chips");
  }
  // The fullest stage's weights, KV cache and activations must fit one chip's HBM.
  const neuron::TrainiumPipeline check(chip, instance, prefill, prefill.pp_degree, prefill.dp_degree,
                                       prefill.microbatches);
  const neuron::HbmFootprint f = check.stage_footprint(model, tokens);
  const std::uint64_t have = chip.hbm.capacity().bytes;
  if (f.total() > have) {
    pre.fail("pp_degree", "a stage of tp " + std::to_string(prefill.tp_degree) + " x pp " +
                              std::to_string(prefill.pp_degree) + " holds per chip " + std::to_string(f.weight_bytes) +
                              " B of weights + " + std::to_string(f.kv_bytes) + " B of KV cache + " +
                              std::to_string(f.activation_bytes) + " B of activations = " +
                              std::to_string(f.total()) + " B but a chip's HBM holds " + std::to_string(have) +
                              " B (" + std::to_string(f.total() - have) + " B short); raise pp_degree or tp_degree");
  }
  return run;
}

}  // namespace wse::experiments
