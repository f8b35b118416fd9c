#include "neuroncore/transformer/prefill.h"

#include <algorithm>
#include <string>
#include <utility>

#include "neuroncore/transformer/attention_op.h"
#include "neuroncore/transformer/decode_attention_op.h"
#include "neuroncore/transformer/elementwise_op.h"
#include "neuroncore/transformer/gemm_op.h"
#include "neuroncore/transformer/kernel_builders.h"
#include "neuroncore/transformer/runtime_op.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

TrainiumPrefill::TrainiumPrefill(const ChipConfig& chip, const InstanceConfig& instance,
                                 const PrefillConfig& prefill)
    : ctx_(chip, instance, prefill) {}

HbmFootprint TrainiumPrefill::check_capacity(const workloads::OperatorGraph& g,
                                             std::uint64_t model_weight_bytes) const {
  HbmFootprint f;
  const std::uint64_t weights = model_weight_bytes != 0 ? model_weight_bytes : g.total_weight_bytes();
  f.weight_bytes = ceil_div(weights, ctx_.chips());
  f.kv_bytes = ceil_div(g.total_kv_write_bytes() + g.total_kv_read_bytes(), ctx_.chips());
  std::uint64_t act = 0;
  for (const Operator& op : g.ops) act = std::max(act, op.input_bytes + op.output_bytes);
  f.activation_bytes = ceil_div(act, ctx_.chips());
  const std::uint64_t have = ctx_.chip().hbm.capacity().bytes;
  if (f.total() > have) {
    throw CapacityError("HBM capacity exceeded: TP " + std::to_string(ctx_.cfg().tp_degree) + " x LNC " +
                        std::to_string(ctx_.cfg().lnc) + " = " + std::to_string(ctx_.cfg().physical_cores()) +
                        " cores on " + std::to_string(ctx_.chips()) + " chip(s); per chip weights " +
                        binary(f.weight_bytes) + " + KV cache " + binary(f.kv_bytes) + " + activations " +
                        binary(f.activation_bytes) + " = " + binary(f.total()) + " but a chip's HBM holds " +
                        binary(have) + " (" + binary(f.total() - have) + " over)");
  }
  return f;
}

EngineBusy TrainiumPrefill::run_operator(const Operator& op) {
  const auto simulate = [&] {
    switch (op.kind) {
      case OpKind::gemm:
        return GemmMapping(ctx_).run(op);
      case OpKind::attention:
        return ctx_.cfg().token_grain == 0 ? AttentionMapping(ctx_).run(op)
                                           : AttentionMapping(ctx_).run_sampled(op);
      case OpKind::embedding:
      case OpKind::norm:
      case OpKind::rope:
      case OpKind::activation:
      case OpKind::router:
      case OpKind::expert_combine:
      case OpKind::residual_add:
        break;
    }
    return ctx_.cfg().token_grain == 0 ? ElementwiseMapping(ctx_).run(op)
                                       : ElementwiseMapping(ctx_).run_sampled(op);
  };
  return ctx_.cached(ctx_.cfg().reuse ? operator_key(op) : std::string(), simulate, true);
}

PrefillResult TrainiumPrefill::run(const workloads::OperatorGraph& g, std::uint64_t model_weight_bytes) {
  check_capacity(g, model_weight_bytes);
  return run_unchecked(g);
}

