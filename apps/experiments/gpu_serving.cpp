#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/gpu_serving.h"

#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
#include "apps/experiments/machines.h"
#include "apps/experiments/serving_experiment.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"
#include "gpu/transformer/pass.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/operators.h"
#include "workloads/serving/serving_system.h"

namespace wse::experiments {

namespace {

// One tensor-parallel group of GPUs holding one copy of the model: both phases run its
// operator graphs on the GPU model.
class GpuMachine : public serving::PrefillBackend, public serving::DecodeBackend {
 public:
  struct Floors {
    gpu::GpuFloor floor;
    std::uint64_t passes = 0;
    double simulated_s = 0.0;
  };

  GpuMachine(gpu::GpuPass& runner, const workloads::TransformerModel& model, stats::Group& group)
      : runner_(runner),
        model_(model),
        tensor_(group.utilization("tensor_cores",
                                  "tensor cores busy at their dense peak (matrix flops / peak), per GPU")),
        hbm_(group.utilization("hbm", "HBM data bus busy (bytes / streaming bandwidth), per GPU")),
        nvlink_(group.utilization("nvlink", "all-reduces of tensor parallelism on the NVSwitch")),
        launch_(group.utilization("kernel_launch", "between kernels (launch and drain)")),
        kernels_(group.counter("kernels", "kernels", "kernels run per GPU")) {
    for (gpu::NodeAlgorithm a : gpu::kNodeAlgorithms) {
      algorithms_.push_back(&group.utilization("collective_" + std::string(gpu::to_string(a)),
                                               "all-reduces run with the " + std::string(gpu::to_string(a)) +
                                                   " algorithm (chosen per size): share of the time"));
    }
  }

  serving::PrefillTiming prefill(const std::vector<serving::PrefillChunk>& batch) override {
    std::vector<std::uint64_t> tokens, offsets;
    for (const auto& c : batch) {
      tokens.push_back(c.tokens);
      offsets.push_back(c.context_offset);
    }
    const gpu::GpuPassResult r = runner_.run(workloads::lower_prefill(model_, tokens, offsets));
    account(r, prefill_floor_);
    serving::PrefillTiming t;
    t.seconds = r.seconds;
    t.layer_done_s = r.layer_done_s;
    return t;
  }

  double step(const std::vector<std::uint32_t>& contexts) override {
    const std::vector<std::uint64_t> ctx(contexts.begin(), contexts.end());
    const gpu::GpuPassResult r = runner_.run(workloads::lower_decode(model_, ctx));
    account(r, decode_floor_);
    return r.seconds;
  }

  const Floors& prefill_floor() const { return prefill_floor_; }
  const Floors& decode_floor() const { return decode_floor_; }

 private:
  void account(const gpu::GpuPassResult& r, Floors& f) {
    tensor_.add_busy(r.busy.tensor_s);
    hbm_.add_busy(r.busy.hbm_s);
    nvlink_.add_busy(r.busy.nvlink_s);
    launch_.add_busy(r.busy.launch_s);
    for (std::size_t i = 0; i < algorithms_.size(); ++i) algorithms_[i]->add_busy(r.busy.algorithm_s[i]);
    kernels_.add(r.busy.kernels);
    f.floor += r.floor;
    ++f.passes;
    f.simulated_s += r.seconds;
  }

