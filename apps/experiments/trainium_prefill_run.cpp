#include "apps/experiments/trainium_prefill_run.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/experiments/energy.h"
#include "apps/experiments/inputs.h"
#include "apps/experiments/machines.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/pipeline_op.h"
#include "neuroncore/transformer/prefill_config.h"
#include "systemc_models/sim/output.h"
#include "workloads/model/transformer.h"

namespace wse::experiments {

namespace {

// Where a pass's time went (docs/neuroncore.md, "Decode with its own split"): the busy
// times of the passes run, per stage group (summed over every chunk and replica, over
// the pp x dp groups); for one group (pp 1, dp 1, one chunk) the pass's own.
nlohmann::json breakdown(const neuron::PipelineResult& r) {
  const double groups = static_cast<double>(r.chips) / std::max<std::uint32_t>(r.chips_per_stage, 1);
  const neuron::EngineBusy& b = r.busy;
  const double collective = b.collective_ps * 1e-12 / groups,
               bandwidth = b.collective_floor_ps * 1e-12 / groups;
  return {{"collective_s", collective},
          {"collective_bandwidth_s", bandwidth},
          {"collective_latency_s", collective - bandwidth},
          {"runtime_s", b.runtime_ps * 1e-12 / groups},
          {"tensor_busy_s", b.tensor_ps * 1e-12 / groups},
          {"hbm_busy_s", b.hbm_ps * 1e-12 / groups}};
}

nlohmann::json floor_json(const neuron::TrainiumFloor& f, double simulated_s) {
  return {{"passes", 1},
          {"simulated_s", simulated_s},
          {"compute_s", f.compute_s},
          {"hbm_s", f.hbm_s},
          {"collective_s", f.collective_s},
          {"step_s", f.step_s},
          {"ratio", f.step_s > 0.0 ? simulated_s / f.step_s : 0.0}};
}

class TrainiumPrefillRun final : public sim::Experiment {
 public:
  TrainiumPrefillRun(workloads::TransformerModel model, std::uint64_t prompt_tokens,
                     const neuron::ChipConfig& chip, const neuron::InstanceConfig& instance,
                     const neuron::PrefillConfig& prefill)
      : model_(std::move(model)),
        prompt_tokens_(prompt_tokens),
        prefill_(prefill),
        pipeline_(chip, instance, prefill, prefill.pp_degree, prefill.dp_degree, prefill.microbatches),
        hbm_bytes_per_s_(chip.hbm.peak_bandwidth().bytes_per_s),
        link_bytes_per_s_(instance.link_bandwidth.bytes_per_s) {}

  // The instance held for the prompt's prefill: summary.json `cost` and `energy`.
  void set_fleet(PassFleet f) { fleet_ = std::move(f); }

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
        {"cp", prefill_.cp_degree},
        {"microbatches", result_.stage_ps.size()},
        {"chips", result_.chips},
        {"chips_per_stage", result_.chips_per_stage},
        {"ttft_s", result_.seconds()},
        {"stage_boundary_transfer_s",
         result_.transfer_ps.empty() ? 0.0 : static_cast<double>(result_.transfer_ps.front()) * 1e-12},
        {"bottleneck_stage_s", static_cast<double>(result_.bottleneck_ps) * 1e-12},
        {"prompts_per_s", result_.prompts_per_s()},
        {"stage_s", stages},
        {"breakdown", breakdown(result_)}};
    if (result_.cp > 1) {
      nlohmann::json groups = nlohmann::json::array();
      for (std::uint64_t ps : result_.rank_ps) groups.push_back(static_cast<double>(ps) * 1e-12);
      s["trainium_prefill"]["context_parallel"] = {
          {"group_pass_s", groups},
          {"ring_step_s", static_cast<double>(result_.ring_step_ps) * 1e-12},
          {"ring_exposed_s", static_cast<double>(result_.ring_exposed_ps) * 1e-12}};
    }
    // The floor of the prompt's prefill, as the serving modes give their passes'.
    s["trainium"]["floor"]["prefill_pass"] = floor_json(result_.floor, result_.seconds());
    // The instance for the time to the first token: the prompt's tokens, one output token.
    fleet_.summarize(s, result_.seconds(),
                     {{"trainium_instance", trainium_activity(result_, hbm_bytes_per_s_, link_bytes_per_s_)}},
                     0.0, 1, prompt_tokens_);
  }

 private:
  workloads::TransformerModel model_;
  std::uint64_t prompt_tokens_;
  neuron::PrefillConfig prefill_;
  neuron::TrainiumPipeline pipeline_;
  neuron::PipelineResult result_;
  double hbm_bytes_per_s_, link_bytes_per_s_;
  PassFleet fleet_;
};

