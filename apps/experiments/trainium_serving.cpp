#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/trainium_serving.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
#include "apps/experiments/machines.h"
#include "apps/experiments/serving_experiment.h"
#include "apps/experiments/speculative.h"
#include "efa_link/efa_config.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/pipeline_op.h"
#include "neuroncore/transformer/prefill.h"
#include "neuroncore/transformer/prefill_config.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/serving_report.h"
#include "workloads/serving/serving_system.h"
#include "workloads/trace/request_trace.h"

namespace wse::experiments {

namespace {

// The Trainium instances of the experiment. Colocated: each instance is both a prefill
// and a decode machine. Disaggregated: the first `prefill` instances prefill, the next
// `decode` instances decode. With prefill.dp_degree > 1 the machines that prefill are the
// instances' dp replicas (`prefill` counts them; colocated, each is also a decode machine on
// its group).
class Machines : public sc_core::sc_module, public stats::Provider {
 public:
  Machines(const sc_core::sc_module_name& name, unsigned prefill, unsigned decode, bool colocated,
           const neuron::ChipConfig& chip, const neuron::InstanceConfig& instance,
           const neuron::PrefillConfig& prefill_cfg, const workloads::TransformerModel& model,
           const std::optional<neuron::PrefillConfig>& decode_split, const workloads::TransformerModel* draft)
      : sc_module(name), stats_(std::string(basename())), runner_(chip, instance, prefill_cfg) {
    if (decode_split) {
      decode_split_ =
          std::make_unique<neuron::TrainiumPipeline>(chip, instance, *decode_split, decode_split->pp_degree,
                                                     decode_split->dp_degree, decode_split->microbatches);
    }
    const unsigned total = colocated ? prefill : prefill + decode;
    const unsigned dp = prefill_cfg.dp_degree;
    for (unsigned i = 0; i < total; ++i) {
      const std::string group = colocated     ? prefill_group_name("instance", i, dp)
                                : i < prefill ? prefill_group_name("prefill", i, dp)
                                              : "decode" + std::to_string(i - prefill);
      machines_.push_back(std::make_unique<TrainiumMachine>(
          runner_, model, stats_.child(group), i < prefill ? nullptr : decode_split_.get(), draft));
    }
    // prefill.cp_degree or pp_degree > 1: the prefill batches run over the context-parallel
    // groups, or through the pipeline stages.
    prefill_split_ = make_prefill_split(TrainiumSide{chip, instance, prefill_cfg});
    for (unsigned i = 0; i < prefill; ++i) {
      machines_[i]->set_prefill_split(prefill_split_.get(), prefill_cfg.pp_degree);
      prefill_.push_back(machines_[i].get());
    }
    for (unsigned j = 0; j < decode; ++j) decode_.push_back(machines_[colocated ? j : prefill + j].get());
  }
  const stats::Group& stats() const override { return stats_; }
  const std::vector<serving::PrefillBackend*>& prefill() const { return prefill_; }
  const std::vector<serving::DecodeBackend*>& decode() const { return decode_; }
  std::vector<const TrainiumMachine*> all() const {
    std::vector<const TrainiumMachine*> out;
    for (const auto& m : machines_) out.push_back(m.get());
    return out;
  }