  gpu::GpuPass& runner_;
  const workloads::TransformerModel& model_;
  stats::Utilization& tensor_;
  stats::Utilization& hbm_;
  stats::Utilization& nvlink_;
  stats::Utilization& launch_;
  std::vector<stats::Utilization*> algorithms_;
  stats::Counter& kernels_;
  Floors prefill_floor_, decode_floor_;
};

// The GPU groups of the experiment: `instances` nodes of `groups` tensor-parallel groups.
class GpuMachines : public sc_core::sc_module, public stats::Provider {
 public:
  GpuMachines(const sc_core::sc_module_name& name, unsigned instances, unsigned groups,
              const gpu::GpuConfig& g, const gpu::NodeConfig& node, const gpu::PassConfig& pass,
              const workloads::TransformerModel& model)
      : sc_module(name), stats_(std::string(basename())), runner_(g, node, pass) {
    for (unsigned i = 0; i < instances; ++i) {
      for (unsigned k = 0; k < groups; ++k) {
        const std::string id =
            "instance" + std::to_string(i) + (groups > 1 ? "_tp_group" + std::to_string(k) : std::string());
        machines_.push_back(std::make_unique<GpuMachine>(runner_, model, stats_.child(id)));
        prefill_.push_back(machines_.back().get());
        decode_.push_back(machines_.back().get());
      }
    }
  }
  const stats::Group& stats() const override { return stats_; }
  const std::vector<serving::PrefillBackend*>& prefill() const { return prefill_; }
  const std::vector<serving::DecodeBackend*>& decode() const { return decode_; }

  // summary.json `gpu`: the floors of the prefill passes and decode steps (means per
  // pass, and the ratio of simulated to floor time), as `trainium.floor`.
  nlohmann::json summary() const {
    GpuMachine::Floors prefill, decode;
    for (const auto& m : machines_) {
      for (auto [sum, part] :
           {std::pair{&prefill, &m->prefill_floor()}, std::pair{&decode, &m->decode_floor()}}) {
        sum->floor += part->floor;
        sum->passes += part->passes;
        sum->simulated_s += part->simulated_s;
      }
    }
    const auto floor_json = [](const GpuMachine::Floors& f) {
      const double n = f.passes > 0 ? static_cast<double>(f.passes) : 1.0;
      return nlohmann::json{{"passes", f.passes},
                            {"simulated_s", f.simulated_s / n},
                            {"compute_s", f.floor.compute_s / n},
                            {"hbm_s", f.floor.hbm_s / n},
                            {"collective_s", f.floor.collective_s / n},
                            {"step_s", f.floor.step_s / n},
                            {"ratio", f.floor.step_s > 0.0 ? f.simulated_s / f.floor.step_s : 0.0}};
    };
    nlohmann::json floor = nlohmann::json::object();
    if (prefill.passes > 0) floor["prefill_pass"] = floor_json(prefill);
    if (decode.passes > 0) floor["decode_step"] = floor_json(decode);
    return nlohmann::json{{"floor", floor}, {"tp_groups", machines_.size()}};
  }

 private:
  stats::Group stats_;
  // One runner for all groups: identical groups share its caches of GEMM and attention times.
  gpu::GpuPass runner_;
  std::vector<std::unique_ptr<GpuMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

class GpuServing final : public ServingExperiment {
 public:
  GpuServing(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
             const serving::ServingConfig& cfg, unsigned instances, unsigned groups, const gpu::GpuConfig& g,
             const gpu::NodeConfig& node, const gpu::PassConfig& pass, trace::Writer* trace)
      : ServingExperiment(model, cfg) {
    machines_ = std::make_unique<GpuMachines>("gpu", instances, groups, g, node, pass, model_);
    start(std::move(requests), machines_->prefill(), machines_->decode(), nullptr, trace);
  }

