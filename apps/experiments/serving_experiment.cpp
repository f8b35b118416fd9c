#include "apps/experiments/serving_experiment.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <systemc>

#include "apps/experiments/inputs.h"
#include "neuroncore/transformer/pipeline_op.h"
#include "systemc_models/sim/progress.h"
#include "workloads/serving/serving_report.h"

namespace wse::experiments {

TrainiumSide read_trainium_side(config::Section& root) {
  TrainiumSide t;
  config::Section trn = root.section("trainium", "the Trainium chip");
  t.chip = neuron::read_chip_config(trn);
  config::Section inst = root.section("instance", "the Trainium instance (chips on a NeuronLink torus)");
  t.instance = neuron::read_instance_config(inst);
  config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
  t.prefill = neuron::read_prefill_config(pre);
  // The tensor-parallel group must fit the instance (whole chips forming a sub-torus, or
  // any chips of a switch): bad input at prefill.tp_degree, not a failed run.
  try {
    const neuron::TrainiumPrefill group(t.chip, t.instance, t.prefill);
  } catch (const std::invalid_argument& e) {
    pre.fail("tp_degree", std::string(e.what()) +
                              "; lower prefill.tp_degree or prefill.lnc, or give the instance more chips");
  }
  // prefill.dp_degree replicas, each prefill.pp_degree stages or cp_degree groups of the
  // tensor-parallel group on chips of their own: each replica a serving machine of its own
  // (docs/neuroncore.md, "Prefill splits in the serving modes").
  const neuron::PrefillConfig& p = t.prefill;
  if (p.cp_degree > 1 && p.pp_degree > 1) {
    pre.fail("cp_degree",
             "is " + std::to_string(p.cp_degree) + " with pp_degree " + std::to_string(p.pp_degree) +
                 ": context parallelism within pipeline stages runs in mode trainium_prefill; the "
                 "serving modes take one of them: set cp_degree or pp_degree 1");
  }
  if (p.dp_degree != 1 || p.cp_degree != 1 || p.pp_degree != 1) {
    try {
      const neuron::TrainiumPipeline split(t.chip, t.instance, p, p.pp_degree, p.dp_degree, p.microbatches);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      const char* key = what.find("cp_degree " + std::to_string(p.cp_degree) + " with") != std::string::npos
                            ? "cp_degree"
                        : what.find("whole number") != std::string::npos ? "tp_degree"
                        : p.pp_degree > 1                                ? "pp_degree"
                        : p.cp_degree > 1                                ? "cp_degree"
                                                                         : "dp_degree";
      pre.fail(key, what + "; lower prefill.tp_degree, pp_degree, cp_degree or dp_degree");
    }
  }
  return t;
}

unsigned read_machine_count(config::Section& serving, std::string_view key, std::string_view doc) {
  return static_cast<unsigned>(serving.integer(key, {.doc = doc, .def = "1", .min = 1, .max = 4096}));
}

std::uint64_t prefill_group_hbm_bytes(const TrainiumSide& t) {
  const neuron::TrainiumPrefill group(t.chip, t.instance, t.prefill);
  return t.chip.hbm.capacity().bytes * group.chips();
}

void check_prefill_group_fits(config::Section& root, const TrainiumSide& t,
                              const workloads::TransformerModel& model, std::uint64_t batch_tokens,
                              bool colocated) {
  const neuron::PrefillConfig& p = t.prefill;
  if (p.dp_degree == 1 && p.cp_degree == 1 && p.pp_degree == 1) return;  // the instance's own check
  config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
  if (colocated && (p.cp_degree > 1 || p.pp_degree > 1)) {
    const char* key = p.pp_degree > 1 ? "pp_degree" : "cp_degree";
    pre.fail(key, "is " + std::to_string(p.pp_degree > 1 ? p.pp_degree : p.cp_degree) +
                      " but a colocated instance (mode trainium_only) decodes where it prefilled, on one "
                      "tensor-parallel group holding all the weights; pipeline stages and context-parallel "
                      "groups are modelled for prefill machines: use mode trainium_disaggregated (or "
                      "disaggregated), or set 1");
  }
  if (p.pp_degree > model.layers) {
    pre.fail("pp_degree", "is " + std::to_string(p.pp_degree) + " but the model has " +
                              std::to_string(model.layers) + " decoder layers to split into stages");
  }
  const char* key = p.cp_degree > 1 ? "cp_degree" : p.pp_degree > 1 ? "pp_degree" : "dp_degree";
  const std::uint64_t hbm = prefill_group_hbm_bytes(t);
  if (p.pp_degree == 1 && model.weight_bytes() >= hbm) {
    pre.fail(key, "is " + std::to_string(p.cp_degree > 1 ? p.cp_degree : p.dp_degree) + ": a group of tp " +
                      std::to_string(p.tp_degree) + " holds all the weights (" +
                      std::to_string(model.weight_bytes()) + " B) but its chips' HBM holds " +
                      std::to_string(hbm) + " B (" + std::to_string(model.weight_bytes() - hbm) +
                      " B short, and no room for the KV cache); lower " + key + " and raise tp_degree");
  }
  if (p.cp_degree > 1 || p.pp_degree > 1) {
    // A batch of serving.prefill_max_batch_tokens: per chip of the fullest stage (or of a
    // context-parallel group) its weights, its share of the batch's KV cache and the largest
    // operator's activations.
    const neuron::TrainiumPipeline split(t.chip, t.instance, p, p.pp_degree, p.dp_degree, p.microbatches);
    const neuron::HbmFootprint f = split.stage_footprint(model, batch_tokens);
    const std::uint64_t have = t.chip.hbm.capacity().bytes;
    if (f.total() > have) {
      pre.fail(key,
               std::string(p.cp_degree > 1 ? "a context-parallel group of tp " + std::to_string(p.tp_degree) +
                                                 " (cp " + std::to_string(p.cp_degree) + ", all the weights)"
                                           : "a stage of tp " + std::to_string(p.tp_degree) + " x pp " +
                                                 std::to_string(p.pp_degree)) +
                   " holds per chip " + std::to_string(f.weight_bytes) + " B of weights + " +
                   std::to_string(f.kv_bytes) + " B of KV cache of a batch of " +
                   std::to_string(batch_tokens) + " tokens + " + std::to_string(f.activation_bytes) +
                   " B of activations = " + std::to_string(f.total()) + " B but a chip's HBM holds " +
                   std::to_string(have) + " B (" + std::to_string(f.total() - have) + " B short); " +
                   (p.cp_degree > 1 ? "lower cp_degree" : "raise pp_degree or tp_degree") +
                   ", or lower serving.prefill_max_batch_tokens");
    }
  }
}

std::unique_ptr<neuron::TrainiumPipeline> make_prefill_split(const TrainiumSide& t) {
  const neuron::PrefillConfig& p = t.prefill;
  if (p.cp_degree == 1 && p.pp_degree == 1) return nullptr;
  return std::make_unique<neuron::TrainiumPipeline>(t.chip, t.instance, p, p.pp_degree, p.dp_degree,
                                                    p.microbatches);
}

std::string prefill_group_name(const std::string& base, unsigned machine, unsigned dp) {
  if (dp == 1) return base + std::to_string(machine);
  return base + std::to_string(machine / dp) + "_dp" + std::to_string(machine % dp);
}

std::string located_key(const config::Section& section, std::string_view key) {
  if (!section.has(key)) return section.key_path(key) + " (default)";
  return section.key_path(key) + " (" + section.source_of(key).where() + ")";
}

efa::EfaNetworkConfig read_serving_efa(config::Section& root, const DerivedCount& senders,
                                       const DerivedCount& receivers) {
  config::Section efa_s =
      root.section("efa", "the EFA network (senders: prefill machines, receivers: decode machines)");
  // The counts are the pools': derived, so a file need not type them twice; one that
  // does and disagrees is refused, naming both keys.
  efa::EfaNetworkConfig base;
  base.senders = senders.count;
  base.receivers = receivers.count;
  efa::EfaNetworkConfig efa = efa::read_efa_config(efa_s, base);
  const auto check = [&](std::string_view key, std::uint32_t typed, const DerivedCount& d) {
    if (typed == d.count) return;
    const std::string_view noun = d.count == 1 ? key.substr(0, key.size() - 1) : key;  // "1 sender"
    efa_s.fail(key, "is " + std::to_string(typed) + " but " + d.from + " gives " + std::to_string(d.count) +
                        " " + std::string(noun) + (d.why.empty() ? "" : " (" + d.why + ")") + "; leave efa." +
                        std::string(key) + " out (it is derived from them)");
  };
  check("senders", efa.senders, senders);
  check("receivers", efa.receivers, receivers);
  return efa;
}

void charge_kv_transfers(sim::MemoryBudget* memory, config::Section& serving,
                         const serving::ServingConfig& cfg, const efa::EfaNetworkConfig& efa,
                         std::uint64_t requests, unsigned parts) {
  if (!memory || requests == 0) return;
  const bool layerwise = cfg.kv_send == serving::KvSend::layerwise;
  const std::uint64_t per_msg = std::max<std::uint32_t>(1, cfg.kv_layers_per_message);
  const std::uint64_t messages =
      (layerwise ? (std::uint64_t{cfg.layers} + per_msg - 1) / per_msg : 1) + (parts > 1 ? parts - 1 : 0);
  const std::uint64_t per_request =
      messages * efa::SrdEngine::retained_bytes_per_message(efa.sender.adapters);
  memory->charge(serving, layerwise ? "kv_layers_per_message" : "kv_send",
                 sim::mul_sat(requests, per_request),
                 std::to_string(requests) + " requests x " + std::to_string(messages) + " EFA messages x " +
                     std::to_string(efa::SrdEngine::retained_bytes_per_message(efa.sender.adapters)) +
                     " B kept by the transport (a flow per sender adapter)",
                 "send more layers per message (serving.kv_layers_per_message), or fewer requests");
}

void check_requests_fit(const config::Section& trace, const workloads::TransformerModel& model,
                        const std::vector<workloads::Request>& requests, std::uint64_t capacity_bytes,
                        std::string_view machine, std::string_view fix) {
  for (const auto& r : requests) {
    // In 64 bits: two 32-bit counts near 2^32 would wrap to a small context that fits.
    const std::uint64_t tokens = std::uint64_t{r.input_tokens} + std::max<std::uint32_t>(1, r.output_tokens);
    const std::uint64_t need = model.kv_bytes(tokens);
    if (need > capacity_bytes) {
      // A generated trace has no file: the error names what generated the request.
      const std::string key = trace.has("path") ? "path" : r.in_session() ? "turns" : "input_tokens";
      const std::string what = r.in_session() ? "turn " + std::to_string(r.turn) + " of session " +
                                                    std::to_string(r.session) + ", request "
                                              : std::string("request ");
      trace.fail(key, what + std::to_string(r.id) + " (" + std::to_string(tokens) +
                          " tokens of context) needs more KV cache (" + std::to_string(need) + " B) than " +
                          std::string(machine) + " holds (" + std::to_string(capacity_bytes) + " B); " +
                          std::string(fix));
    }
  }
}

void check_reserved_sram(config::Section& wafer, config::Section& decode, std::uint64_t pe_sram_bytes,
                         std::uint64_t reserved_sram_bytes) {
  if (reserved_sram_bytes < pe_sram_bytes) return;
  config::Section pe = wafer.section("pe", "processing element: SRAM and SIMD widths", true);
  const auto from_set = [](const config::Source& s) { return s.file.rfind("--set", 0) == 0; };
  const std::string detail = "decode.reserved_sram (" + pretty_binary(Size{reserved_sram_bytes}) +
                             ") must be smaller than a PE's SRAM, wafer.pe.sram (" +
                             pretty_binary(Size{pe_sram_bytes}) + "); ";
  if (from_set(pe.source_of("sram")))
    pe.fail("sram", detail + "raise wafer.pe.sram or lower decode.reserved_sram");
  decode.fail("reserved_sram", detail + "lower decode.reserved_sram or raise wafer.pe.sram");
}

ServingExperiment::ServingExperiment(const workloads::TransformerModel& model,
                                     const serving::ServingConfig& cfg, FaultSchedule faults)
    : model_(model), cfg_(cfg), faults_(std::move(faults)) {
  cfg_.kv_bytes = [this](std::uint64_t n) { return model_.kv_bytes(n); };
}

void ServingExperiment::count_draft_kv(const workloads::TransformerModel& draft) {
  draft_kv_ = draft;
  cfg_.kv_bytes = [this](std::uint64_t n) { return model_.kv_bytes(n) + draft_kv_->kv_bytes(n); };
}

void ServingExperiment::start(std::vector<workloads::Request> requests,
                              const std::vector<serving::PrefillBackend*>& prefill,
                              const std::vector<serving::DecodeBackend*>& decode, serving::KvPath* kv_path,
                              trace::Writer* trace) {
  system_ = std::make_unique<serving::ServingSystem>("serving", cfg_, std::move(requests), prefill, decode,
                                                     kv_path, trace, faults_.decode_down);
}

void ServingExperiment::run(sim::RunContext& ctx) {
  if (ctx.progress) {
    ctx.progress->set_total(static_cast<double>(system_->requests().size()), "requests");
    sim::Progress* p = ctx.progress;
    system_->on_request_end(
        [p](double t_s, std::uint64_t ended) { p->update_every_call(t_s, static_cast<double>(ended)); });
  }
  token_times_ = ctx.token_times;
  system_->record_token_times(token_times_);
  sc_core::sc_start();
  system_->close_run();  // a request still waiting now is rejected, with the reason
  end_s_ = system_->end_s();
}

std::map<std::string, std::string> ServingExperiment::extra_files() const {
  std::map<std::string, std::string> files{{"requests.csv", serving::requests_csv(*system_)}};
  if (token_times_) files["tokens.csv"] = serving::tokens_csv(*system_);
  return files;
}

void ServingExperiment::summarize(nlohmann::json& s) const {
  s["model"] = model_summary(model_);
  s["decode_kv_capacity_bytes"] = cfg_.decode_kv_capacity_bytes;
  summarize_machines(s);
  serving::summarize(*system_, cfg_, s);
  if (!faults_.empty()) summarize_faults(s);
  std::uint64_t output = 0, prompt = 0;  // of the completed requests
  const auto& records = system_->records();
  const auto& requests = system_->requests();
  for (std::size_t i = 0; i < records.size() && i < requests.size(); ++i) {
    if (!records[i].completed()) continue;
    output += records[i].tokens_out;
    prompt += requests[i].input_tokens;
  }
  if (!cost_.fleet.empty()) s["cost"] = cost_.summary(end_s_, output, prompt);
  if (!energy_.empty()) {
    const efa::SrdEngine* efa = efa_engine();
    const double efa_bytes = efa ? static_cast<double>(efa->bytes_placed()) : 0.0;
    s["energy"] = energy_.summary(end_s_, activity(), efa_bytes, output, prompt);
  }
}

void ServingExperiment::summarize_faults(nlohmann::json& s) const {
  nlohmann::json f = nlohmann::json::object();
  f["schedule"] = faults_.counts();
  serving::summarize_faults(*system_, f);
  // Requests touched by a fault: re-routed or rejected, or with a KV transfer that
  // overlapped an EFA fault window.
  std::uint64_t affected = 0, efa_affected = 0;
  for (const serving::RequestRecord& r : system_->records()) {
    bool efa_hit = false;
    for (const auto& e : faults_.entries) {
      if (e.kind == "decode_system_down" || r.kv_start_s < 0) continue;
      const double end = r.kv_end_s >= 0 ? r.kv_end_s : end_s_;
      efa_hit = efa_hit || (r.kv_start_s < e.end_s && end >= e.start_s);
    }
    efa_affected += efa_hit ? 1 : 0;
    affected += efa_hit || r.reroutes > 0 || r.rejected() ? 1 : 0;
  }
  f["requests_affected"] = affected;
  if (const efa::SrdEngine* e = efa_engine()) {
    f["efa"] = {{"packets_sent", e->packets_sent()},
                {"packets_lost", e->packets_lost()},
                {"packets_retransmitted", e->packets_retransmitted()},
                {"packets_rerouted", e->packets_rerouted()},
                {"requests_with_transfer_in_fault_window", efa_affected}};
  }
  s["faults"] = f;
}

}  // namespace wse::experiments
