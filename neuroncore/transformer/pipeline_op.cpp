#include "neuroncore/transformer/pipeline_op.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "neuroncore/transformer/kernel_builders.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

std::uint32_t stage_of_layer(std::uint32_t layer, std::uint32_t layers, std::uint32_t pp) {
  const std::uint32_t base = layers / pp, longer = layers % pp;
  // The first `longer` stages hold base + 1 layers.
  const std::uint32_t split = longer * (base + 1);
  return layer < split ? layer / (base + 1) : longer + (layer - split) / std::max<std::uint32_t>(base, 1);
}

std::vector<std::uint64_t> pipeline_stage_ends(const std::vector<std::vector<std::uint64_t>>& stage_ps,
                                               const std::vector<std::uint64_t>& transfer_ps,
                                               std::vector<std::uint64_t> stage_free_ps) {
  for (std::size_t c = 0; c < stage_ps.size(); ++c) {
    std::uint64_t ready = 0;  // end[c][s - 1] + transfer (none before stage 0)
    for (std::size_t s = 0; s < stage_free_ps.size(); ++s) {
      stage_free_ps[s] = std::max(ready, stage_free_ps[s]) + stage_ps[c][s];
      ready = stage_free_ps[s] + transfer_ps[c];
    }
  }
  return stage_free_ps;
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

DecodeSteps decode_steps(const std::vector<std::vector<std::uint64_t>>& stage_ps,
                         const std::vector<std::uint64_t>& transfer_ps,
                         const std::vector<std::uint64_t>& return_ps, bool drained) {
  DecodeSteps out;
  if (stage_ps.empty()) return out;
  const std::size_t groups = stage_ps.size(), stages = stage_ps.front().size();
  std::vector<std::uint64_t> stage_free(stages, 0);  // the end of the item before on each stage
  std::vector<std::uint64_t> token(groups, 0);       // end[n-1][g][S-1]
  std::uint64_t step_end = 0;                        // E[n-1]
  // The state after each step, relative to its end, and the step it was first seen at.
  std::map<std::vector<std::uint64_t>, std::pair<std::uint32_t, std::uint64_t>> seen;
  std::vector<std::uint64_t> ends;  // E[n]
  // A schedule of integer times through a strongly connected graph becomes periodic after
  // a finite transient; the bound only guards against a transient longer than any split
  // of an instance gives (then the mean over the second half of the steps).
  constexpr std::uint32_t kMaxSteps = 100'000;
  for (std::uint32_t n = 0; n < kMaxSteps; ++n) {
    const std::uint64_t barrier = drained ? step_end : 0;
    for (std::size_t g = 0; g < groups; ++g) {
      std::uint64_t ready = n == 0 ? 0 : std::max(token[g] + return_ps[g], barrier);
      for (std::size_t s = 0; s < stages; ++s) {
        const std::uint64_t end = std::max(ready, stage_free[s]) + stage_ps[g][s];
        stage_free[s] = end;
        ready = end + transfer_ps[g];
      }
      token[g] = stage_free[stages - 1];
    }
    step_end = stage_free[stages - 1];
    ends.push_back(step_end);
    if (n == 0) out.fill_ps = step_end;
    std::vector<std::uint64_t> state;
    state.reserve(stages + groups);
    for (std::uint64_t e : stage_free) state.push_back(step_end - e);
    for (std::uint64_t e : token) state.push_back(step_end - e);
    const auto [it, fresh] = seen.emplace(std::move(state), std::make_pair(n, step_end));
    if (!fresh) {
      const std::uint64_t k = n - it->second.first;
      out.step_ps = (step_end - it->second.second + k / 2) / k;
      out.steps_to_periodic = n + 1;
      return out;
    }
  }
  const std::size_t half = ends.size() / 2;
  const std::uint64_t k = ends.size() - 1 - half;
  out.step_ps = (ends.back() - ends[half] + k / 2) / k;
  out.steps_to_periodic = kMaxSteps;
  return out;
}

std::uint64_t ring_attention_exposed_ps(std::uint64_t attention_ps, std::uint64_t step_ps, std::uint32_t cp) {
  if (cp <= 1) return 0;
  const std::uint64_t a = attention_ps / cp;
  return (cp - 1) * (step_ps > a ? step_ps - a : 0);
}

double PipelineResult::prompts_per_s() const {
  return bottleneck_ps == 0 ? 0.0
                            : static_cast<double>(replicas) / (static_cast<double>(bottleneck_ps) * 1e-12);
}

namespace {

InstanceConfig neighbour_pair(const InstanceConfig& instance) {
  InstanceConfig p = instance;
  p.chips_x = 2;
  p.chips_y = 1;
  if (!algorithm_applies(p, p.algorithm)) p.algorithm = CollectiveAlgorithm::kAuto;
  return p;
}

// assumption: a sampled token id is an int32 (vocabularies of up to 2^31 entries; the
// Neuron samplers return int32 ids), so a group of n sequences returns 4 n bytes.
constexpr std::uint64_t kTokenIdBytes = 4;

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
      cp_(prefill.cp_degree),
      microbatches_(microbatches),
      schedule_(prefill.decode_schedule) {
  if (pp == 0 || dp == 0 || microbatches == 0 || cp_ == 0) {
    throw std::invalid_argument("parallelism: pp, dp, cp and microbatches must be >= 1");
  }
  const std::uint32_t cores = prefill.physical_cores();
  if (pp > 1 && cores % chip.cores != 0) {
    throw std::invalid_argument("parallelism: a pipeline stage of tp " + std::to_string(prefill.tp_degree) +
                                " x lnc " + std::to_string(prefill.lnc) + " = " + std::to_string(cores) +
                                " cores is not a whole number of " + std::to_string(chip.cores) +
                                "-core chips; raise tp so that each stage has chips of its own");
  }
  chips_per_stage_ = stage_.chips();
  const std::uint32_t need = chips_per_stage_ * pp * cp_ * dp;
  if (need > instance.chips()) {
    throw std::invalid_argument(
        "parallelism: tp " + std::to_string(prefill.tp_degree) + " x lnc " + std::to_string(prefill.lnc) +
        " (" + chips_text(chips_per_stage_) + ") x pp " + std::to_string(pp) +
        (cp_ > 1 ? " x cp_degree " + std::to_string(cp_) : "") + " x dp " + std::to_string(dp) + " needs " +
        chips_text(need) + " but the instance has " + std::to_string(instance.chips()) + " (" +
        chips_text(need - instance.chips()) + " short)");
  }
}

HbmFootprint TrainiumPipeline::stage_footprint(const workloads::TransformerModel& m,
                                               std::uint64_t prompt_tokens) const {
  // A context-parallel group holds all the weights (pp is 1) and its share of the tokens.
  if (cp_ > 1) prompt_tokens = ceil_div(prompt_tokens, cp_);
  const workloads::OperatorGraph g = workloads::lower_prefill(m, {prompt_tokens});
  std::vector<HbmFootprint> stages(pp_);
  const auto layers = std::max<std::uint32_t>(m.layers, 1);
  bool after = false;  // past the decoder layers: the final norm and the LM head
  std::uint64_t act = 0;
  for (const workloads::Operator& op : g.ops) {
    if (op.layer >= 0) after = true;
    const std::uint32_t s = op.layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(op.layer), layers, pp_)
                            : after       ? pp_ - 1
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
    throw CapacityError("HBM capacity exceeded: a pipeline stage of " + chips_text(chips_per_stage_) +
                        " holds per chip " + binary(f.weight_bytes) + " of weights + " + binary(f.kv_bytes) +
                        " of KV cache + " + binary(f.activation_bytes) +
                        " of activations but a chip's HBM holds " + binary(have) + " (" +
                        binary(f.total() - have) + " over); raise pp or tp");
  }
  if (cp_ > 1) {
    PipelineResult r = pp_ > 1 || microbatches_ > 1 ? run_context_parallel_stages(m, prompt_tokens)
                                                    : run_context_parallel(m, prompt_tokens);
    r.chips = chips();
    r.replicas = dp_;
    return r;
  }
  const std::uint64_t chunks =
      std::min<std::uint64_t>(microbatches_, std::max<std::uint64_t>(prompt_tokens, 1));
  const std::uint64_t q = prompt_tokens / chunks, longer = prompt_tokens % chunks;
  std::vector<workloads::OperatorGraph> graphs;
  std::uint64_t offset = 0;
  for (std::uint64_t c = 0; c < chunks; ++c) {
    const std::uint64_t tokens = q + (c < longer ? 1 : 0);
    graphs.push_back(workloads::lower_prefill(m, {tokens}, {offset}, {prompt_tokens}));
    offset += tokens;
  }
  PipelineResult r = run_chunks(m, graphs);
  r.chips = chips_per_stage_ * pp_ * dp_;
  r.replicas = dp_;
  return r;
}

PipelineResult TrainiumPipeline::decode_step(const workloads::TransformerModel& m,
                                             const std::vector<std::uint64_t>& contexts) {
  // Longest first, round robin over the replicas (ties by position: deterministic).
  std::vector<std::size_t> order(contexts.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return contexts[a] > contexts[b]; });
  std::vector<std::vector<std::uint64_t>> replica(dp_);
  for (std::size_t i = 0; i < order.size(); ++i) replica[i % dp_].push_back(contexts[order[i]]);
  PipelineResult worst;
  std::uint64_t fill = 0;  // the slowest replica's first step
  TrainiumFloor floor;
  EngineBusy busy;  // every replica's
  bool first = true;
  for (const std::vector<std::uint64_t>& seqs : replica) {
    if (seqs.empty()) continue;
    const std::size_t groups = std::min<std::size_t>(microbatches_, seqs.size());
    const std::size_t q = seqs.size() / groups, longer = seqs.size() % groups;
    std::vector<workloads::OperatorGraph> graphs;
    std::vector<std::uint64_t> returns;
    std::size_t at = 0;
    for (std::size_t c = 0; c < groups; ++c) {
      const std::size_t n = q + (c < longer ? 1 : 0);
      graphs.push_back(workloads::lower_decode(
          m, std::vector<std::uint64_t>(seqs.begin() + static_cast<std::ptrdiff_t>(at),
                                        seqs.begin() + static_cast<std::ptrdiff_t>(at + n))));
      at += n;
      // The group's sampled tokens go from the last stage's chips back to stage 0's, which
      // embed them for the next step: the two-chip exchange of the NeuronLink model, as an
      // activation crossing a boundary (the stages laid around a ring of the instance, the
      // last neighbouring the first).
      returns.push_back(pp_ > 1 ? run_collective(pair_, Collective::kAllGather, 2 * n * kTokenIdBytes).time_ps
                                : 0);
    }
    PipelineResult r = run_chunks(m, graphs);
    r.return_ps = std::move(returns);
    const DecodeSteps steps =
        decode_steps(r.stage_ps, r.transfer_ps, r.return_ps, schedule_ == DecodeSchedule::kDrained);
    r.fill_ps = steps.fill_ps;
    r.total_ps = steps.step_ps;
    floor.compute_s = std::max(floor.compute_s, r.floor.compute_s);
    floor.hbm_s = std::max(floor.hbm_s, r.floor.hbm_s);
    floor.collective_s = std::max(floor.collective_s, r.floor.collective_s);
    floor.step_s = std::max(floor.step_s, r.floor.step_s);
    busy += r.busy;
    fill = std::max(fill, r.fill_ps);
    if (first || r.total_ps > worst.total_ps) worst = std::move(r);
    first = false;
  }
  worst.floor = floor;
  worst.fill_ps = fill;
  worst.busy = busy;
  worst.chips = chips_per_stage_ * pp_ * dp_;
  worst.replicas = dp_;
  return worst;
}