 private:
  void summarize_machines(nlohmann::json& s) const override { s["gpu"] = machines_->summary(); }
  std::unique_ptr<GpuMachines> machines_;
};

}  // namespace

namespace {

// The GPU side as the experiment YAML gives it (`gpu:`, `gpu_instance:`, `gpu_pass:`),
// checked: tp_degree divides the instance's GPUs, and the weights sharded over a group
// fit its GPUs' HBM (the KV cache lives in the HBM they leave free).
struct GpuSide {
  gpu::GpuConfig gpu;
  gpu::NodeConfig node;
  gpu::PassConfig pass;
  unsigned groups = 1;                  // tensor-parallel groups (model copies) per instance
  std::uint64_t kv_capacity_bytes = 0;  // per group, after the weights
};

GpuSide read_gpu_side(config::Section& root, const workloads::TransformerModel& model) {
  GpuSide g;
  config::Section gpu_s = root.section("gpu", "one GPU (streaming multiprocessors, tensor cores, HBM)");
  g.gpu = gpu::read_gpu_config(gpu_s);
  config::Section node_s = root.section("gpu_instance", "the GPU instance (GPUs on an NVSwitch)");
  g.node = gpu::read_node_config(node_s);
  config::Section pass_s =
      root.section("gpu_pass", "how a model copy is sharded and run on the instance's GPUs", true);
  g.pass = gpu::read_pass_config(pass_s);
  const unsigned gpus = g.node.gpus, tp = g.pass.tp_degree;
  if (tp > gpus || gpus % tp != 0) {
    pass_s.fail("tp_degree",
                "must divide the instance's " + std::to_string(gpus) +
                    " GPUs (gpu_instance.gpus), each group of tp_degree GPUs holding one copy of the "
                    "model; got " +
                    std::to_string(tp));
  }
  const std::uint64_t per_gpu = g.gpu.hbm.capacity().bytes;
  const std::uint64_t hbm = per_gpu * tp;
  if (model.weight_bytes() >= hbm) {
    const std::uint64_t need = model.weight_bytes() / per_gpu + 1;
    std::string fix = need <= gpus ? "raise gpu_pass.tp_degree to at least " + std::to_string(need) +
                                         " (a divisor of the instance's " + std::to_string(gpus) + " GPUs)"
                                   : "the model needs " + std::to_string(need) +
                                         " GPUs' HBM, more than one instance has: use a GPU with more HBM";
    pass_s.fail("tp_degree", "the model's weights (" + pretty_binary(Size{model.weight_bytes()}) +
                                 ") do not fit the HBM of tp_degree " + std::to_string(tp) + " GPU(s) (" +
                                 pretty_binary(Size{per_gpu}) + " each): " + fix);
  }
  g.groups = gpus / tp;
  g.kv_capacity_bytes = hbm - model.weight_bytes();
  return g;
}

// The Trainium prefill instances of trainium_prefill_gpu_decode.
class TrainiumPrefillPool : public sc_core::sc_module, public stats::Provider {
 public:
  TrainiumPrefillPool(const sc_core::sc_module_name& name, unsigned instances, const TrainiumSide& trn,
                      const workloads::TransformerModel& model)
      : sc_module(name), stats_(std::string(basename())), runner_(trn.chip, trn.instance, trn.prefill) {
    for (unsigned i = 0; i < instances; ++i) {
      machines_.push_back(
          std::make_unique<TrainiumMachine>(runner_, model, stats_.child("prefill" + std::to_string(i))));
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
  std::vector<std::unique_ptr<TrainiumMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
};

class TrainiumPrefillGpuDecode final : public ServingExperiment {
 public:
  TrainiumPrefillGpuDecode(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
                           const serving::ServingConfig& cfg, const TrainiumSide& trn,
                           unsigned decode_instances, const GpuSide& g, const efa::EfaNetworkConfig& efa,
                           trace::Writer* trace)
      : ServingExperiment(model, cfg) {
    prefill_ = std::make_unique<TrainiumPrefillPool>("trainium", cfg_.prefill_instances, trn, model_);
    decode_ = std::make_unique<GpuMachines>("gpu", decode_instances, g.groups, g.gpu, g.node, g.pass, model_);
    kv_path_ = std::make_unique<EfaKvPath>("kv_path", efa, trace);
    start(std::move(requests), prefill_->prefill(), decode_->decode(), kv_path_.get(), trace);
  }

 private:
  const efa::SrdEngine* efa_engine() const override { return &kv_path_->network().engine(); }
  void summarize_machines(nlohmann::json& s) const override {
    s["trainium"] = trainium_summary(prefill_->all());
    s["gpu"] = decode_->summary();
  }
  std::unique_ptr<TrainiumPrefillPool> prefill_;
  std::unique_ptr<GpuMachines> decode_;
  std::unique_ptr<EfaKvPath> kv_path_;
};

}  // namespace

std::unique_ptr<sim::Experiment> make_gpu_only(config::Section& root, const sim::ExperimentInfo& info) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  const GpuSide g = read_gpu_side(root, model);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  cfg.placement = serving::Placement::colocated;
  cfg.layers = model.layers;
  const unsigned instances = read_machine_count(sv, "instances", "GPU instances serving the trace");
  cfg.prefill_instances = cfg.decode_systems = instances * g.groups;
  FaultSchedule faults = read_faults(root, nullptr, 0);
  apply_faults(faults, nullptr, cfg);
  cfg.decode_kv_capacity_bytes = g.kv_capacity_bytes;
  check_requests_fit(tr, model, in.requests, cfg.decode_kv_capacity_bytes,
                     "the HBM of a tensor-parallel group of GPUs after the weights",
                     "raise gpu_pass.tp_degree, use a GPU with more HBM or drop the request");
  const FleetPart fleet = read_fleet_part(root, "gpu_instance", instances);
  auto experiment = std::make_unique<GpuServing>(model, std::move(in.requests), cfg, instances, g.groups,
                                                 g.gpu, g.node, g.pass, info.trace);
  experiment->set_fault_schedule(std::move(faults));
  experiment->set_cost(RunCost{{fleet}});
  return experiment;
}

std::unique_ptr<sim::Experiment> make_trainium_prefill_gpu_decode(config::Section& root,
                                                                  const sim::ExperimentInfo& info) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  const TrainiumSide trn = read_trainium_side(root);
  const GpuSide g = read_gpu_side(root, model);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  cfg.placement = serving::Placement::disaggregated;
  cfg.layers = model.layers;
  cfg.prefill_instances = read_machine_count(sv, "prefill_instances", "Trainium instances that prefill");
  const unsigned decode_instances = read_machine_count(sv, "decode_instances", "GPU instances that decode");
  cfg.decode_systems = decode_instances * g.groups;
  efa::EfaNetworkConfig efa = read_serving_efa(
      root, cfg.prefill_instances, "serving.prefill_instances", cfg.decode_systems,
      "serving.decode_instances x the tensor-parallel groups of an instance (gpu_instance.gpus / "
      "gpu_pass.tp_degree): every group is an EFA receiver");
  charge_kv_transfers(info.memory, sv, cfg, efa, in.requests.size(), 1);
  FaultSchedule faults = read_faults(root, &efa, cfg.decode_systems);
  apply_faults(faults, &efa, cfg);
  // The prefill instance holds the whole model in its HBM (as in trainium_disaggregated).
  const std::uint64_t trn_hbm = trn.chip.hbm.capacity().bytes * trn.instance.chips();
  if (model.weight_bytes() >= trn_hbm) {
    root.fail("model", "the weights (" + std::to_string(model.weight_bytes()) +
                           " B) do not fit the Trainium instance's HBM (" + std::to_string(trn_hbm) + " B)");
  }
  cfg.decode_kv_capacity_bytes = g.kv_capacity_bytes;
  check_requests_fit(tr, model, in.requests, cfg.decode_kv_capacity_bytes,
                     "the HBM of a tensor-parallel group of GPUs after the weights",
                     "raise gpu_pass.tp_degree, use a GPU with more HBM or drop the request");
  RunCost cost;
  cost.fleet.push_back(read_fleet_part(root, "trainium_instance", cfg.prefill_instances));
  cost.fleet.push_back(read_fleet_part(root, "gpu_instance", decode_instances));
  auto experiment = std::make_unique<TrainiumPrefillGpuDecode>(model, std::move(in.requests), cfg, trn,
                                                               decode_instances, g, efa, info.trace);
  experiment->set_fault_schedule(std::move(faults));
  experiment->set_cost(std::move(cost));
  return experiment;
}

}  // namespace wse::experiments
