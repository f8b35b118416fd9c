#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/trainium_serving.h"

#include <optional>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
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

// One Trainium instance seen by the serving layer: both phases run its operator graphs
// on the Trainium model. Busy time per engine class accumulates into statistics.
class TrainiumMachine : public serving::PrefillBackend, public serving::DecodeBackend {
 public:
  TrainiumMachine(neuron::TrainiumPrefill& model_runner, const workloads::TransformerModel& model,
                  stats::Group& group)
      : runner_(model_runner),
        model_(model),
        tensor_(group.utilization("tensor_engine", "tensor engines busy (array fraction weighted), mean over cores")),
        hbm_(group.utilization("hbm", "HBM data bus busy, per chip")),
        link_(group.utilization("neuronlink", "NeuronLink links busy, mean over links")) {}

  serving::PrefillTiming prefill(const std::vector<serving::PrefillChunk>& batch) override {
    std::vector<std::uint64_t> tokens, offsets;
    for (const auto& c : batch) {
      tokens.push_back(c.tokens);
      offsets.push_back(c.context_offset);
    }
    const neuron::PrefillResult r = runner_.run(workloads::lower_prefill(model_, tokens, offsets), model_.weight_bytes());
    account(r);
    serving::PrefillTiming t;
    t.seconds = r.seconds();
    for (const auto& l : r.layers) {
      if (l.layer >= 0) t.layer_done_s.push_back(static_cast<double>(l.end_ps) * 1e-12);
    }
    return t;
  }

  double step(const std::vector<std::uint32_t>& contexts) override {
    std::vector<std::uint64_t> ctx(contexts.begin(), contexts.end());
    const neuron::PrefillResult r = runner_.run(workloads::lower_decode(model_, ctx), model_.weight_bytes());
    account(r);
    return r.seconds();
  }

 private:
  void account(const neuron::PrefillResult& r) {
    tensor_.add_busy(r.tensor_utilization() * r.seconds());
    hbm_.add_busy(r.hbm_utilization() * r.seconds());
    link_.add_busy(r.link_utilization() * r.seconds());
  }
  neuron::TrainiumPrefill& runner_;
  const workloads::TransformerModel& model_;
  stats::Utilization& tensor_;
  stats::Utilization& hbm_;
  stats::Utilization& link_;
};

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

 private:
  stats::Group stats_;
  // One runner for all instances: identical instances share its cache of simulated
  // layers and operators (their time depends only on the operator and the hardware).
  neuron::TrainiumPrefill runner_;
  std::vector<std::unique_ptr<TrainiumMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

class TrainiumServing final : public sim::Experiment {
 public:
  // `efa` is used (and required) when the placement is disaggregated.
  TrainiumServing(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
                  const serving::ServingConfig& cfg, const neuron::ChipConfig& chip,
                  const neuron::InstanceConfig& instance, const neuron::PrefillConfig& prefill,
                  const efa::EfaNetworkConfig* efa, trace::Writer* trace)
      : model_(model), cfg_(cfg) {
    cfg_.kv_bytes = [this](std::uint64_t n) { return model_.kv_bytes(n); };
    const bool colocated = cfg_.placement == serving::Placement::colocated;
    machines_ = std::make_unique<Machines>("trainium", cfg_.prefill_instances, cfg_.decode_systems, colocated, chip,
                                           instance, prefill, model_);
    if (!colocated) kv_path_ = std::make_unique<EfaKvPath>("kv_path", *efa, trace);
    system_ = std::make_unique<serving::ServingSystem>("serving", cfg_, std::move(requests), machines_->prefill(),
                                                       machines_->decode(), kv_path_.get(), trace);
  }
  void run(sim::RunContext&) override {
    sc_core::sc_start();
    end_s_ = system_->end_s();
  }
  double simulated_seconds() const override { return end_s_; }
  void summarize(nlohmann::json& s) const override {
    s["model"] = {{"name", model_.name}, {"weight_bytes", model_.weight_bytes()},
                  {"kv_bytes_per_token", model_.kv_bytes_per_token()}};
    s["decode_kv_capacity_bytes"] = cfg_.decode_kv_capacity_bytes;
    serving::summarize(*system_, cfg_, s);
  }
  std::map<std::string, std::string> extra_files() const override {
    return {{"requests.csv", serving::requests_csv(*system_)}};
  }

