#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/trainium_serving.h"

#include <optional>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
#include "apps/experiments/machines.h"
#include "apps/experiments/serving_experiment.h"
#include "efa_link/efa_config.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/prefill.h"
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
// `decode` instances decode.
class Machines : public sc_core::sc_module, public stats::Provider {
 public:
  Machines(const sc_core::sc_module_name& name, unsigned prefill, unsigned decode, bool colocated,
           const neuron::ChipConfig& chip, const neuron::InstanceConfig& instance,
           const neuron::PrefillConfig& prefill_cfg, const workloads::TransformerModel& model)
      : sc_module(name), stats_(std::string(basename())), runner_(chip, instance, prefill_cfg) {
    const unsigned total = colocated ? prefill : prefill + decode;
    for (unsigned i = 0; i < total; ++i) {
      const std::string group = colocated ? "instance" + std::to_string(i)
                                : i < prefill ? "prefill" + std::to_string(i)
                                              : "decode" + std::to_string(i - prefill);
      machines_.push_back(std::make_unique<TrainiumMachine>(runner_, model, stats_.child(group)));
    }
    for (unsigned i = 0; i < prefill; ++i) prefill_.push_back(machines_[i].get());
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
  std::vector<std::unique_ptr<TrainiumMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

class TrainiumServing final : public ServingExperiment {
 public:
  // `efa` is used (and required) when the placement is disaggregated.
  TrainiumServing(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
                  const serving::ServingConfig& cfg, const TrainiumSide& trn, const efa::EfaNetworkConfig* efa,
                  trace::Writer* trace)
      : ServingExperiment(model, cfg) {
    const bool colocated = cfg_.placement == serving::Placement::colocated;
    machines_ = std::make_unique<Machines>("trainium", cfg_.prefill_instances, cfg_.decode_systems, colocated, trn.chip,
                                           trn.instance, trn.prefill, model_);
    if (!colocated) kv_path_ = std::make_unique<EfaKvPath>("kv_path", *efa, trace);
    start(std::move(requests), machines_->prefill(), machines_->decode(), kv_path_.get(), trace);
  }

 private:
  const efa::SrdEngine* efa_engine() const override { return kv_path_ ? &kv_path_->network().engine() : nullptr; }
  void summarize_machines(nlohmann::json& s) const override { s["trainium"] = trainium_summary(machines_->all()); }
  std::map<std::string, Activity> activity() const override {
    return {{"trainium_instance", total_activity(machines_->all())}};
  }

  std::unique_ptr<Machines> machines_;
  std::unique_ptr<EfaKvPath> kv_path_;
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
    efa = read_serving_efa(root, cfg.prefill_instances, "serving.prefill_instances", cfg.decode_systems,
                           "serving.decode_instances");
    charge_kv_transfers(info.memory, sv, cfg, *efa, in.requests.size(), 1);
  }
  FaultSchedule faults = read_faults(root, efa ? &*efa : nullptr,
                                     placement == serving::Placement::disaggregated ? cfg.decode_systems : 0);
  apply_faults(faults, efa ? &*efa : nullptr, cfg);
  // The KV cache lives in the HBM that the weights leave free on a decode instance.
  const std::uint64_t hbm = trn.chip.hbm.capacity().bytes * trn.instance.chips();
  if (model.weight_bytes() >= hbm) {
    root.fail("model", "the weights (" + std::to_string(model.weight_bytes()) + " B) do not fit the instance's HBM (" +
                           std::to_string(hbm) + " B)");
  }
  cfg.decode_kv_capacity_bytes = hbm - model.weight_bytes();
  check_requests_fit(tr, model, in.requests, cfg.decode_kv_capacity_bytes, "an instance's HBM after the weights",
                     "use an instance with more HBM or drop the request");
  const FleetPart fleet = read_fleet_part(
      root, "trainium_instance",
      cfg.prefill_instances + (placement == serving::Placement::colocated ? 0 : cfg.decode_systems));
  auto experiment =
      std::make_unique<TrainiumServing>(model, std::move(in.requests), cfg, trn, efa ? &*efa : nullptr, info.trace);
  experiment->set_fault_schedule(std::move(faults));
  experiment->set_energy(read_run_energy(root, RunCost{{fleet}}, model));
  experiment->set_cost(RunCost{{fleet}});
  return experiment;
}

}  // namespace

std::unique_ptr<sim::Experiment> make_trainium_only(config::Section& root, const sim::ExperimentInfo& info) {
  return make_trainium_serving(root, info, serving::Placement::colocated);
}

std::unique_ptr<sim::Experiment> make_trainium_disaggregated(config::Section& root, const sim::ExperimentInfo& info) {
  return make_trainium_serving(root, info, serving::Placement::disaggregated);
}

}  // namespace wse::experiments