 private:
  stats::Group stats_;
  // One runner for all instances: identical instances share its cache of simulated
  // layers and operators (their time depends only on the operator and the hardware).
  neuron::TrainiumPrefill runner_;
  // The decode instances' own split (trainium_decode:), shared by them likewise; null when
  // decode steps run as the prefill's single group.
  std::unique_ptr<neuron::TrainiumPipeline> decode_split_;
  std::unique_ptr<neuron::TrainiumPipeline> prefill_split_;  // prefill.cp_degree or pp_degree > 1
  std::vector<std::unique_ptr<TrainiumMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

class TrainiumServing final : public ServingExperiment {
 public:
  // `efa` is used (and required) when the placement is disaggregated.
  TrainiumServing(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
                  const serving::ServingConfig& cfg, FaultSchedule faults, const TrainiumSide& trn,
                  const std::optional<neuron::PrefillConfig>& decode_split, const efa::EfaNetworkConfig* efa,
                  trace::Writer* trace, std::optional<workloads::TransformerModel> draft)
      : ServingExperiment(model, cfg, std::move(faults)), draft_(std::move(draft)) {
    const bool colocated = cfg_.placement == serving::Placement::colocated;
    // Disaggregated speculation: the prefill instances make the draft's prompt KV too, and
    // it crosses with the target's.
    if (draft_ && !colocated) count_draft_kv(*draft_);
    machines_ = std::make_unique<Machines>("trainium", cfg_.prefill_instances, cfg_.decode_systems, colocated,
                                           trn.chip, trn.instance, trn.prefill, model_, decode_split,
                                           draft_ ? &*draft_ : nullptr);
    serving::KvPath* path = nullptr;
    if (!colocated) {
      kv_path_ = std::make_unique<EfaKvPath>("kv_path", *efa, fault_schedule().efa, trace);
      path = kv_path_.get();
      if (trn.prefill.dp_degree > 1) {
        grouped_ = std::make_unique<GroupedKvPath>(*kv_path_, trn.prefill.dp_degree);
        path = grouped_.get();
      }
    }
    start(std::move(requests), machines_->prefill(), machines_->decode(), path, trace);
  }

 private:
  const efa::SrdEngine* efa_engine() const override {
    return kv_path_ ? &kv_path_->network().engine() : nullptr;
  }
  void summarize_machines(nlohmann::json& s) const override {
    s["trainium"] = trainium_summary(machines_->all());
  }
  std::map<std::string, Activity> activity() const override {
    return {{"trainium_instance", total_activity(machines_->all())}};
  }

