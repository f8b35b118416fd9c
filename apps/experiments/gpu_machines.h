// The GPU machines of the serving modes, as the serving layer sees them: a tensor-parallel
// group of GPUs holding one copy of the model (GpuMachine: serving::PrefillBackend and
// serving::DecodeBackend, its passes run on gpu/transformer/pass.h), the groups of a pool
// of GPU instances (GpuMachines, an sc_module whose statistics are the groups'), and the
// GPU side of an experiment YAML read and checked (read_gpu_side). Used by gpu_only,
// trainium_prefill_gpu_decode and gpu_prefill_cs3_decode.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/energy.h"
#include "apps/experiments/speculative.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"
#include "gpu/transformer/pass.h"
#include "systemc_models/config/config.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/backends.h"

namespace wse::experiments {

// One group of GPUs holding one copy of the model (pp stages of tp GPUs): both phases run
// its operator graphs on the GPU model. With pipeline stages, the serving machines are
// the group's pp engines (GpuEngine), each with its own batches, sharing the stages: a
// pass takes each stage when the stage is free, first come first served (reserve()).
class GpuMachine : public serving::PrefillBackend, public serving::DecodeBackend {
 public:
  struct Floors {
    gpu::GpuFloor floor;
    std::uint64_t passes = 0;
    double simulated_s = 0.0;
  };

  // `draft`, when given, is a speculative-decoding draft model held beside the target by
  // the same GPUs (serving.speculative, docs/serving.md): its weights sharded over the
  // group's tensor-parallel GPUs as the target's, its passes run with the same split. It
  // makes its prompt KV by a prefill pass of its own after the target's, and its decode
  // steps run before the target's verification pass. One stage only (pp_degree 1).
  GpuMachine(gpu::GpuPass& runner, const workloads::TransformerModel& model, stats::Group& group,
             const workloads::TransformerModel* draft = nullptr)
      : runner_(runner),
        model_(model),
        draft_(draft),
        tensor_(group.utilization("tensor_cores",
                                  "tensor cores busy at their dense peak (matrix flops / peak), per GPU")),
        hbm_(group.utilization("hbm", "HBM data bus busy (bytes / streaming bandwidth), per GPU")),
        nvlink_(group.utilization("nvlink", "all-reduces of tensor parallelism on the NVSwitch")),
        efa_(runner.tp_nodes() > 1 || runner.pp_degree() > 1
                 ? &group.utilization("efa",
                                      "all-reduces' and stage transfers' phases between instances (EFA)")
                 : nullptr),
        launch_(group.utilization("kernel_launch", "between kernels (launch and drain)")),
        kernels_(group.counter("kernels", "kernels", "kernels run per GPU")) {
    if (draft_ != nullptr && runner.pp_degree() > 1)
      throw std::logic_error("GpuMachine: a draft model with pipeline stages is not modelled");
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
    t.layer_done_s = r.layer_done_s;
    t.seconds = reserve(r, &t.layer_done_s);
    if (draft_ != nullptr) {
      // The draft's KV of the same chunks, a pass of its own after the target's on the
      // same GPUs (the target's layers are done when they were).
      const gpu::GpuPassResult d = runner_.run(workloads::lower_prefill(*draft_, tokens, offsets));
      account(d, prefill_floor_);
      t.seconds += d.seconds;
    }
    return t;
  }

  double step(const std::vector<std::uint32_t>& contexts) override {
    const std::vector<std::uint64_t> ctx(contexts.begin(), contexts.end());
    const gpu::GpuPassResult r = runner_.run(workloads::lower_decode(model_, ctx));
    account(r, decode_floor_);
    return reserve(r, nullptr);
  }

  // The draft's draft_tokens decode steps, then the target's verification of
  // draft_tokens + 1 tokens per request (workloads::lower_verify: each weight read once
  // for the batch's requests x (draft_tokens + 1) rows, attention over each context and
  // the new tokens), each pass timed by the GPU model.
  serving::SpeculativeTiming speculative_step(const std::vector<std::uint32_t>& contexts,
                                              std::uint32_t draft_tokens) override {
    if (draft_ == nullptr) throw std::logic_error("GpuMachine: speculative_step needs a draft model");
    const auto run = [&](const workloads::OperatorGraph& g) {
      const gpu::GpuPassResult r = runner_.run(g);
      account(r, decode_floor_);
      return r.seconds;
    };
    return speculative_passes(
        contexts, draft_tokens,
        [&](const std::vector<std::uint64_t>& c) { return run(workloads::lower_decode(*draft_, c)); },
        [&](const std::vector<std::uint64_t>& c) {
          return run(workloads::lower_verify(model_, c, draft_tokens));
        });
  }