// Mode trainium_decode: one decode step of `sequences` sequences with `context_tokens`
// cached tokens each, on the decode split of the instance (trainium_decode:): its time
// as one of a stream of steps (the inter-token latency under the split's schedule) and
// from an empty pipeline (fill_s).
class TrainiumDecodeRun final : public sim::Experiment {
 public:
  TrainiumDecodeRun(workloads::TransformerModel model, std::uint64_t sequences, std::uint64_t context,
                    const neuron::ChipConfig& chip, const neuron::InstanceConfig& instance,
                    const neuron::PrefillConfig& split)
      : model_(std::move(model)),
        sequences_(sequences),
        context_(context),
        split_(split),
        pipeline_(chip, instance, split, split.pp_degree, split.dp_degree, split.microbatches),
        hbm_bytes_per_s_(chip.hbm.peak_bandwidth().bytes_per_s),
        link_bytes_per_s_(instance.link_bandwidth.bytes_per_s) {}

  // The instance held for the step: summary.json `cost` and `energy`.
  void set_fleet(PassFleet f) { fleet_ = std::move(f); }

  const neuron::TrainiumPipeline& pipeline() const { return pipeline_; }
  void run(sim::RunContext&) override {
    result_ = pipeline_.decode_step(model_, std::vector<std::uint64_t>(sequences_, context_));
  }
  double simulated_seconds() const override { return result_.seconds(); }
  void summarize(nlohmann::json& s) const override {
    s["model"] = model_summary(model_);
    s["trainium_decode"] = {
        {"sequences", sequences_},
        {"context_tokens", context_},
        {"tp", split_.tp_degree},
        {"lnc", split_.lnc},
        {"pp", split_.pp_degree},
        {"dp", split_.dp_degree},
        {"microbatches", split_.microbatches},
        {"chips", result_.chips},
        {"chips_per_stage", result_.chips_per_stage},
        {"schedule", split_.decode_schedule == neuron::DecodeSchedule::kDrained ? "drained" : "overlapped"},
        {"itl_s", result_.seconds()},
        {"fill_s", static_cast<double>(result_.fill_ps) * 1e-12},
        {"token_return_s",
         result_.return_ps.empty() ? 0.0 : static_cast<double>(result_.return_ps.front()) * 1e-12},
        {"tokens_per_s", result_.seconds() > 0.0 ? static_cast<double>(sequences_) / result_.seconds() : 0.0},
        {"breakdown", breakdown(result_)}};
    s["trainium"]["floor"]["decode_step"] = floor_json(result_.floor, result_.seconds());
    // The instance for one step (the inter-token latency): one output token per sequence,
    // no prompt token. The work is every replica's.
    fleet_.summarize(s, result_.seconds(),
                     {{"trainium_instance", trainium_activity(result_, hbm_bytes_per_s_, link_bytes_per_s_)}},
                     0.0, sequences_, 0);
  }

 private:
  workloads::TransformerModel model_;
  std::uint64_t sequences_, context_;
  neuron::PrefillConfig split_;
  neuron::TrainiumPipeline pipeline_;
  neuron::PipelineResult result_;
  double hbm_bytes_per_s_, link_bytes_per_s_;
  PassFleet fleet_;
};

}  // namespace

std::unique_ptr<sim::Experiment> make_trainium_decode(config::Section& root,
                                                      const sim::ExperimentInfo& /*info*/) {
  config::Section ms = root.section("model", "the transformer (a Hugging Face config.json)");
  workloads::TransformerModel model = workloads::read_transformer(ms);
  config::Section bs = root.section("batch", "the decode step: its sequences and their cached tokens");
  const auto sequences = static_cast<std::uint64_t>(bs.integer(
      "sequences", {.doc = "sequences of the step (one new token each)", .def = "1", .min = 1, .max = 4096}));
  const auto context = static_cast<std::uint64_t>(bs.integer(
      "context_tokens", {.doc = "cached tokens of each sequence", .def = "1024", .min = 1, .max = 1 << 20}));
  config::Section trn = root.section("trainium", "the Trainium chip");
  const neuron::ChipConfig chip = neuron::read_chip_config(trn);
  config::Section inst =
      root.section("instance", "the Trainium instance (chips on a NeuronLink torus or a switch)");
  const neuron::InstanceConfig instance = neuron::read_instance_config(inst);
  config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
  const neuron::PrefillConfig prefill = neuron::read_prefill_config(pre);
  config::Section dec =
      root.section("trainium_decode", "how the instance's chips are split for decode steps", true);
  const neuron::PrefillConfig split = neuron::read_decode_split(dec, prefill);
  if (split.pp_degree > model.layers) {
    dec.fail("pp_degree", "is " + std::to_string(split.pp_degree) + " but the model has " +
                              std::to_string(model.layers) + " decoder layers to split into stages");
  }
  std::unique_ptr<TrainiumDecodeRun> run;
  try {
    run = std::make_unique<TrainiumDecodeRun>(model, sequences, context, chip, instance, split);
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    const char* key = what.find("tp_degree") != std::string::npos ||
                              what.find("whole number") != std::string::npos || what.rfind("prefill:", 0) == 0
                          ? "tp_degree"
                      : split.dp_degree > 1 ? "dp_degree"
                                            : "pp_degree";
    dec.fail(key, what + "; lower trainium_decode.tp_degree, pp_degree or dp_degree");
  }
  // Each replica's stages hold their weights; what is left must hold its sequences' KV
  // cache (the new token's included).
  const neuron::TrainiumPipeline::DecodeCapacity c = run->pipeline().decode_capacity(model);
  if (c.replica_kv_bytes == 0) {
    dec.fail(split.pp_degree > 1 ? "pp_degree" : "tp_degree",
             "a stage of tp " + std::to_string(split.tp_degree) + " x pp " + std::to_string(split.pp_degree) +
                 " holds per chip " + std::to_string(c.weight_bytes_per_chip) +
                 " B of weights but a chip's HBM holds " + std::to_string(c.hbm_bytes_per_chip) + " B (" +
                 std::to_string(c.weight_bytes_per_chip -
                                std::min(c.weight_bytes_per_chip, c.hbm_bytes_per_chip)) +
                 " B short, and no room left for the KV cache); raise tp_degree or pp_degree");
  }
  const std::uint64_t per_replica = (sequences + split.dp_degree - 1) / split.dp_degree;
  const std::uint64_t need = per_replica * model.kv_bytes(context + 1);
  if (need > c.replica_kv_bytes) {
    bs.fail("sequences", std::to_string(per_replica) + " sequences per replica of " +
                             std::to_string(context + 1) + " tokens need " + std::to_string(need) +
                             " B of KV cache but a replica holds " + std::to_string(c.replica_kv_bytes) +
                             " B after its weights (" + std::to_string(need - c.replica_kv_bytes) +
                             " B short); fewer sequences or a shorter "
                             "context, or raise trainium_decode.tp_degree or pp_degree");
  }
  run->set_fleet(read_pass_fleet(root, {{"trainium_instance", 1}}, model));
  return run;
}