 private:
  workloads::TransformerModel model_;
  serving::ServingConfig cfg_;
  std::unique_ptr<Machines> machines_;
  std::unique_ptr<EfaKvPath> kv_path_;
  std::unique_ptr<serving::ServingSystem> system_;
  double end_s_ = 0;
};

}  // namespace

namespace {

std::unique_ptr<sim::Experiment> make_trainium_serving(config::Section& root, const sim::ExperimentInfo& info,
                                                       serving::Placement placement) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr);
  const workloads::TransformerModel& model = in.model;
  config::Section trn = root.section("trainium", "the Trainium chip");
  const neuron::ChipConfig chip = neuron::read_chip_config(trn);
  config::Section inst = root.section("instance", "the Trainium instance (chips on a NeuronLink torus)");
  const neuron::InstanceConfig instance = neuron::read_instance_config(inst);
  config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
  const neuron::PrefillConfig prefill = neuron::read_prefill_config(pre);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  cfg.placement = placement;
  cfg.layers = model.layers;
  const auto count = [&](std::string_view key, std::string_view doc) {
    return static_cast<unsigned>(sv.integer(key, {.doc = doc, .def = "1", .min = 1, .max = 4096}));
  };
  std::optional<efa::EfaNetworkConfig> efa;
  if (placement == serving::Placement::colocated) {
    cfg.prefill_instances = cfg.decode_systems = count("instances", "Trainium instances serving the trace");
  } else {
    cfg.prefill_instances = count("prefill_instances", "Trainium instances that prefill");
    cfg.decode_systems = count("decode_instances", "Trainium instances that decode");
    config::Section efa_s = root.section("efa", "the EFA network (senders = prefill instances, receivers = decode)");
    efa = efa::read_efa_config(efa_s);
    if (efa->senders != cfg.prefill_instances) {
      efa_s.fail("senders", "must equal serving.prefill_instances (" + std::to_string(cfg.prefill_instances) + ")");
    }
    if (efa->receivers != cfg.decode_systems) {
      efa_s.fail("receivers", "must equal serving.decode_instances (" + std::to_string(cfg.decode_systems) + ")");
    }
  }
  // The KV cache lives in the HBM that the weights leave free on a decode instance.
  const std::uint64_t hbm = chip.hbm.capacity().bytes * instance.chips();
  if (model.weight_bytes() >= hbm) {
    root.fail("model", "the weights (" + std::to_string(model.weight_bytes()) + " B) do not fit the instance's HBM (" +
                           std::to_string(hbm) + " B)");
  }
  cfg.decode_kv_capacity_bytes = hbm - model.weight_bytes();
  for (const auto& r : in.requests) {
    if (model.kv_bytes(r.input_tokens + std::max<std::uint32_t>(1, r.output_tokens)) > cfg.decode_kv_capacity_bytes) {
      tr.fail("path", "request " + std::to_string(r.id) + " needs more KV cache than an instance holds");
    }
  }
  return std::make_unique<TrainiumServing>(model, std::move(in.requests), cfg, chip, instance, prefill,
                                           efa ? &*efa : nullptr, info.trace);
}

}  // namespace

std::unique_ptr<sim::Experiment> make_trainium_only(config::Section& root, const sim::ExperimentInfo& info) {
  return make_trainium_serving(root, info, serving::Placement::colocated);
}

std::unique_ptr<sim::Experiment> make_trainium_disaggregated(config::Section& root, const sim::ExperimentInfo& info) {
  return make_trainium_serving(root, info, serving::Placement::disaggregated);
}

}  // namespace wse::experiments
