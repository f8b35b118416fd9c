#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/gpu_serving.h"

#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/gpu_machines.h"
#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
#include "apps/experiments/machines.h"
#include "apps/experiments/serving_experiment.h"
#include "apps/experiments/speculative.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"
#include "gpu/transformer/pass.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/operators.h"
#include "workloads/serving/serving_system.h"

namespace wse::experiments {

namespace {

class GpuServing final : public ServingExperiment {
 public:
  GpuServing(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
             const serving::ServingConfig& cfg, FaultSchedule faults, unsigned instances, unsigned groups,
             const gpu::GpuConfig& g, const gpu::NodeConfig& node, const gpu::PassConfig& pass, unsigned span,
             trace::Writer* trace, std::optional<workloads::TransformerModel> draft)
      : ServingExperiment(model, cfg, std::move(faults)), draft_(std::move(draft)) {
    machines_ = std::make_unique<GpuMachines>("gpu", instances, groups, g, node, pass, model_, span,
                                              draft_ ? &*draft_ : nullptr);
    start(std::move(requests), machines_->prefill(), machines_->decode(), nullptr, trace);
  }

 private:
  void summarize_machines(nlohmann::json& s) const override { s["gpu"] = machines_->summary(); }
  std::map<std::string, Activity> activity() const override {
    return {{"gpu_instance", machines_->activity()}};
  }
  std::optional<workloads::TransformerModel> draft_;  // serving.speculative.draft_model
  std::unique_ptr<GpuMachines> machines_;
};

}  // namespace

namespace {

// Where a request's KV must fit in a GPU decode mode (check_requests_fit's room), with a
// draft model beside the target or without.
const char* gpu_kv_room_text(bool draft) {
  return draft ? "the HBM of a tensor-parallel group of GPUs after both models' weights (the target's share)"
               : "the HBM of a tensor-parallel group of GPUs after the weights";
}

// The Trainium prefill instances of trainium_prefill_gpu_decode.
class TrainiumPrefillPool : public sc_core::sc_module, public stats::Provider {
 public:
  // `draft` (speculative decoding): its prompt pass runs fused after the target's.
  TrainiumPrefillPool(const sc_core::sc_module_name& name, unsigned instances, const TrainiumSide& trn,
                      const workloads::TransformerModel& model, const workloads::TransformerModel* draft)
      : sc_module(name),
        stats_(std::string(basename())),
        runner_(trn.chip, trn.instance, trn.prefill),
        split_(make_prefill_split(trn)) {
    for (unsigned i = 0; i < instances; ++i) {
      machines_.push_back(std::make_unique<TrainiumMachine>(
          runner_, model, stats_.child(prefill_group_name("prefill", i, trn.prefill.dp_degree)), nullptr,
          draft));
      machines_.back()->set_prefill_split(split_.get(), trn.prefill.pp_degree);
      prefill_.push_back(machines_.back().get());
    }
  }
  const stats::Group& stats() const override { return stats_; }
  const std::vector<serving::PrefillBackend*>& prefill() const { return prefill_; }
  std::vector<const TrainiumMachine*> all() const {
    std::vector<const TrainiumMachine*> out;
    for (const auto& m : machines_) out.push_back(m.get());
    return out;
  }

 private:
  stats::Group stats_;
  neuron::TrainiumPrefill runner_;
  std::unique_ptr<neuron::TrainiumPipeline> split_;  // prefill.cp_degree or pp_degree > 1
  std::vector<std::unique_ptr<TrainiumMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
};

class TrainiumPrefillGpuDecode final : public ServingExperiment {
 public:
  TrainiumPrefillGpuDecode(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
                           const serving::ServingConfig& cfg, FaultSchedule faults, const TrainiumSide& trn,
                           unsigned decode_instances, const GpuSide& g, const efa::EfaNetworkConfig& efa,
                           trace::Writer* trace, std::optional<workloads::TransformerModel> draft)
      : ServingExperiment(model, cfg, std::move(faults)), draft_(std::move(draft)) {
    // Speculative decoding: the prefill makes the draft's prompt KV too, and it crosses with the target's.
    if (draft_) count_draft_kv(*draft_);
    const workloads::TransformerModel* d = draft_ ? &*draft_ : nullptr;
    prefill_ = std::make_unique<TrainiumPrefillPool>("trainium", cfg_.prefill_instances, trn, model_, d);
    decode_ = std::make_unique<GpuMachines>("gpu", decode_instances, g.groups, g.gpu, g.node, g.pass, model_,
                                            g.span, d);
    // A group over several instances receives on each instance's attachment.
    kv_path_ = std::make_unique<EfaKvPath>("kv_path", efa, fault_schedule().efa, trace, 1, g.span);
    serving::KvPath* path = kv_path_.get();
    if (trn.prefill.dp_degree > 1) {
      // The prefill replicas of an instance (prefill.dp_degree) share its EFA sender.
      grouped_ = std::make_unique<GroupedKvPath>(*kv_path_, trn.prefill.dp_degree);
      path = grouped_.get();
    }
    start(std::move(requests), prefill_->prefill(), decode_->decode(), path, trace);
  }

