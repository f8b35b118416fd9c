#include "apps/experiments/gpu_machines.h"

#include "apps/experiments/floor_summary.h"

#include <algorithm>
#include <string>
#include <utility>

#include "systemc_models/units/units.h"

namespace wse::experiments {

GpuSide read_gpu_side(config::Section& root, const workloads::TransformerModel& model, bool multi_node,
                      bool stages) {
  GpuSide g;
  config::Section gpu_s = root.section("gpu", "one GPU (streaming multiprocessors, tensor cores, HBM)");
  g.gpu = gpu::read_gpu_config(gpu_s);
  config::Section node_s = root.section("gpu_instance", "the GPU instance (GPUs on an NVSwitch)");
  g.node = gpu::read_node_config(node_s);
  config::Section pass_s =
      root.section("gpu_pass", "how a model copy is sharded and run on the instance's GPUs", true);
  g.pass = gpu::read_pass_config(pass_s);
  const unsigned gpus = g.node.gpus, tp = g.pass.tp_degree, pp = g.pass.pp_degree;
  const std::string n_gpus = std::to_string(gpus);
  if (gpus % tp != 0 && (!multi_node || tp % gpus != 0)) {
    pass_s.fail("tp_degree",
                "must divide the instance's " + n_gpus +
                    " GPUs (gpu_instance.gpus), each group of tp_degree GPUs holding one copy of the "
                    "model" +
                    (multi_node ? ", or be a multiple of them (a group over several instances)" : "") +
                    "; got " + std::to_string(tp));
  }
  if (pp > 1 && !stages) {
    pass_s.fail("pp_degree",
                "pipeline stages run in mode gpu_only only (each engine a serving machine); "
                "use pp_degree 1, got " +
                    std::to_string(pp));
  }
  if (pp > 1 && gpus % tp != 0) {
    pass_s.fail("pp_degree", "a pipeline needs tp_degree to divide the instance's " + n_gpus +
                                 " GPUs (each stage's GPUs in one instance); got tp_degree " +
                                 std::to_string(tp) + ": use pp_degree 1");
  }
  if (pp > model.layers) {
    pass_s.fail("pp_degree", "more stages (" + std::to_string(pp) + ") than the model's " +
                                 std::to_string(model.layers) + " decoder layers");
  }
  const unsigned group = tp * pp;
  if (gpus % group != 0 && (!multi_node || group % gpus != 0)) {
    pass_s.fail(pp > 1 ? "pp_degree" : "tp_degree",
                "tp_degree x pp_degree = " + std::to_string(group) + " GPUs must divide the instance's " +
                    n_gpus + " GPUs" + (multi_node ? " or be a multiple of them (whole instances)" : "") +
                    (multi_node ? "" : ": a group over several instances runs in mode gpu_only only"));
  }
  // Each stage's weights: its layers', the embedding table with stage 0, the final norm and
  // LM head with the last (a tied LM head is a second copy of the table there).
  const std::uint64_t per_gpu = g.gpu.hbm.capacity().bytes;
  std::vector<std::uint64_t> stage_w(pp, 0);
  std::vector<std::uint32_t> stage_l(pp, 0);
  for (std::uint32_t l = 0; l < model.layers; ++l) {
    const std::uint32_t s = gpu::stage_of_layer(l, model.layers, pp);
    stage_w[s] += model.layer_weight_bytes(l);
    ++stage_l[s];
  }
  for (const workloads::WeightTensor& w : model.top_weights()) {
    if (w.role == workloads::WeightRole::embedding) {
      stage_w[0] += w.bytes();
      if (model.tied_embeddings && pp > 1) stage_w[pp - 1] += w.bytes();
    } else {
      stage_w[pp - 1] += w.bytes();
    }
  }
  if (pp == 1) stage_w[0] = model.weight_bytes();
  const std::uint64_t hbm = per_gpu * tp;
  for (std::uint32_t s = 0; s < pp; ++s) {
    if (stage_w[s] < hbm) continue;
    const std::uint64_t need = stage_w[s] / per_gpu + 1;
    std::string fix;
    if (pp > 1) {
      fix = "raise gpu_pass.pp_degree or tp_degree";
    } else if (need <= gpus) {
      fix = "raise gpu_pass.tp_degree to at least " + std::to_string(need) +
            " (a divisor of the instance's " + n_gpus + " GPUs)";
    } else if (multi_node) {
      fix = "the model needs " + std::to_string(need) + " GPUs' HBM, more than one instance has: raise " +
            std::string(stages ? "gpu_pass.pp_degree (stages on instances of their own) or " : "gpu_pass.") +
            "tp_degree to a multiple of the " + n_gpus + " GPUs, or use a GPU with more HBM";
    } else {
      fix = "the model needs " + std::to_string(need) +
            " GPUs' HBM, more than one instance has: use a GPU with more HBM";
    }
    const std::string what = pp > 1 ? "stage " + std::to_string(s) + "'s weights (" : "the model's weights (";
    pass_s.fail(pp > 1 ? "pp_degree" : "tp_degree",
                what + pretty_binary(Size{stage_w[s]}) + ") do not fit the HBM of tp_degree " +
                    std::to_string(tp) + " GPU(s) (" + pretty_binary(Size{per_gpu}) + " each): " + fix);
  }
  g.groups = group <= gpus ? gpus / group : 1;
  g.span = group <= gpus ? 1 : group / gpus;
  // The KV cache: what a stage's GPUs leave after its weights, over the model's layers as
  // over the stage's (spread evenly over the layers), the least of the stages; with more
  // GPUs than KV heads each head is held by tp / kv_heads GPUs.
  std::uint64_t kv = 0;
  for (std::uint32_t s = 0; s < pp; ++s) {
    const std::uint64_t free_b = hbm - stage_w[s];
    const std::uint64_t c = pp == 1 ? free_b
                                    : static_cast<std::uint64_t>(static_cast<double>(free_b) * model.layers /
                                                                 std::max(stage_l[s], 1u));
    kv = s == 0 ? c : std::min(kv, c);
  }
  const std::uint32_t kv_heads = std::max<std::uint32_t>(model.kv_heads, 1);
  if (tp > kv_heads) kv /= tp / kv_heads;
  g.kv_capacity_bytes = kv / pp;  // each of the pp engines holds its own batches' KV
  return g;
}

void check_gpu_draft_fits(const GpuSide& g, const workloads::TransformerModel& target,
                          const DraftModel& draft) {
  const unsigned tp = g.pass.tp_degree;
  if (g.pass.pp_degree > 1) {
    draft.section.fail("draft_model",
                       "speculative decoding on GPU groups with pipeline stages (gpu_pass.pp_degree " +
                           std::to_string(g.pass.pp_degree) +
                           ") is not modelled: the draft's passes would have to be scheduled through "
                           "the stages between the other engines' passes; use gpu_pass.pp_degree 1 or remove "
                           "serving.speculative");
  }
  const std::uint64_t per_gpu = g.gpu.hbm.capacity().bytes;
  const std::uint64_t hbm = per_gpu * tp;
  const std::uint64_t weights = target.weight_bytes() + draft.model.weight_bytes();
  if (weights >= hbm) {
    draft.section.fail("draft_model",
                       "the draft's weights (" + pretty_binary(Size{draft.model.weight_bytes()}) +
                           ") do not fit beside the target's (" + pretty_binary(Size{target.weight_bytes()}) +
                           ") in the HBM of tp_degree " + std::to_string(tp) + " GPU(s) (" +
                           pretty_binary(Size{hbm}) + "): " + std::to_string(weights - hbm) +
                           " B short, with no room left for the KV cache; raise gpu_pass.tp_degree or use a "
                           "smaller draft");
  }
}

std::uint64_t gpu_speculative_kv_room(const GpuSide& g, const workloads::TransformerModel& target,
                                      const DraftModel& draft, bool draft_kv_counted) {
  check_gpu_draft_fits(g, target, draft);
  const unsigned tp = g.pass.tp_degree;
  const std::uint64_t hbm = g.gpu.hbm.capacity().bytes * tp;
  const std::uint64_t weights = target.weight_bytes() + draft.model.weight_bytes();
  const auto replicas = [&](const workloads::TransformerModel& m) {
    const std::uint32_t kv_heads = std::max<std::uint32_t>(m.kv_heads, 1);
    return static_cast<double>(tp > kv_heads ? tp / kv_heads : 1);
  };
  const auto t = static_cast<double>(target.kv_bytes_per_token());
  const auto d = static_cast<double>(draft.model.kv_bytes_per_token());
  return kv_room(hbm - weights, t * replicas(target) + d * replicas(draft.model),
                 draft_kv_counted ? t + d : t);
}

nlohmann::json GpuMachines::summary() const {
  return nlohmann::json{{"floor", pass_floors(machines_)}, {"tp_groups", machines_.size()}};
}
}  // namespace wse::experiments
