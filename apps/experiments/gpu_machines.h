// The GPU machines of the serving modes, as the serving layer sees them: a tensor-parallel
// group of GPUs holding one copy of the model (GpuMachine: serving::PrefillBackend and
// serving::DecodeBackend, its passes run on gpu/transformer/pass.h), the groups of a pool
// of GPU instances (GpuMachines, an sc_module whose statistics are the groups'), and the
// GPU side of an experiment YAML read and checked (read_gpu_side). Used by gpu_only,
// trainium_prefill_gpu_decode and gpu_prefill_cs3_decode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/energy.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"
#include "gpu/transformer/pass.h"
#include "systemc_models/config/config.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/backends.h"

namespace wse::experiments {

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
  // The group's work over the run (all its GPUs): the energy model's counts.
  const Activity& activity() const { return activity_; }

 private:
  void account(const gpu::GpuPassResult& r, Floors& f) {
    const double gpus = runner_.tp_degree();
    activity_.flops += r.busy.flops * gpus;
    activity_.memory_bytes += static_cast<double>(r.busy.hbm_bytes) * gpus;
    activity_.link_bytes += static_cast<double>(r.busy.nvlink_bytes) * gpus;
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
  Activity activity_;
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
  nlohmann::json summary() const;
  // The work of all groups: the energy model's counts.
  Activity activity() const {
    Activity a;
    for (const auto& m : machines_) a += m->activity();
    return a;
  }

 private:
  stats::Group stats_;
  // One runner for all groups: identical groups share its caches of GEMM and attention times.
  gpu::GpuPass runner_;
  std::vector<std::unique_ptr<GpuMachine>> machines_;
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

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

GpuSide read_gpu_side(config::Section& root, const workloads::TransformerModel& model);

}  // namespace wse::experiments
