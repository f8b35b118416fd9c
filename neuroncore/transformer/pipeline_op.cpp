#include "neuroncore/transformer/pipeline_op.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "neuroncore/transformer/kernel_builders.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

std::uint32_t stage_of_layer(std::uint32_t layer, std::uint32_t layers, std::uint32_t pp) {
  const std::uint32_t base = layers / pp, longer = layers % pp;
  // The first `longer` stages hold base + 1 layers.
  const std::uint32_t split = longer * (base + 1);
  return layer < split ? layer / (base + 1) : longer + (layer - split) / std::max<std::uint32_t>(base, 1);
}

std::uint64_t pipeline_makespan(const std::vector<std::vector<std::uint64_t>>& stage_ps,
                                const std::vector<std::uint64_t>& transfer_ps) {
  if (stage_ps.empty()) return 0;
  const std::size_t stages = stage_ps.front().size();
  std::vector<std::uint64_t> stage_free(stages, 0);  // end[c - 1][s]
  std::uint64_t end = 0;
  for (std::size_t c = 0; c < stage_ps.size(); ++c) {
    std::uint64_t ready = 0;  // end[c][s - 1] + transfer (none before stage 0)
    for (std::size_t s = 0; s < stages; ++s) {
      const std::uint64_t start = std::max(ready, stage_free[s]);
      end = start + stage_ps[c][s];
      stage_free[s] = end;
      ready = end + transfer_ps[c];
    }
  }
  return end;
}

double PipelineResult::prompts_per_s() const {
  return bottleneck_ps == 0 ? 0.0 : static_cast<double>(replicas) / (static_cast<double>(bottleneck_ps) * 1e-12);
}

namespace {

InstanceConfig neighbour_pair(const InstanceConfig& instance) {
  InstanceConfig p = instance;
  p.chips_x = 2;
  p.chips_y = 1;
  if (!algorithm_applies(p, p.algorithm)) p.algorithm = CollectiveAlgorithm::kAuto;
  return p;
}

std::string chips_text(std::uint32_t n) { return std::to_string(n) + (n == 1 ? " chip" : " chips"); }

}  // namespace

TrainiumPipeline::TrainiumPipeline(const ChipConfig& chip, const InstanceConfig& instance,
                                   const PrefillConfig& prefill, std::uint32_t pp, std::uint32_t dp,
                                   std::uint32_t microbatches)
    : chip_(chip),
      instance_(instance),
      pair_(neighbour_pair(instance)),
      stage_(chip, instance, prefill),
      pp_(pp),
      dp_(dp),
      microbatches_(microbatches) {
  if (pp == 0 || dp == 0 || microbatches == 0) {
    throw std::invalid_argument("parallelism: pp, dp and microbatches must be >= 1");
  }
  const std::uint32_t cores = prefill.physical_cores();
  if (pp > 1 && cores % chip.cores != 0) {
    throw std::invalid_argument("parallelism: a pipeline stage of tp " + std::to_string(prefill.tp_degree) + " x lnc " +
                                std::to_string(prefill.lnc) + " = " + std::to_string(cores) +
                                " cores is not a whole number of " + std::to_string(chip.cores) +
                                "-core chips; raise tp so that each stage has chips of its own");
  }
  chips_per_stage_ = stage_.chips();
  const std::uint32_t need = chips_per_stage_ * pp * dp;
  if (need > instance.chips()) {
    throw std::invalid_argument("parallelism: tp " + std::to_string(prefill.tp_degree) + " x lnc " +
                                std::to_string(prefill.lnc) + " (" + chips_text(chips_per_stage_) + ") x pp " +
                                std::to_string(pp) + " x dp " + std::to_string(dp) + " needs " + chips_text(need) +
                                " but the instance has " + std::to_string(instance.chips()) + " (" +
                                chips_text(need - instance.chips()) + " short)");
  }
}