  const Floors& prefill_floor() const { return prefill_floor_; }
  const Floors& decode_floor() const { return decode_floor_; }
  // The group's work over the run (all its GPUs): the energy model's counts.
  const Activity& activity() const { return activity_; }

  // The time from now until a pass's end. One stage: the pass's time. Stages: stage s
  // starts when the previous stage has ended and the activations have crossed, and when
  // stage s has ended the passes reserved before (another engine's):
  //   start_s = max(end_{s-1} + transfer_{s-1}, free_s),  end_s = start_s + stage_s,
  //   free_s = end_s; the result is end_{pp-1} - now. Layer done times shift with their stage.
  double reserve(const gpu::GpuPassResult& r, std::vector<double>* layer_done) {
    if (r.stage_s.size() <= 1) return r.seconds;
    if (free_.size() != r.stage_s.size()) free_.assign(r.stage_s.size(), 0.0);
    const double now = sc_core::sc_time_stamp().to_seconds();
    double t = now, nominal = 0.0;
    std::vector<double> shift(r.stage_s.size(), 0.0);
    for (std::size_t s = 0; s < r.stage_s.size(); ++s) {
      if (s > 0) {
        t += r.transfer_s[s - 1];
        nominal += r.transfer_s[s - 1];
      }
      const double start = std::max(t, free_[s]);
      shift[s] = start - now - nominal;
      t = start + r.stage_s[s];
      free_[s] = t;
      nominal += r.stage_s[s];
    }
    if (layer_done != nullptr) {
      const auto layers = static_cast<std::uint32_t>(layer_done->size());
      for (std::uint32_t l = 0; l < layers; ++l) {
        (*layer_done)[l] += shift[gpu::stage_of_layer(l, layers, runner_.pp_degree())];
      }
    }
    return t - now;
  }

 private:
  void account(const gpu::GpuPassResult& r, Floors& f) {
    // r.busy is one GPU's per stage summed over the stages: the group's GPUs did tp x
    // that, one GPU on average 1 / pp of it. EFA bytes are charged as link bytes (the
    // reference's one SerDes energy figure covers NVLink-to-switch, NIC and EFA).
    const double gpus = runner_.tp_degree();
    const double pp = runner_.pp_degree();
    activity_.flops += r.busy.flops * gpus;
    activity_.memory_bytes += static_cast<double>(r.busy.hbm_bytes) * gpus;
    activity_.link_bytes += static_cast<double>(r.busy.nvlink_bytes + r.busy.efa_bytes) * gpus;
    tensor_.add_busy(r.busy.tensor_s / pp);
    hbm_.add_busy(r.busy.hbm_s / pp);
    nvlink_.add_busy(r.busy.nvlink_s / pp);
    if (efa_ != nullptr) efa_->add_busy(r.busy.efa_s / pp);
    launch_.add_busy(r.busy.launch_s / pp);
    for (std::size_t i = 0; i < algorithms_.size(); ++i) algorithms_[i]->add_busy(r.busy.algorithm_s[i] / pp);
    kernels_.add(r.busy.kernels);
    f.floor += r.floor;
    ++f.passes;
    f.simulated_s += r.seconds;
  }

  gpu::GpuPass& runner_;
  const workloads::TransformerModel& model_;
  const workloads::TransformerModel* draft_ = nullptr;
  stats::Utilization& tensor_;
  stats::Utilization& hbm_;
  stats::Utilization& nvlink_;
  stats::Utilization* efa_;
  stats::Utilization& launch_;
  std::vector<stats::Utilization*> algorithms_;
  stats::Counter& kernels_;
  Floors prefill_floor_, decode_floor_;
  Activity activity_;
  std::vector<double> free_;  // per stage: when the passes reserved so far leave it
};

// One engine of a group with pipeline stages: a serving machine of its own (its own
// batches and 1/pp of the group's KV cache) whose passes run on the group's stages.
class GpuEngine : public serving::PrefillBackend, public serving::DecodeBackend {
 public:
  explicit GpuEngine(GpuMachine& group) : group_(group) {}
  serving::PrefillTiming prefill(const std::vector<serving::PrefillChunk>& batch) override {
    return group_.prefill(batch);
  }
  double step(const std::vector<std::uint32_t>& contexts) override { return group_.step(contexts); }