PrefillResult TrainiumPrefill::run_unchecked(const workloads::OperatorGraph& g) {
  PrefillResult r;
  r.physical_cores = ctx_.cfg().physical_cores();
  r.chips = ctx_.chips();
  r.links = ctx_.chips() > 1 ? ctx_.group().chips() * ctx_.group().links_per_chip() : 0;
  std::uint64_t graph_tokens = 0;
  for (const workloads::Sequence& q : g.sequences) graph_tokens += q.new_tokens;
  ctx_.start_pass(graph_tokens);
  // A runtime part of the timeline (before or after the layers), when it has operators.
  const auto add_runtime = [&r](LayerTime part) {
    if (part.operators.empty()) return;
    for (const OperatorTime& ot : part.operators) r.busy += ot.busy;
    r.total_ps = part.end_ps;
    r.layers.push_back(std::move(part));
  };
  if (ctx_.cfg().runtime) add_runtime(RuntimeMapping(ctx_).before(0));
  std::size_t i = 0;
  std::size_t prev_i = 0, prev_j = 0;  // the previous part's operators
  while (i < g.ops.size()) {
    // One part of the timeline: a decoder layer, or a run of operators outside the layers.
    const std::int32_t layer = g.ops[i].layer;
    std::size_t j = i;
    while (j < g.ops.size() && g.ops[j].layer == layer) ++j;
    LayerTime lt;
    lt.layer = layer;
    lt.start_ps = r.total_ps;
    std::string key;
    EngineBusy part;
    bool cached = false;
    // A layer whose operators equal the previous layer's but for their layer index (most
    // layers of a dense model): its key is the previous layer's, which is in the cache
    // now, so take the previous layer's times without building the key.
    if (ctx_.cfg().reuse && layer >= 0 && !r.layers.empty() && r.layers.back().layer >= 0 &&
        j - i == prev_j - prev_i &&
        std::equal(g.ops.begin() + static_cast<std::ptrdiff_t>(i),
                   g.ops.begin() + static_cast<std::ptrdiff_t>(j),
                   g.ops.begin() + static_cast<std::ptrdiff_t>(prev_i), same_but_layer)) {
      lt.operators = r.layers.back().operators;
      for (const OperatorTime& ot : lt.operators) part += ot.busy;
      part.instructions = 0;
      part.chip_runs = 0;
      cached = true;
      ++r.reused_layers;
    } else if (ctx_.cfg().reuse && layer >= 0) {
      // A run of decode attentions enters the key as its batch key (sorted lengths): a
      // layer whose sequences are a permutation of an earlier one's is the same layer.
      for (std::size_t o = i; o < j;) {
        std::size_t e = o + 1;
        if (is_decode_attention(g.ops[o])) {
          while (e < j && same_decode_batch(g.ops[o], g.ops[e])) ++e;
          key += decode_attention_key({g.ops.begin() + static_cast<std::ptrdiff_t>(o),
                                       g.ops.begin() + static_cast<std::ptrdiff_t>(e)});
        } else {
          key += operator_key(g.ops[o]);
        }
        key += ';';
        o = e;
      }
      if (auto it = layer_cache_.find(key); it != layer_cache_.end()) {
        for (const OperatorTime& ot : it->second) part += ot.busy;
        part.instructions = 0;
        part.chip_runs = 0;
        lt.operators = it->second;
        cached = true;
        ++r.reused_layers;
      }
    }
    if (!cached) {
      const std::vector<Operator> ops =
          ctx_.cfg().fuse_projections ? workloads::fuse_projections(g.ops, i, j)
                                      : std::vector<Operator>(g.ops.begin() + static_cast<std::ptrdiff_t>(i),
                                                              g.ops.begin() + static_cast<std::ptrdiff_t>(j));
      for (std::size_t o = 0; o < ops.size();) {
        const Operator& op = ops[o];
        if (is_decode_attention(op)) {
          // The layer's consecutive decode attentions of the same shape: one kernel.
          std::size_t e = o + 1;
          while (e < ops.size() && same_decode_batch(op, ops[e])) ++e;
          const std::vector<Operator> batch(ops.begin() + static_cast<std::ptrdiff_t>(o),
                                            ops.begin() + static_cast<std::ptrdiff_t>(e));
          const EngineBusy b = DecodeAttentionMapping(ctx_).run_cached(batch);
          part += b;
          lt.operators.push_back(OperatorTime{op.name + " (decode x" + std::to_string(batch.size()) + ")",
                                              workloads::to_string(op.kind), b});
          o = e;
          continue;
        }
        if (const std::ptrdiff_t shard = OverlapMapping(ctx_).segment(ops, o); shard >= 0) {
          // A row-parallel GEMM with its all-reduce and the residual adds and norms after it
          // as one pipeline of token chunks.
          const auto count = static_cast<std::size_t>(shard);
          std::string name = op.name;
          std::string segment = "overlapped|" + operator_key(op);
          for (std::size_t x = 1; x <= count; ++x) {
            name += "+" + ops[o + x].name;
            segment += ';' + operator_key(ops[o + x]);
          }
          const EngineBusy b = ctx_.cached(
              ctx_.cfg().reuse ? segment : std::string(),
              [&] { return OverlapMapping(ctx_).run(ops, o, count); }, true);
          part += b;
          lt.operators.push_back(OperatorTime{name + " (overlapped)", workloads::to_string(op.kind), b});
          o += 1 + count;
          continue;
        }
        const EngineBusy b = run_operator(op);
        part += b;
        lt.operators.push_back(OperatorTime{op.name, workloads::to_string(op.kind), b});
        ++o;
      }
      if (ctx_.cfg().reuse && layer >= 0) layer_cache_.emplace(key, lt.operators);
    }
    r.busy += part;
    r.total_ps += part.elapsed_ps;
    lt.end_ps = r.total_ps;
    lt.reused = cached;
    r.layers.push_back(std::move(lt));
    prev_i = i;
    prev_j = j;
    i = j;
  }
  if (ctx_.cfg().runtime) add_runtime(RuntimeMapping(ctx_).after(g, r.total_ps, r.total_ps));
  r.reused_operators = ctx_.reused_operators();
  r.floor = floor_of(g, r.busy);
  return r;
}

TrainiumFloor TrainiumPrefill::floor_of(const workloads::OperatorGraph& g, const EngineBusy& busy) const {
  TrainiumFloor f;
  const TensorEngineConfig& te = ctx_.chip().core.tensor;
  double moving = te.moving_per_cycle(DType::kBf16);
  for (const Operator& op : g.ops) {
    if (op.kind == OpKind::gemm) moving = std::max(moving, te.moving_per_cycle(chip_dtype(op.weight_dtype)));
  }
  const double peak =
      static_cast<double>(ctx_.cfg().physical_cores()) * te.rows * te.columns * 2.0 * te.clock.hz * moving;
  f.compute_s = static_cast<double>(busy.flops) / peak;
  const double bytes =
      static_cast<double>(g.total_weight_bytes() + g.total_kv_read_bytes() + g.total_kv_write_bytes());
  f.hbm_s = bytes / ctx_.chips() / ctx_.chip().hbm.peak_bandwidth().bytes_per_s;
  f.collective_s = busy.collective_floor_ps * 1e-12;
  f.step_s = std::max({f.compute_s, f.hbm_s, f.collective_s});
  return f;
}

PrefillResult TrainiumPrefill::run(const workloads::TransformerModel& m,
                                   const std::vector<std::uint64_t>& prompt_tokens) {
  return run(workloads::lower_prefill(m, prompt_tokens), m.weight_bytes());
}

std::vector<OverlapChunk> TrainiumPrefill::overlap_pipeline(const std::vector<Operator>& ops,
                                                            std::size_t from) {
  return OverlapMapping(ctx_).pipeline(ops, from);
}

}  // namespace wse::neuron