TrainiumPipeline::DecodeCapacity TrainiumPipeline::decode_capacity(
    const workloads::TransformerModel& m) const {
  // The weights by stage, from a one-sequence decode graph; what the graph does not read
  // of the model's weights (the embedding table but the gathered row) goes with stage 0.
  const workloads::OperatorGraph g = workloads::lower_decode(m, {1});
  const auto layers = std::max<std::uint32_t>(m.layers, 1);
  std::vector<std::uint64_t> weights(pp_, 0);
  bool after = false;
  std::uint64_t counted = 0;
  for (const workloads::Operator& op : g.ops) {
    if (op.layer >= 0) after = true;
    if (op.kind == workloads::OpKind::embedding) continue;
    const std::uint32_t s = op.layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(op.layer), layers, pp_)
                            : after       ? pp_ - 1
                                          : 0;
    weights[s] += op.weight_bytes;
    counted += op.weight_bytes;
  }
  const std::uint64_t total = m.weight_bytes();
  weights[0] += total > counted ? total - counted : 0;
  std::vector<std::uint32_t> stage_layers(pp_, 0);
  for (std::uint32_t l = 0; l < layers; ++l) ++stage_layers[stage_of_layer(l, layers, pp_)];
  DecodeCapacity c;
  c.hbm_bytes_per_chip = chip_.hbm.capacity().bytes;
  c.replicas = dp_;
  const std::uint64_t stage_hbm = c.hbm_bytes_per_chip * chips_per_stage_;
  bool fits = true;
  std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
  for (std::uint32_t s = 0; s < pp_; ++s) {
    c.weight_bytes_per_chip = std::max(c.weight_bytes_per_chip, ceil_div(weights[s], chips_per_stage_));
    if (weights[s] >= stage_hbm || stage_layers[s] == 0) {
      fits = false;
      continue;
    }
    // The stage's room holds its layers' share of the KV cache: room x layers / its layers.
    const std::uint64_t room = stage_hbm - weights[s];
    const std::uint64_t kv =
        stage_layers[s] == layers
            ? room
            : static_cast<std::uint64_t>(static_cast<double>(room) * layers / stage_layers[s]);
    least = std::min(least, kv);
  }
  c.replica_kv_bytes = fits ? least : 0;
  return c;
}

