#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/gpu_serving.h"

#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/inputs.h"
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

std::unique_ptr<sim::Experiment> make_gpu_only(config::Section& root, const sim::ExperimentInfo& info) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  config::Section gpu_s = root.section("gpu", "one GPU (streaming multiprocessors, tensor cores, HBM)");
  const gpu::GpuConfig g = gpu::read_gpu_config(gpu_s);
  config::Section node_s = root.section("gpu_instance", "the GPU instance (GPUs on an NVSwitch)");
  const gpu::NodeConfig node = gpu::read_node_config(node_s);
  config::Section pass_s =
      root.section("gpu_pass", "how a model copy is sharded and run on the instance's GPUs", true);
  const gpu::PassConfig pass = gpu::read_pass_config(pass_s);
  if (pass.tp_degree > node.gpus || node.gpus % pass.tp_degree != 0) {
    pass_s.fail("tp_degree",
                "must divide the instance's " + std::to_string(node.gpus) +
                    " GPUs (gpu_instance.gpus), each group of tp_degree GPUs holding one copy of the "
                    "model; got " +
                    std::to_string(pass.tp_degree));
  }
  // The weights, sharded over the group, must fit its GPUs' HBM; the KV cache lives in
  // the HBM they leave free.
  const std::uint64_t per_gpu = g.hbm.capacity().bytes;
  const std::uint64_t hbm = per_gpu * pass.tp_degree;
  if (model.weight_bytes() >= hbm) {
    const std::uint64_t need = model.weight_bytes() / per_gpu + 1;
    std::string fix = need <= node.gpus
                          ? "raise gpu_pass.tp_degree to at least " + std::to_string(need) +
                                " (a divisor of the instance's " + std::to_string(node.gpus) + " GPUs)"
                          : "the model needs " + std::to_string(need) +
                                " GPUs' HBM, more than one instance has: use a GPU with more HBM";
    pass_s.fail("tp_degree", "the model's weights (" + pretty_binary(Size{model.weight_bytes()}) +
                                 ") do not fit the HBM of tp_degree " + std::to_string(pass.tp_degree) +
                                 " GPU(s) (" + pretty_binary(Size{per_gpu}) + " each): " + fix);
  }
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  cfg.placement = serving::Placement::colocated;
  cfg.layers = model.layers;
  const unsigned instances = read_machine_count(sv, "instances", "GPU instances serving the trace");
  const unsigned groups = node.gpus / pass.tp_degree;
  cfg.prefill_instances = cfg.decode_systems = instances * groups;
  FaultSchedule faults = read_faults(root, nullptr, 0);
  apply_faults(faults, nullptr, cfg);
  cfg.decode_kv_capacity_bytes = hbm - model.weight_bytes();
  check_requests_fit(tr, model, in.requests, cfg.decode_kv_capacity_bytes,
                     "the HBM of a tensor-parallel group of GPUs after the weights",
                     "raise gpu_pass.tp_degree, use a GPU with more HBM or drop the request");
  const FleetPart fleet = read_fleet_part(root, "gpu_instance", instances);
  auto experiment = std::make_unique<GpuServing>(model, std::move(in.requests), cfg, instances, groups, g,
                                                 node, pass, info.trace);
  experiment->set_fault_schedule(std::move(faults));
  experiment->set_cost(RunCost{{fleet}});
  return experiment;
}

}  // namespace wse::experiments