std::unique_ptr<sim::Experiment> make_trainium_prefill(config::Section& root,
                                                       const sim::ExperimentInfo& /*info*/) {
  config::Section ms = root.section("model", "the transformer (a Hugging Face config.json)");
  workloads::TransformerModel model = workloads::read_transformer(ms);
  config::Section pr = root.section("prompt", "the prompt prefilled");
  const auto tokens = static_cast<std::uint64_t>(
      pr.integer("tokens", {.doc = "prompt tokens prefilled (one prompt, from an empty KV cache)",
                            .def = "1024",
                            .min = 1,
                            .max = 1 << 20}));
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
    const char* key =
        what.find("cp_degree " + std::to_string(prefill.cp_degree) + " with") != std::string::npos
            ? "cp_degree"
        : what.find("tp_degree") != std::string::npos || what.find("whole number") != std::string::npos ||
                what.rfind("prefill:", 0) == 0
            ? "tp_degree"
        : prefill.pp_degree > 1 ? "pp_degree"
        : prefill.cp_degree > 1 ? "cp_degree"
                                : "dp_degree";
    pre.fail(key, what +
                      "; lower prefill.tp_degree, pp_degree, cp_degree or dp_degree, or use an instance with "
                      "more chips");
  }
  if (prefill.cp_degree > 1 &&
      tokens / std::min<std::uint64_t>(prefill.microbatches, tokens) < 2ull * prefill.cp_degree) {
    pre.fail("cp_degree", "is " + std::to_string(prefill.cp_degree) + ": the prompt (each of its " +
                              std::to_string(prefill.microbatches) + " microbatches) is dealt as " +
                              std::to_string(2 * prefill.cp_degree) + " pieces but has " +
                              std::to_string(tokens) + " tokens; lower cp_degree or microbatches");
  }
  // The fullest stage's weights, KV cache and activations must fit one chip's HBM.
  const neuron::TrainiumPipeline check(chip, instance, prefill, prefill.pp_degree, prefill.dp_degree,
                                       prefill.microbatches);
  const neuron::HbmFootprint f = check.stage_footprint(model, tokens);
  const std::uint64_t have = chip.hbm.capacity().bytes;
  if (f.total() > have) {
    const bool cp = prefill.cp_degree > 1;
    pre.fail(cp ? "cp_degree" : "pp_degree",
             (cp ? "a context-parallel group of tp " + std::to_string(prefill.tp_degree) + " (cp " +
                       std::to_string(prefill.cp_degree) + ", all the weights)"
                 : "a stage of tp " + std::to_string(prefill.tp_degree) + " x pp " +
                       std::to_string(prefill.pp_degree)) +
                 " holds per chip " + std::to_string(f.weight_bytes) + " B of weights + " +
                 std::to_string(f.kv_bytes) + " B of KV cache + " + std::to_string(f.activation_bytes) +
                 " B of activations = " + std::to_string(f.total()) + " B but a chip's HBM holds " +
                 std::to_string(have) + " B (" + std::to_string(f.total() - have) + " B short); " +
                 (cp ? "lower cp_degree (more chips per group)" : "raise pp_degree or tp_degree"));
  }
  run->set_fleet(read_pass_fleet(root, {{"trainium_instance", 1}}, model));
  return run;
}

}  // namespace wse::experiments