 private:
  GpuMachine& group_;
};

// The GPU groups of the experiment: `instances` nodes of `groups` groups each (a group of
// tp x pp GPUs within a node), or `instances` / `span` groups each over `span` nodes;
// `draft` (speculative decoding) held by every group beside the model.
class GpuMachines : public sc_core::sc_module, public stats::Provider {
 public:
  GpuMachines(const sc_core::sc_module_name& name, unsigned instances, unsigned groups,
              const gpu::GpuConfig& g, const gpu::NodeConfig& node, const gpu::PassConfig& pass,
              const workloads::TransformerModel& model, unsigned span = 1,
              const workloads::TransformerModel* draft = nullptr)
      : sc_module(name), stats_(std::string(basename())), runner_(g, node, pass) {
    const auto add = [&](const std::string& id) {
      machines_.push_back(std::make_unique<GpuMachine>(runner_, model, stats_.child(id), draft));
      if (pass.pp_degree == 1) {
        prefill_.push_back(machines_.back().get());
        decode_.push_back(machines_.back().get());
        return;
      }
      for (std::uint32_t e = 0; e < pass.pp_degree; ++e) {
        engines_.push_back(std::make_unique<GpuEngine>(*machines_.back()));
        prefill_.push_back(engines_.back().get());
        decode_.push_back(engines_.back().get());
      }
    };
    if (span > 1) {
      for (unsigned i = 0; i + span <= instances; i += span) {
        add("instances" + std::to_string(i) + "_" + std::to_string(i + span - 1));
      }
      return;
    }
    for (unsigned i = 0; i < instances; ++i) {
      for (unsigned k = 0; k < groups; ++k) {
        add("instance" + std::to_string(i) + (groups > 1 ? "_tp_group" + std::to_string(k) : std::string()));
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
  std::vector<std::unique_ptr<GpuEngine>> engines_;  // pp per group with pipeline stages
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

// The GPU side as the experiment YAML gives it (`gpu:`, `gpu_instance:`, `gpu_pass:`),
// checked: tp_degree divides the instance's GPUs or is a multiple of them, pp_degree with
// tp_degree dividing them, the group (tp x pp GPUs) within an instance or over whole
// instances, and each stage's weights sharded over its GPUs fit their HBM (the KV cache
// lives in the HBM they leave free).
struct GpuSide {
  gpu::GpuConfig gpu;
  gpu::NodeConfig node;
  gpu::PassConfig pass;
  unsigned groups = 1;  // groups (model copies) per instance; 1 when a group spans instances
  unsigned span = 1;    // instances one group spans (tp x pp / the instance's GPUs, at least 1)
  std::uint64_t kv_capacity_bytes = 0;  // per serving machine: a group's after the weights, / pp engines
};

// `multi_node`: whether the mode accepts a group over several instances (every GPU mode:
// tp_degree a multiple of the instance's GPUs, or with `stages` pipeline stages on
// instances of their own); `stages`: whether it accepts pp_degree > 1 (gpu_only only; the
// disaggregated modes refuse it at gpu_pass.pp_degree).
GpuSide read_gpu_side(config::Section& root, const workloads::TransformerModel& model,
                      bool multi_node = false, bool stages = false);

// Speculative decoding on the GPU groups of `g` (serving.speculative, docs/serving.md): the
// draft's weights sharded over a group's tp_degree GPUs beside the target's. An error at
// draft_model when the group has pipeline stages (pp_degree > 1) or when both models'
// weights do not fit its HBM.
void check_gpu_draft_fits(const GpuSide& g, const workloads::TransformerModel& target,
                          const DraftModel& draft);
// The same check, then the KV room of a group holding both models: the HBM they leave holds both models' KV,
// each replicated tp_degree / kv_heads times when the group has more GPUs than the model has KV heads (as
// read_gpu_side's room for the target's alone). Returns that room in the units admission
// counts per token: the target's KV (`draft_kv_counted` false: the group made the draft's
// prompt KV itself), or both models' (true: a disaggregated decode pool, which receives
// both; false gives the room a request's target KV may take, for check_requests_fit).
std::uint64_t gpu_speculative_kv_room(const GpuSide& g, const workloads::TransformerModel& target,
                                      const DraftModel& draft, bool draft_kv_counted);

}  // namespace wse::experiments