HbmFootprint TrainiumPipeline::stage_footprint(const workloads::TransformerModel& m,
                                               std::uint64_t prompt_tokens) const {
  const workloads::OperatorGraph g = workloads::lower_prefill(m, {prompt_tokens});
  std::vector<HbmFootprint> stages(pp_);
  const auto layers = std::max<std::uint32_t>(m.layers, 1);
  bool after = false;  // past the decoder layers: the final norm and the LM head
  std::uint64_t act = 0;
  for (const workloads::Operator& op : g.ops) {
    if (op.layer >= 0) after = true;
    const std::uint32_t s = op.layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(op.layer), layers, pp_)
                            : after   ? pp_ - 1
                                      : 0;
    stages[s].weight_bytes += op.weight_bytes;
    stages[s].kv_bytes += op.kv_write_bytes + op.kv_read_bytes;
    act = std::max(act, op.input_bytes + op.output_bytes);
  }
  HbmFootprint worst;
  for (HbmFootprint& f : stages) {
    f.weight_bytes = ceil_div(f.weight_bytes, chips_per_stage_);
    f.kv_bytes = ceil_div(f.kv_bytes, chips_per_stage_);
    f.activation_bytes = ceil_div(act, chips_per_stage_);
    if (f.total() > worst.total()) worst = f;
  }
  return worst;
}

PipelineResult TrainiumPipeline::run(const workloads::TransformerModel& m, std::uint64_t prompt_tokens) {
  const HbmFootprint f = stage_footprint(m, prompt_tokens);
  const std::uint64_t have = chip_.hbm.capacity().bytes;
  if (f.total() > have) {
    throw CapacityError("HBM capacity exceeded: a pipeline stage of " + chips_text(chips_per_stage_) + " holds per chip " +
                        binary(f.weight_bytes) + " of weights + " + binary(f.kv_bytes) + " of KV cache + " +
                        binary(f.activation_bytes) + " of activations but a chip's HBM holds " + binary(have) + " (" +
                        binary(f.total() - have) + " over); raise pp or tp");
  }
  PipelineResult r;
  r.chips_per_stage = chips_per_stage_;
  r.chips = chips_per_stage_ * pp_ * dp_;
  r.replicas = dp_;
  const auto layers = std::max<std::uint32_t>(m.layers, 1);
  const std::uint64_t chunks = std::min<std::uint64_t>(microbatches_, std::max<std::uint64_t>(prompt_tokens, 1));
  const std::uint64_t q = prompt_tokens / chunks, longer = prompt_tokens % chunks;
  std::uint64_t offset = 0;
  for (std::uint64_t c = 0; c < chunks; ++c) {
    const std::uint64_t tokens = q + (c < longer ? 1 : 0);
    const workloads::OperatorGraph g = workloads::lower_prefill(m, {tokens}, {offset}, {prompt_tokens});
    const PrefillResult p = stage_.run(g);
    std::vector<std::uint64_t> stage(pp_, 0);
    bool after = false;
    std::uint64_t boundary_bytes = 0;  // the activations leaving a decoder layer
    for (const LayerTime& lt : p.layers) {
      if (lt.layer >= 0) after = true;
      const std::uint32_t s = lt.layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(lt.layer), layers, pp_)
                              : after     ? pp_ - 1
                                          : 0;
      stage[s] += lt.end_ps - lt.start_ps;
    }
    for (const workloads::Operator& op : g.ops) {
      if (op.layer == 0) boundary_bytes = op.output_bytes;  // the layer's last operator: its output
    }
    std::uint64_t transfer = 0;
    if (pp_ > 1) {
      // A stage's last chip sends the chunk's activations to the next stage's first chip, a
      // neighbour: the two-chip exchange of the NeuronLink model, each chip sending the
      // chunk's bytes (the send uses one direction of it).
      transfer = run_collective(pair_, Collective::kAllGather, 2 * boundary_bytes).time_ps;
    }
    r.stage_ps.push_back(std::move(stage));
    r.transfer_ps.push_back(transfer);
    offset += tokens;
  }
  r.total_ps = pipeline_makespan(r.stage_ps, r.transfer_ps);
  for (std::uint32_t s = 0; s < pp_; ++s) {
    std::uint64_t busy = 0;
    for (const auto& c : r.stage_ps) busy += c[s];
    r.bottleneck_ps = std::max(r.bottleneck_ps, busy);
  }
  return r;
}

}  // namespace wse::neuron