 private:
  const efa::SrdEngine* efa_engine() const override { return &kv_path_->network().engine(); }
  void summarize_machines(nlohmann::json& s) const override {
    s["trainium"] = trainium_summary(prefill_->all());
    s["gpu"] = decode_->summary();
  }
  std::map<std::string, Activity> activity() const override {
    return {{"trainium_instance", total_activity(prefill_->all())}, {"gpu_instance", decode_->activity()}};
  }
  std::optional<workloads::TransformerModel> draft_;  // serving.speculative.draft_model
  std::unique_ptr<TrainiumPrefillPool> prefill_;
  std::unique_ptr<GpuMachines> decode_;
  std::unique_ptr<EfaKvPath> kv_path_;
  std::unique_ptr<GroupedKvPath> grouped_;
};

}  // namespace

std::unique_ptr<sim::Experiment> make_gpu_only(config::Section& root, const sim::ExperimentInfo& info) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  const GpuSide g = read_gpu_side(root, model, true, true);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  // Speculative decoding: the draft beside the target on every group's GPUs.
  std::optional<DraftModel> draft = read_draft_model(sv, model, info.seed, cfg);
  cfg.placement = serving::Placement::colocated;
  cfg.layers = model.layers;
  const unsigned instances = read_machine_count(sv, "instances", "GPU instances serving the trace");
  if (instances % g.span != 0) {
    sv.fail("instances",
            "a model copy spans " + std::to_string(g.span) +
                " instances (gpu_pass.tp_degree x pp_degree over gpu_instance.gpus): use a multiple of " +
                std::to_string(g.span) + "; got " + std::to_string(instances));
  }
  // Serving machines: the groups, or with pipeline stages the groups' pp engines each.
  cfg.prefill_instances = cfg.decode_systems =
      (g.span > 1 ? instances / g.span : instances * g.groups) * g.pass.pp_degree;
  FaultSchedule faults = read_faults(root, nullptr, 0);
  cfg.decode_kv_capacity_bytes = g.kv_capacity_bytes;
  // With a draft, admission counts the target's KV against the room both models' KV share.
  if (draft) cfg.decode_kv_capacity_bytes = gpu_speculative_kv_room(g, model, *draft, false);
  check_requests_fit(tr, model, in.requests, cfg.decode_kv_capacity_bytes,
                     gpu_kv_room_text(draft.has_value()),
                     "raise gpu_pass.tp_degree, use a GPU with more HBM or drop the request");
  const FleetPart fleet = read_fleet_part(root, "gpu_instance", instances);
  auto experiment = std::make_unique<GpuServing>(
      model, std::move(in.requests), cfg, std::move(faults), instances, g.groups, g.gpu, g.node, g.pass,
      g.span, info.trace, draft ? std::optional(std::move(draft->model)) : std::nullopt);
  experiment->set_energy(read_run_energy(root, RunCost{{fleet}}, model));
  experiment->set_cost(RunCost{{fleet}});
  return experiment;
}

