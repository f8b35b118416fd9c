#include "apps/experiments/machines.h"

#include "apps/experiments/floor_summary.h"
#include "apps/experiments/speculative.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <systemc>
#include <utility>

#include "workloads/model/operators.h"

namespace wse::experiments {

namespace {

// A prefill batch as the models take it: the chunks' token counts and context offsets.
std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>> chunk_lists(
    const std::vector<serving::PrefillChunk>& batch) {
  std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>> out;
  for (const auto& c : batch) {
    out.first.push_back(c.tokens);
    out.second.push_back(c.context_offset);
  }
  return out;
}

}  // namespace

TrainiumMachine::TrainiumMachine(neuron::TrainiumPrefill& runner, const workloads::TransformerModel& model,
                                 stats::Group& group, neuron::TrainiumPipeline* decode_split,
                                 const workloads::TransformerModel* draft)
    : runner_(runner),
      decode_split_(decode_split),
      model_(model),
      draft_(draft),
      tensor_(group.utilization("tensor_engine",
                                "tensor engines busy (array fraction weighted), mean over cores")),
      vector_(group.utilization("vector_engine", "vector engines busy, mean over cores")),
      dma_(group.utilization("sbuf_dma",
                             "DMA queues moving data between HBM and SBUF busy, mean over a core's queues "
                             "(SBUF is modelled as capacity; its traffic is these queues)")),
      hbm_(group.utilization("hbm", "HBM data bus busy, per chip")),
      link_(group.utilization("neuronlink", "NeuronLink links busy, mean over links")),
      runtime_(group.utilization("runtime",
                                 "runtime work of the passes: launch barrier, logits all-gather, "
                                 "on-device sampling, host overhead not hidden")),
      chip_runs_(group.counter("chip_simulations", "runs",
                               "chip programs simulated for this machine's batches (the rest reused)")) {
  for (neuron::CollectiveAlgorithm a : neuron::kCollectiveAlgorithms) {
    algorithms_.push_back(&group.utilization("collective_" + std::string(neuron::to_string(a)),
                                             "inter-chip collectives run with the " +
                                                 std::string(neuron::to_string(a)) +
                                                 " algorithm (chosen per message size): share of the time"));
  }
}

serving::PrefillTiming TrainiumMachine::prefill(const std::vector<serving::PrefillChunk>& batch) {
  const auto [tokens, offsets] = chunk_lists(batch);
  if (prefill_split_ != nullptr) {
    const neuron::PipelineResult p = prefill_split_->run_batch(model_, tokens, offsets);
    account(p);
    // The floor's ratio compares the batch's own pass through empty stages (with pp, the
    // wait for earlier batches is queueing, not the pass).
    prefill_floor_.add(p.floor, p.seconds());
    serving::PrefillTiming t;
    if (stage_free_ps_.size() <= 1) {  // context parallel
      t.seconds = p.seconds();
      for (const std::uint64_t ps : p.layer_end_ps) t.layer_done_s.push_back(static_cast<double>(ps) * 1e-12);
      return t;
    }
    // Pipeline stages: the batch's microbatches follow the earlier batches through the
    // stages (each stage takes its work in order); the machine takes the next batch once
    // this one has left stage 0. A layer's KV is ready when its stage ends the batch.
    const std::uint64_t now = sc_core::sc_time_stamp().value();  // ps (the default resolution)
    std::vector<std::uint64_t> free(stage_free_ps_.size(), 0);
    for (std::size_t s = 0; s < free.size(); ++s)
      free[s] = stage_free_ps_[s] > now ? stage_free_ps_[s] - now : 0;
    const std::vector<std::uint64_t> ends = neuron::pipeline_stage_ends(p.stage_ps, p.transfer_ps, free);
    for (std::size_t s = 0; s < ends.size(); ++s) stage_free_ps_[s] = now + ends[s];
    t.seconds = static_cast<double>(ends.back()) * 1e-12;
    t.next_batch_s = static_cast<double>(ends.front()) * 1e-12;
    const auto pp = static_cast<std::uint32_t>(ends.size());
    for (std::uint32_t l = 0; l < model_.layers; ++l)
      t.layer_done_s.push_back(static_cast<double>(ends[neuron::stage_of_layer(l, model_.layers, pp)]) *
                               1e-12);
    return t;
  }
  const neuron::PrefillResult r =
      runner_.run(workloads::lower_prefill(model_, tokens, offsets), model_.weight_bytes());
  account(r);
  prefill_floor_.add(r.floor, r.seconds());
  serving::PrefillTiming t;
  t.seconds = r.seconds();
  for (const auto& l : r.layers) {
    if (l.layer >= 0) t.layer_done_s.push_back(static_cast<double>(l.end_ps) * 1e-12);
  }
  if (draft_ != nullptr) {
    // Fused speculation: the draft's KV of the same chunks, a pass of its own after the
    // target's on the same chips (the target's layers are done when they were).
    const neuron::PrefillResult d = runner_.run(workloads::lower_prefill(*draft_, tokens, offsets),
                                                model_.weight_bytes() + draft_->weight_bytes());
    account(d);
    prefill_floor_.add(d.floor, d.seconds());
    t.seconds += d.seconds();
  }
  return t;
}

serving::SpeculativeTiming TrainiumMachine::speculative_step(const std::vector<std::uint32_t>& contexts,
                                                             std::uint32_t draft_tokens) {
  if (draft_ == nullptr || decode_split_ != nullptr)
    throw std::logic_error("TrainiumMachine: speculative_step needs a draft model and no decode split");
  // Fused with the target on the same chips: the draft's draft_tokens single-token steps,
  // one after another (step i caches contexts + i tokens: the last token and the i drafted
  // before it), then the target's verification of draft_tokens + 1 tokens per request.
  // Each pass is checked against HBM holding both models' weights.
  const std::uint64_t weights = model_.weight_bytes() + draft_->weight_bytes();
  const auto run = [&](const workloads::OperatorGraph& g) {
    const neuron::PrefillResult r = runner_.run(g, weights);
    account(r);
    decode_floor_.add(r.floor, r.seconds());
    return r.seconds();
  };
  return speculative_passes(
      contexts, draft_tokens,
      [&](const std::vector<std::uint64_t>& c) { return run(workloads::lower_decode(*draft_, c)); },
      [&](const std::vector<std::uint64_t>& c) {
        return run(workloads::lower_verify(model_, c, draft_tokens));
      });
}

double TrainiumMachine::step(const std::vector<std::uint32_t>& contexts) {
  std::vector<std::uint64_t> ctx(contexts.begin(), contexts.end());
  if (decode_split_ != nullptr) {
    const neuron::PipelineResult p = decode_split_->decode_step(model_, ctx);
    account(p);
    // A step that begins as the previous one ends keeps the pipeline full: it takes the
    // steady-state time per step; after an idle gap (or swap traffic ahead of the step)
    // the stages start empty and the step takes the fill (docs/neuroncore.md, "Decode
    // steps in flight"). The same with pp 1.
    const sc_core::sc_time now = sc_core::sc_time_stamp();
    const bool streaming = decode_floor_.passes > 0 && now == next_step_at_;
    const double t = streaming ? p.seconds() : static_cast<double>(p.fill_ps) * 1e-12;
    next_step_at_ = now + sc_core::sc_time(t, sc_core::SC_SEC);
    decode_floor_.add(p.floor, t);
    return t;
  }
  const neuron::PrefillResult r = runner_.run(workloads::lower_decode(model_, ctx), model_.weight_bytes());
  account(r);
  decode_floor_.add(r.floor, r.seconds());
  return r.seconds();
}

namespace {
// A pass's busy counts as energy work: its HBM busy time is per chip of `chips`.
template <class Busy>
Activity activity_of(const Busy& busy, double chips, double hbm_bytes_per_s, double link_bytes_per_s) {
  Activity a;
  a.flops = static_cast<double>(busy.flops);
  a.memory_bytes = busy.hbm_ps * 1e-12 * hbm_bytes_per_s * chips;
  a.link_bytes = busy.link_ps * 1e-12 * link_bytes_per_s;
  return a;
}
}  // namespace

Activity trainium_activity(const neuron::PrefillResult& r, double hbm_bytes_per_s, double link_bytes_per_s) {
  return activity_of(r.busy, r.chips, hbm_bytes_per_s, link_bytes_per_s);
}

Activity trainium_activity(const neuron::PipelineResult& r, double hbm_bytes_per_s, double link_bytes_per_s) {
  return activity_of(r.busy, r.chips_per_stage, hbm_bytes_per_s, link_bytes_per_s);
}

void TrainiumMachine::account(const neuron::PrefillResult& r) {
  tensor_.add_busy(r.tensor_utilization() * r.seconds());
  vector_.add_busy(r.vector_utilization() * r.seconds());
  dma_.add_busy(r.dma_utilization() * r.seconds());
  hbm_.add_busy(r.hbm_utilization() * r.seconds());
  link_.add_busy(r.link_utilization() * r.seconds());
  runtime_.add_busy(r.busy.runtime_ps * 1e-12);
  for (std::size_t i = 0; i < algorithms_.size(); ++i)
    algorithms_[i]->add_busy(r.busy.algorithm_ps[i] * 1e-12);
  chip_runs_.add(r.busy.chip_runs);
  activity_ += trainium_activity(r, runner_.hbm_bytes_per_s(), runner_.link_bytes_per_s());
}

void TrainiumMachine::account(const neuron::PipelineResult& r) {
  // Busy times summed over the stage groups' passes (every chunk, every replica); the
  // machine's figures are means over its pp x dp groups, as a pass's are over its cores.
  const double groups = static_cast<double>(r.chips) / std::max<std::uint32_t>(r.chips_per_stage, 1);
  const neuron::EngineBusy& b = r.busy;
  tensor_.add_busy(b.tensor_ps * 1e-12 / groups);
  vector_.add_busy(b.vector_ps * 1e-12 / groups);
  dma_.add_busy(b.dma_ps * 1e-12 / groups);
  hbm_.add_busy(b.hbm_ps * 1e-12 / groups);
  link_.add_busy(r.group_links == 0 ? 0.0 : b.link_ps * 1e-12 / r.group_links / groups);
  runtime_.add_busy(b.runtime_ps * 1e-12 / groups);
  for (std::size_t i = 0; i < algorithms_.size(); ++i)
    algorithms_[i]->add_busy(b.algorithm_ps[i] * 1e-12 / groups);
  chip_runs_.add(b.chip_runs);
  activity_ += trainium_activity(r, runner_.hbm_bytes_per_s(), runner_.link_bytes_per_s());
}

nlohmann::json trainium_summary(const std::vector<const TrainiumMachine*>& machines) {
  return nlohmann::json{{"floor", pass_floors(machines)}};
}

WaferMachine::WaferMachine(wafer::WaferDecoder& decoder, stats::Group& group, wafer::WaferDecoder* draft)
    : decoder_(decoder),
      draft_(draft),
      pe_(group.utilization("pe_compute", "PE compute engines busy, mean over the wafers' PEs")),
      sram_(group.utilization("sram_ports", "PE SRAM read and write ports busy, mean over the wafers' PEs")),
      fabric_(
          group.utilization("fabric_links", "router-to-router link directions busy, mean over the wafers")),
      link_(group.utilization("pipeline_link", "activation links between the wafers of the pipeline busy")),
      weight_bytes_(group.counter("weight_bytes_read", "B", "weight bytes read from PE SRAM")),
      kv_bytes_(group.counter("kv_bytes_read", "B", "KV-cache bytes read from PE SRAM")) {}

serving::PrefillTiming WaferMachine::prefill(const std::vector<serving::PrefillChunk>& batch) {
  const auto [tokens, offsets] = chunk_lists(batch);
  const wafer::WaferRunResult r = decoder_.prefill(tokens, offsets);
  account(r);
  prefill_floor_ += r.floor;
  ++prefills_;
  prefill_s_ += r.seconds;
  serving::PrefillTiming t;
  t.seconds = r.seconds;
  t.layer_done_s = r.layer_done_s;
  if (draft_ != nullptr) {
    // The draft's KV of the same chunks, on its own rows after the target's pass.
    const wafer::WaferRunResult d = draft_->prefill(tokens, offsets);
    account(d);
    prefill_floor_ += d.floor;
    prefill_s_ += d.seconds;
    t.seconds += d.seconds;
  }
  return t;
}

serving::SpeculativeTiming WaferMachine::speculative_step(const std::vector<std::uint32_t>& contexts,
                                                          std::uint32_t draft_tokens) {
  if (draft_ == nullptr) throw std::logic_error("WaferMachine: speculative_step needs a draft model");
  // The draft's draft_tokens decode steps on its rows (step i caches contexts + i tokens),
  // then the target's verification: draft_tokens + 1 tokens per request at its context,
  // each through the LM head (on the wafer, the pieces of decode.prefill_chunk_tokens
  // pipelined through the layer regions as a prefill chunk's are).
  const auto run = [&](const wafer::WaferRunResult& r) {
    account(r);
    decode_floor_ += r.floor;
    ++steps_;
    decode_s_ += r.seconds;
    return r.seconds;
  };
  return speculative_passes(
      contexts, draft_tokens,
      [&](const std::vector<std::uint64_t>& c) { return run(draft_->decode_step(c)); },
      [&](const std::vector<std::uint64_t>& c) {
        std::vector<workloads::Sequence> verify;
        for (std::uint64_t x : c) verify.push_back({std::uint64_t{draft_tokens} + 1, x, true, true});
        return run(decoder_.forward(verify));
      });
}

double WaferMachine::step(const std::vector<std::uint32_t>& contexts) {
  std::vector<std::uint64_t> ctx(contexts.begin(), contexts.end());
  const wafer::WaferRunResult r = decoder_.decode_step(ctx);
  account(r);
  decode_floor_ += r.floor;
  ++steps_;
  decode_s_ += r.seconds;
  return r.seconds;
}

void WaferMachine::account(const wafer::WaferRunResult& r) {
  pe_.add_busy(r.pe_busy * r.seconds);
  sram_.add_busy(r.sram_port_busy * r.seconds);
  fabric_.add_busy(r.fabric_link_busy * r.seconds);
  link_.add_busy(r.link_busy * r.seconds);
  weight_bytes_.add(r.weight_bytes_read);
  kv_bytes_.add(r.kv_bytes_read);
  activity_.flops += static_cast<double>(r.flops);
  activity_.memory_bytes += static_cast<double>(r.sram_read_bytes + r.sram_write_bytes);
  activity_.link_bytes += static_cast<double>(r.link_bytes);
  // A wavelet is 32 bits.
  activity_.fabric_bytes += static_cast<double>(r.fabric_wavelet_hops) * 4.0;
  for (const auto& [k, s] : r.kernel_seconds) kernel_s_[k] += s;
}

}  // namespace wse::experiments