  std::optional<workloads::TransformerModel> draft_;  // serving.speculative.draft_model
  std::unique_ptr<Machines> machines_;
  std::unique_ptr<EfaKvPath> kv_path_;
  std::unique_ptr<GroupedKvPath>
      grouped_;  // prefill.dp_degree > 1: the replicas share their instance's sender
};

}  // namespace

namespace {

std::unique_ptr<sim::Experiment> make_trainium_serving(config::Section& root, const sim::ExperimentInfo& info,
                                                       serving::Placement placement) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  const TrainiumSide trn = read_trainium_side(root);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  cfg.placement = placement;
  cfg.layers = model.layers;
  std::optional<efa::EfaNetworkConfig> efa;
  if (placement == serving::Placement::colocated) {
    cfg.prefill_instances = cfg.decode_systems =
        read_machine_count(sv, "instances", "Trainium instances serving the trace");
  } else {
    cfg.prefill_instances = read_machine_count(sv, "prefill_instances", "Trainium instances that prefill");
    cfg.decode_systems = read_machine_count(sv, "decode_instances", "Trainium instances that decode");
    efa = read_serving_efa(root, {cfg.prefill_instances, located_key(sv, "prefill_instances"), ""},
                           {cfg.decode_systems, located_key(sv, "decode_instances"), ""});
    charge_kv_transfers(info.memory, sv, cfg, *efa, in.requests.size(), 1);
  }
  // The instances (fleet, EFA senders); the serving layer sees their dp prefill replicas.
  const unsigned instances = cfg.prefill_instances;
  const unsigned dp = trn.prefill.dp_degree;
  cfg.prefill_instances *= dp;
  if (placement == serving::Placement::colocated) cfg.decode_systems *= dp;
  FaultSchedule faults = read_faults(root, efa ? &*efa : nullptr,
                                     placement == serving::Placement::disaggregated ? cfg.decode_systems : 0);
  // The KV cache lives in the HBM that the weights leave free on a decode instance.
  const std::uint64_t hbm = trn.chip.hbm.capacity().bytes * trn.instance.chips();
  if (model.weight_bytes() >= hbm) {
    root.fail("model", "the weights (" + std::to_string(model.weight_bytes()) +
                           " B) do not fit the instance's HBM (" + std::to_string(hbm) + " B)");
  }
  cfg.decode_kv_capacity_bytes = hbm - model.weight_bytes();
  check_prefill_group_fits(root, trn, model, cfg.prefill_max_batch_tokens,
                           placement == serving::Placement::colocated);
  if (dp > 1) {
    // Colocated, each replica decodes on its own group: its KV room is its chips' HBM.
    if (placement == serving::Placement::colocated)
      cfg.decode_kv_capacity_bytes = prefill_group_hbm_bytes(trn) - model.weight_bytes();
  }
  // Speculative decoding: the draft is fused with the target on the same chips. Both
  // models' weights and KV share the HBM. Disaggregated, the prefill instances make the
  // draft's prompt KV too (fused, after the target's pass) and send it with the target's.
  std::optional<DraftModel> draft = read_draft_model(sv, model, info.seed, cfg);
  if (draft && dp > 1 && placement == serving::Placement::colocated) {
    draft->section.fail("draft_model",
                        "speculative decoding with prefill.dp_degree > 1 (replicas that each decode on their "
                        "own chips) is not modelled; set prefill.dp_degree: 1 or remove serving.speculative");
  }
  if (draft) {
    const std::uint64_t weights = model.weight_bytes() + draft->model.weight_bytes();
    if (weights >= hbm) {
      draft->section.fail("draft_model",
                          "the draft's weights (" + std::to_string(draft->model.weight_bytes()) +
                              " B) do not fit beside the target's (" + std::to_string(model.weight_bytes()) +
                              " B) in the instance's HBM (" + std::to_string(hbm) +
                              " B): " + std::to_string(weights - hbm) +
                              " B short, with no room left for the KV cache; use a smaller draft");
    }
    if (placement == serving::Placement::colocated) {
      cfg.decode_kv_capacity_bytes = speculative_kv_room(hbm - weights, model, draft->model);
    } else {
      check_trainium_draft_prefill(trn, model, *draft);
      // Admission counts both models' KV (what crosses): the room is the HBM left.
      cfg.decode_kv_capacity_bytes = hbm - weights;
    }
  }
  // Decode's own split of a decode instance's chips (disaggregated only: a colocated
  // instance holds one layout of the weights, the prefill's).
  std::optional<neuron::PrefillConfig> decode_split;
  // A request's target KV may take the target's share of the room.
  std::uint64_t replica_kv =
      draft
          ? speculative_kv_room(hbm - model.weight_bytes() - draft->model.weight_bytes(), model, draft->model)
          : cfg.decode_kv_capacity_bytes;
  if (draft && root.has("trainium_decode")) {
    draft->section.fail(
        "draft_model",
        "speculative decoding with trainium_decode's own split is not modelled: a split's decode step is "
        "timed as the steady state of identical steps through its stages and replicas, and a speculative "
        "step alternates the draft's passes with the target's verification (and the split would hold both "
        "models' layers per stage); remove trainium_decode or serving.speculative");
  }
  if (std::optional<config::Section> dec = root.optional_section(
          "trainium_decode", "how a decode instance's chips are split for decode steps: tp x pp x dp")) {
    const neuron::PrefillConfig d = neuron::read_decode_split(*dec, trn.prefill);
    if (placement == serving::Placement::colocated) {
      const char* key = d.tp_degree != trn.prefill.tp_degree ? "tp_degree"
                        : d.pp_degree != 1                   ? "pp_degree"
                        : d.dp_degree != 1                   ? "dp_degree"
                        : d.microbatches != 1                ? "microbatches"
                                                             : nullptr;
      if (key != nullptr) {
        dec->fail(key,
                  "differs from the prefill's split, but a colocated instance (mode trainium_only) holds one "
                  "copy of the weights laid out for prefill.tp_degree; decode's own split needs mode "
                  "trainium_disaggregated: remove trainium_decode." +
                      std::string(key));
      }
    } else if (d.tp_degree != trn.prefill.tp_degree || d.pp_degree != 1 || d.dp_degree != 1 ||
               d.microbatches != 1) {
      std::optional<neuron::TrainiumPipeline> split;
      try {
        split.emplace(trn.chip, trn.instance, d, d.pp_degree, d.dp_degree, d.microbatches);
      } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        const char* key = what.find("whole number") != std::string::npos || what.rfind("prefill:", 0) == 0 ||
                                  what.find("tp_degree") != std::string::npos
                              ? "tp_degree"
                          : d.dp_degree > 1 ? "dp_degree"
                                            : "pp_degree";
        dec->fail(key, what + "; lower trainium_decode.tp_degree, pp_degree or dp_degree");
      }
      if (d.pp_degree > model.layers) {
        dec->fail("pp_degree", "is " + std::to_string(d.pp_degree) + " but the model has " +
                                   std::to_string(model.layers) + " decoder layers to split into stages");
      }
      const neuron::TrainiumPipeline::DecodeCapacity c = split->decode_capacity(model);
      if (c.replica_kv_bytes == 0) {
        dec->fail(d.pp_degree > 1 ? "pp_degree" : "tp_degree",
                  "a stage of tp " + std::to_string(d.tp_degree) + " x pp " + std::to_string(d.pp_degree) +
                      " holds per chip " + std::to_string(c.weight_bytes_per_chip) +
                      " B of weights but a chip's HBM holds " + std::to_string(c.hbm_bytes_per_chip) +
                      " B (" +
                      std::to_string(c.weight_bytes_per_chip -
                                     std::min(c.weight_bytes_per_chip, c.hbm_bytes_per_chip)) +
                      " B short, and no room left for the KV cache); raise tp_degree or pp_degree");
      }
      replica_kv = c.replica_kv_bytes;
      cfg.decode_kv_capacity_bytes = c.replica_kv_bytes * c.replicas;
      decode_split = d;
    }
  }
  if (!decode_split && placement == serving::Placement::disaggregated &&
      (trn.prefill.pp_degree > 1 || trn.prefill.cp_degree > 1) &&
      model.weight_bytes() >= prefill_group_hbm_bytes(trn)) {
    // Without trainium_decode: a decode instance runs its steps on the prefill's
    // tensor-parallel group, which must hold all the weights.
    config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
    pre.fail(
        trn.prefill.pp_degree > 1 ? "pp_degree" : "cp_degree",
        "splits the prefill, but a decode instance without trainium_decode: runs on the prefill's group of "
        "tp " +
            std::to_string(trn.prefill.tp_degree) + ", whose HBM (" +
            std::to_string(prefill_group_hbm_bytes(trn)) + " B) does not hold the weights (" +
            std::to_string(model.weight_bytes()) +
            " B); give decode its own split (trainium_decode.tp_degree)");
  }
  check_requests_fit(
      tr, model, in.requests, replica_kv,
      decode_split ? "a decode replica's HBM after its weights" : "an instance's HBM after the weights",
      decode_split ? "lower trainium_decode.dp_degree, or drop the request"
                   : "use an instance with more HBM or drop the request");
  const FleetPart fleet =
      read_fleet_part(root, "trainium_instance",
                      instances + (placement == serving::Placement::colocated ? 0 : cfg.decode_systems));
  auto experiment = std::make_unique<TrainiumServing>(
      model, std::move(in.requests), cfg, std::move(faults), trn, decode_split, efa ? &*efa : nullptr,
      info.trace, draft ? std::optional(std::move(draft->model)) : std::nullopt);
  experiment->set_energy(read_run_energy(root, RunCost{{fleet}}, model));
  experiment->set_cost(RunCost{{fleet}});
  return experiment;
}

}  // namespace

std::unique_ptr<sim::Experiment> make_trainium_only(config::Section& root, const sim::ExperimentInfo& info) {
  return make_trainium_serving(root, info, serving::Placement::colocated);
}

std::unique_ptr<sim::Experiment> make_trainium_disaggregated(config::Section& root,
                                                             const sim::ExperimentInfo& info) {
  return make_trainium_serving(root, info, serving::Placement::disaggregated);
}

}  // namespace wse::experiments