std::unique_ptr<sim::Experiment> make_trainium_prefill_gpu_decode(config::Section& root,
                                                                  const sim::ExperimentInfo& info) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  const TrainiumSide trn = read_trainium_side(root);
  const GpuSide g = read_gpu_side(root, model, true);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  // Speculative decoding: the draft beside the target on the decode groups' GPUs, its
  // prompt KV made by the Trainium prefill (fused) and sent with the target's.
  std::optional<DraftModel> draft = read_draft_model(sv, model, info.seed, cfg);
  cfg.placement = serving::Placement::disaggregated;
  cfg.layers = model.layers;
  cfg.prefill_instances = read_machine_count(sv, "prefill_instances", "Trainium instances that prefill");
  const unsigned decode_instances = read_machine_count(sv, "decode_instances", "GPU instances that decode");
  if (decode_instances % g.span != 0) {
    sv.fail("decode_instances",
            "a model copy spans " + std::to_string(g.span) +
                " instances (gpu_pass.tp_degree over gpu_instance.gpus): use a multiple of " +
                std::to_string(g.span) + "; got " + std::to_string(decode_instances));
  }
  // The decode machines: the groups of each instance, or the groups over span instances.
  cfg.decode_systems = g.span > 1 ? decode_instances / g.span : decode_instances * g.groups;
  // Every group is an EFA receiver; a group over several instances is one per instance.
  const DerivedCount receivers =
      g.span > 1
          ? DerivedCount{decode_instances, located_key(sv, "decode_instances"),
                         "a group spans " + std::to_string(g.span) +
                             " instances, each receiving on its own EFA attachment"}
          : DerivedCount{cfg.decode_systems,
                         located_key(sv, "decode_instances") +
                             " x the tensor-parallel groups of an instance, " +
                             located_key(root.section("gpu_instance", "the GPU instance"), "gpus") + " / " +
                             located_key(root.section("gpu_pass", "the GPU pass", true), "tp_degree"),
                         "every group is an EFA receiver"};
  efa::EfaNetworkConfig efa =
      read_serving_efa(root, {cfg.prefill_instances, located_key(sv, "prefill_instances"), ""}, receivers);
  // A group over span instances takes each message as span writes.
  charge_kv_transfers(info.memory, sv, cfg, efa, in.requests.size() * g.span, 1);
  FaultSchedule faults = read_faults(root, &efa, cfg.decode_systems);
  // The prefill instance holds the whole model in its HBM (as in trainium_disaggregated).
  const std::uint64_t trn_hbm = trn.chip.hbm.capacity().bytes * trn.instance.chips();
  if (model.weight_bytes() >= trn_hbm) {
    root.fail("model", "the weights (" + std::to_string(model.weight_bytes()) +
                           " B) do not fit the Trainium instance's HBM (" + std::to_string(trn_hbm) + " B)");
  }
  cfg.decode_kv_capacity_bytes = g.kv_capacity_bytes;
  if (draft) {
    check_trainium_draft_prefill(trn, model, *draft);
    // Admission counts both models' KV (what crosses); a request's target KV has the target's share.
    cfg.decode_kv_capacity_bytes = gpu_speculative_kv_room(g, model, *draft, true);
  }
  check_requests_fit(tr, model, in.requests,
                     draft ? gpu_speculative_kv_room(g, model, *draft, false) : cfg.decode_kv_capacity_bytes,
                     gpu_kv_room_text(draft.has_value()),
                     "raise gpu_pass.tp_degree, use a GPU with more HBM or drop the request");
  // The serving layer sees the instances' prefill.dp_degree replicas.
  check_prefill_group_fits(root, trn, model, cfg.prefill_max_batch_tokens, false);
  const unsigned trainium_instances = cfg.prefill_instances;
  cfg.prefill_instances *= trn.prefill.dp_degree;
  RunCost cost;
  cost.fleet.push_back(read_fleet_part(root, "trainium_instance", trainium_instances));
  cost.fleet.push_back(read_fleet_part(root, "gpu_instance", decode_instances));
  auto experiment = std::make_unique<TrainiumPrefillGpuDecode>(
      model, std::move(in.requests), cfg, std::move(faults), trn, decode_instances, g, efa, info.trace,
      draft ? std::optional(std::move(draft->model)) : std::nullopt);
  experiment->set_energy(read_run_energy(root, cost, model));
  experiment->set_cost(std::move(cost));
  return experiment;
}

}  // namespace wse::experiments