PipelineResult TrainiumPipeline::run_chunks(const workloads::TransformerModel& m,
                                            const std::vector<workloads::OperatorGraph>& graphs) {
  PipelineResult r;
  r.chips_per_stage = chips_per_stage_;
  r.chips = chips_per_stage_ * pp_;
  r.replicas = 1;
  const auto layers = std::max<std::uint32_t>(m.layers, 1);
  // Per stage, over the chunks: the floor's terms (compute and collective in s; HBM bytes
  // of the KV cache, the weights counted once).
  std::vector<double> compute_s(pp_, 0.0), collective_s(pp_, 0.0);
  std::vector<std::uint64_t> weight_bytes(pp_, 0), kv_bytes(pp_, 0);
  TrainiumFloor only;                                   // one stage, one chunk: the pass's own floor
  std::set<std::pair<std::int32_t, std::string>> seen;  // operators whose weights are counted
  for (std::size_t c = 0; c < graphs.size(); ++c) {
    const workloads::OperatorGraph& g = graphs[c];
    // The stage's share of the weights and KV cache was checked by the caller.
    const PrefillResult p = stage_.run_unchecked(g);
    only = p.floor;
    r.busy += p.busy;
    r.group_links = p.links;
    std::vector<std::uint64_t> stage(pp_, 0);
    bool after = false;
    std::uint64_t boundary_bytes = 0;  // the activations leaving a decoder layer
    for (const LayerTime& lt : p.layers) {
      if (lt.layer >= 0) after = true;
      const std::uint32_t s = lt.layer >= 0
                                  ? stage_of_layer(static_cast<std::uint32_t>(lt.layer), layers, pp_)
                              : after ? pp_ - 1
                                      : 0;
      stage[s] += lt.end_ps - lt.start_ps;
      // The chunk's compute floor is its flops over the group's peak: each stage's share
      // in proportion to its flops.
      for (const OperatorTime& ot : lt.operators) {
        if (p.busy.flops > 0) {
          compute_s[s] +=
              p.floor.compute_s * static_cast<double>(ot.busy.flops) / static_cast<double>(p.busy.flops);
        }
        collective_s[s] += ot.busy.collective_floor_ps * 1e-12;
      }
    }
    after = false;
    for (const workloads::Operator& op : g.ops) {
      if (op.layer == 0) boundary_bytes = op.output_bytes;  // the layer's last operator: its output
      if (op.layer >= 0) after = true;
      const std::uint32_t s = op.layer >= 0
                                  ? stage_of_layer(static_cast<std::uint32_t>(op.layer), layers, pp_)
                              : after ? pp_ - 1
                                      : 0;
      // Weights once (the first chunk with the operator: only the last chunk of a prompt
      // has the LM head), but the embedding's weight bytes are the rows its tokens gather:
      // every chunk's.
      if (op.kind == workloads::OpKind::embedding || seen.emplace(op.layer, op.name).second) {
        weight_bytes[s] += op.weight_bytes;
      }
      kv_bytes[s] += op.kv_read_bytes + op.kv_write_bytes;
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
  }
  r.total_ps = pipeline_makespan(r.stage_ps, r.transfer_ps);
  for (std::uint32_t s = 0; s < pp_; ++s) {
    std::uint64_t busy = 0;
    for (const auto& c : r.stage_ps) busy += c[s];
    r.bottleneck_ps = std::max(r.bottleneck_ps, busy);
  }
  if (pp_ == 1 && graphs.size() == 1) {
    r.floor = only;  // the same terms, summed in the pass's own order
  } else {
    for (std::uint32_t s = 0; s < pp_; ++s) {
      r.floor.compute_s = std::max(r.floor.compute_s, compute_s[s]);
      r.floor.hbm_s = std::max(r.floor.hbm_s, static_cast<double>(weight_bytes[s] + kv_bytes[s]) /
                                                  chips_per_stage_ / stage_.hbm_bytes_per_s());
      r.floor.collective_s = std::max(r.floor.collective_s, collective_s[s]);
    }
    r.floor.step_s = std::max({r.floor.compute_s, r.floor.hbm_s, r.floor.collective_s});
  }
  return r;
}

PipelineResult TrainiumPipeline::run_context_parallel(const workloads::TransformerModel& m,
                                                      std::uint64_t prompt_tokens) {
  if (prompt_tokens < 2ull * cp_) {
    throw std::invalid_argument("parallelism: cp_degree " + std::to_string(cp_) + " deals " +
                                std::to_string(2 * cp_) + " pieces of the prompt but it has " +
                                std::to_string(prompt_tokens) + " tokens; lower cp_degree");
  }
  return context_parallel(m, {prompt_tokens}, {0}, {}).result;
}

PipelineResult TrainiumPipeline::run_context_parallel_stages(const workloads::TransformerModel& m,
                                                             std::uint64_t prompt_tokens) {
  // The prompt in microbatches chunks as run() cuts it; each chunk over the cp groups of
  // every stage (its own 2 cp pieces, the ring in every layer), its stage times and boundary
  // transfer from that pass; the chunks through the stages by the pipeline's recurrence.
  const std::uint64_t chunks =
      std::min<std::uint64_t>(microbatches_, std::max<std::uint64_t>(prompt_tokens, 1));
  const std::uint64_t q = prompt_tokens / chunks, longer = prompt_tokens % chunks;
  if (q < 2ull * cp_) {
    throw std::invalid_argument("parallelism: cp_degree " + std::to_string(cp_) + " deals " +
                                std::to_string(2 * cp_) + " pieces of each of " + std::to_string(chunks) +
                                " microbatches but the prompt's " + std::to_string(prompt_tokens) +
                                " tokens give " + std::to_string(q) +
                                " tokens to a microbatch; lower cp_degree or microbatches");
  }
  PipelineResult out;
  out.cp = cp_;
  out.chips_per_stage = chips_per_stage_;
  // The floor's parts per stage and group, summed over the chunks (the weights once: the
  // most any chunk reads).
  std::vector<std::vector<double>> compute(pp_, std::vector<double>(cp_, 0.0)),
      collective(pp_, std::vector<double>(cp_, 0.0));
  std::vector<std::vector<std::uint64_t>> weights(pp_, std::vector<std::uint64_t>(cp_, 0)),
      kv(pp_, std::vector<std::uint64_t>(cp_, 0));
  std::uint64_t offset = 0, exposed = 0;
  for (std::uint64_t c = 0; c < chunks; ++c) {
    const std::uint64_t tokens = q + (c < longer ? 1 : 0);
    CpChunk p = context_parallel(m, {tokens}, {offset}, {prompt_tokens});
    offset += tokens;
    out.stage_ps.push_back(p.result.stage_ps.front());
    out.transfer_ps.push_back(p.result.transfer_ps.front());
    out.rank_ps = p.result.rank_ps;  // the last chunk's
    out.ring_step_ps = std::max(out.ring_step_ps, p.result.ring_step_ps);
    exposed += p.result.ring_exposed_ps;
    out.busy += p.result.busy;
    out.group_links = p.result.group_links;
    for (std::uint32_t s = 0; s < pp_; ++s) {
      for (std::uint32_t r = 0; r < cp_; ++r) {
        compute[s][r] += p.compute_s[s][r];
        collective[s][r] += p.collective_s[s][r];
        weights[s][r] = std::max(weights[s][r], p.weight_bytes[s][r]);
        kv[s][r] += p.kv_bytes[s][r];
      }
    }
  }
  out.total_ps = pipeline_makespan(out.stage_ps, out.transfer_ps);
  out.ring_exposed_ps = exposed;
  for (std::uint32_t s = 0; s < pp_; ++s) {
    std::uint64_t busy = 0;
    for (const auto& c : out.stage_ps) busy += c[s];
    out.bottleneck_ps = std::max(out.bottleneck_ps, busy);
    for (std::uint32_t r = 0; r < cp_; ++r) {
      out.floor.compute_s = std::max(out.floor.compute_s, compute[s][r]);
      out.floor.collective_s = std::max(out.floor.collective_s, collective[s][r]);
      out.floor.hbm_s = std::max(out.floor.hbm_s, static_cast<double>(weights[s][r] + kv[s][r]) /
                                                      chips_per_stage_ / stage_.hbm_bytes_per_s());
    }
  }
  out.floor.step_s = std::max({out.floor.compute_s, out.floor.hbm_s, out.floor.collective_s});
  return out;
}

PipelineResult TrainiumPipeline::run_batch(const workloads::TransformerModel& m,
                                           const std::vector<std::uint64_t>& chunk_tokens,
                                           const std::vector<std::uint64_t>& offsets) {
  PipelineResult r;
  if (cp_ > 1) {
    if (pp_ > 1) throw std::invalid_argument("parallelism: a serving batch over cp groups with pp stages");
    r = context_parallel(m, chunk_tokens, offsets, {}).result;
  } else {
    // Each chunk in min(microbatches, its tokens) pieces as run() cuts a prompt (the first
    // ones one longer); microbatch k is the k-th piece of every chunk.
    std::vector<std::vector<std::uint64_t>> tokens(microbatches_), offset(microbatches_), ends(microbatches_);
    for (std::size_t c = 0; c < chunk_tokens.size(); ++c) {
      const std::uint64_t n =
          std::min<std::uint64_t>(microbatches_, std::max<std::uint64_t>(chunk_tokens[c], 1));
      const std::uint64_t q = chunk_tokens[c] / n, longer = chunk_tokens[c] % n;
      for (std::uint64_t k = 0, at = offsets[c]; k < n; ++k) {
        const std::uint64_t t = q + (k < longer ? 1 : 0);
        tokens[k].push_back(t);
        offset[k].push_back(at);
        ends[k].push_back(offsets[c] + chunk_tokens[c]);
        at += t;
      }
    }
    std::vector<workloads::OperatorGraph> graphs;
    for (std::uint32_t k = 0; k < microbatches_; ++k) {
      if (!tokens[k].empty()) graphs.push_back(workloads::lower_prefill(m, tokens[k], offset[k], ends[k]));
    }
    r = run_chunks(m, graphs);
  }
  r.chips = chips_per_stage_ * pp_ * cp_;  // one replica: a serving machine
  r.replicas = 1;
  return r;
}

TrainiumPipeline::CpChunk TrainiumPipeline::context_parallel(const workloads::TransformerModel& m,
                                                             const std::vector<std::uint64_t>& chunk_tokens,
                                                             const std::vector<std::uint64_t>& offsets,
                                                             const std::vector<std::uint64_t>& prompt_ends) {
  // Each chunk in 2 cp pieces, the first (its tokens mod 2 cp) one token longer; group r
  // takes pieces r and 2 cp - 1 - r of every chunk, so every group has an early and a late
  // piece (causal attention's work grows with a query's position: the pairs even it out).
  // A chunk of fewer than 2 cp tokens leaves some pieces empty.
  const std::uint64_t pieces = 2ull * cp_;
  // Per group: its pieces' tokens, offsets and the chunk ends (the piece that ends a chunk
  // produces its logits).
  std::vector<std::vector<std::uint64_t>> g_tokens(cp_), g_offsets(cp_), g_ends(cp_);
  std::vector<std::uint64_t> group_tokens(cp_, 0);
  for (std::size_t c = 0; c < chunk_tokens.size(); ++c) {
    const std::uint64_t q = chunk_tokens[c] / pieces, longer = chunk_tokens[c] % pieces;
    std::vector<std::uint64_t> tokens(pieces), offset(pieces);
    for (std::uint64_t i = 0, at = offsets[c]; i < pieces; ++i) {
      tokens[i] = q + (i < longer ? 1 : 0);
      offset[i] = at;
      at += tokens[i];
    }
    for (std::uint32_t r = 0; r < cp_; ++r) {
      for (const std::uint64_t i : {std::uint64_t{r}, pieces - 1 - r}) {
        if (tokens[i] == 0) continue;
        g_tokens[r].push_back(tokens[i]);
        g_offsets[r].push_back(offset[i]);
        g_ends[r].push_back(prompt_ends.empty() ? offsets[c] + chunk_tokens[c] : prompt_ends[c]);
        group_tokens[r] += tokens[i];
      }
    }
  }
  const auto layers = std::max<std::uint32_t>(m.layers, 1);
  // A ring step: every chip of a group sends its share of the group's KV block of one layer
  // to its counterpart in the next group, a neighbour (the groups laid around a ring of the
  // instance): the two-chip exchange of the NeuronLink model. The KV heads are spread over
  // the group's chips (a chip holds the KV of at least one head), so a chip's share is the
  // block over min(chips, KV heads). The steps carry the largest group's block.
  std::uint64_t block_tokens = 0;
  for (std::uint32_t r = 0; r < cp_; ++r) block_tokens = std::max(block_tokens, group_tokens[r]);
  const std::uint64_t holders =
      std::max<std::uint64_t>(1, std::min<std::uint64_t>(chips_per_stage_, m.kv_heads));
  const std::uint64_t block_bytes = ceil_div(block_tokens * m.kv_bytes_per_token_per_layer(), holders);
  CpChunk chunk;
  PipelineResult& out = chunk.result;
  out.cp = cp_;
  out.chips_per_stage = chips_per_stage_;
  out.ring_step_ps = run_collective(pair_, Collective::kAllGather, 2 * block_bytes).time_ps;
  chunk.compute_s.assign(pp_, std::vector<double>(cp_, 0.0));
  chunk.collective_s.assign(pp_, std::vector<double>(cp_, 0.0));
  chunk.weight_bytes.assign(pp_, std::vector<std::uint64_t>(cp_, 0));
  chunk.kv_bytes.assign(pp_, std::vector<std::uint64_t>(cp_, 0));
  std::uint64_t boundary_bytes = 0;  // the largest group's activations leaving a decoder layer
  // Per group: the time before the first decoder layer, each layer's time with the ring's
  // exposed part, and the time after the last.
  std::uint64_t before = 0, after = 0;
  std::vector<std::uint64_t> layer_ps(layers, 0), layer_alone_ps(layers, 0);
  for (std::uint32_t r = 0; r < cp_; ++r) {
    if (g_tokens[r].empty()) {
      out.rank_ps.push_back(0);
      continue;
    }
    const workloads::OperatorGraph g = workloads::lower_prefill(m, g_tokens[r], g_offsets[r], g_ends[r]);
    const PrefillResult p = stage_.run_unchecked(g);
    out.rank_ps.push_back(p.total_ps);
    out.busy += p.busy;
    out.group_links = p.links;
    out.floor.compute_s = std::max(out.floor.compute_s, p.floor.compute_s);
    out.floor.hbm_s = std::max(out.floor.hbm_s, p.floor.hbm_s);
    out.floor.collective_s = std::max(out.floor.collective_s, p.floor.collective_s);
    std::uint64_t pre = 0, post = 0;
    bool past = false;
    for (const LayerTime& lt : p.layers) {
      const std::uint64_t t = lt.end_ps - lt.start_ps;
      const std::uint32_t s = lt.layer >= 0
                                  ? stage_of_layer(static_cast<std::uint32_t>(lt.layer), layers, pp_)
                              : past ? pp_ - 1
                                     : 0;
      for (const OperatorTime& ot : lt.operators) {
        if (p.busy.flops > 0) {
          chunk.compute_s[s][r] +=
              p.floor.compute_s * static_cast<double>(ot.busy.flops) / static_cast<double>(p.busy.flops);
        }
        chunk.collective_s[s][r] += ot.busy.collective_floor_ps * 1e-12;
      }
      if (lt.layer < 0) {
        (past ? post : pre) += t;
        continue;
      }
      past = true;
      std::uint64_t attention = 0;
      for (const OperatorTime& ot : lt.operators) {
        if (ot.kind == workloads::to_string(workloads::OpKind::attention)) attention += ot.busy.elapsed_ps;
      }
      const auto l = static_cast<std::size_t>(lt.layer);
      // The groups meet at every layer (a ring step waits for the neighbour's block): each
      // layer ends with its slowest group.
      layer_ps[l] = std::max(layer_ps[l], t + ring_attention_exposed_ps(attention, out.ring_step_ps, cp_));
      layer_alone_ps[l] = std::max(layer_alone_ps[l], t);
    }
    before = std::max(before, pre);
    after = std::max(after, post);
    bool beyond = false;
    std::uint64_t leaving = 0;  // layer 0's last operator's output: the group's activations
    for (const workloads::Operator& op : g.ops) {
      if (op.layer == 0) leaving = op.output_bytes;
      if (op.layer >= 0) beyond = true;
      const std::uint32_t s = op.layer >= 0
                                  ? stage_of_layer(static_cast<std::uint32_t>(op.layer), layers, pp_)
                              : beyond ? pp_ - 1
                                       : 0;
      chunk.weight_bytes[s][r] += op.weight_bytes;
      chunk.kv_bytes[s][r] += op.kv_read_bytes + op.kv_write_bytes;
    }
    boundary_bytes = std::max(boundary_bytes, leaving);
  }
  std::uint64_t total = before, alone = before + after;
  std::vector<std::uint64_t> stage(pp_, 0);
  stage[0] += before;
  for (std::uint32_t l = 0; l < layers; ++l) {
    total += layer_ps[l];
    alone += layer_alone_ps[l];
    out.layer_end_ps.push_back(total);
    stage[stage_of_layer(l, layers, pp_)] += layer_ps[l];
  }
  total += after;
  stage[pp_ - 1] += after;
  out.total_ps = total;
  out.ring_exposed_ps = total - alone;
  out.stage_ps = {stage};
  // A stage's groups send their activations to the next stage's counterparts, neighbours:
  // the two-chip exchange of the largest group's (as a pipeline chunk's boundary).
  out.transfer_ps = {pp_ > 1 ? run_collective(pair_, Collective::kAllGather, 2 * boundary_bytes).time_ps : 0};
  out.bottleneck_ps = total;  // every group works on the prompt to its end
  out.floor.step_s = std::max({out.floor.compute_s, out.floor.hbm_s, out.floor.collective_s});
  return chunk;
}

}  // namespace wse::neuron
