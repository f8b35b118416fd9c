#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn in the serving system
#include "apps/experiments/wafer_serving.h"

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/gpu_machines.h"
#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
#include "apps/experiments/machines.h"
#include "apps/experiments/serving_experiment.h"
#include "apps/experiments/speculative.h"
#include "apps/experiments/wafer_kv_path.h"
#include "efa_link/efa_config.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/prefill.h"
#include "systemc_models/stats/stats.h"
#include "systemc_models/units/integer.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/serving_report.h"
#include "workloads/serving/serving_system.h"
#include "wse_mesh/decode/wafer_decoder.h"
#include "wse_mesh/kernels/pe.h"
#include "wse_mesh/wafer_config.h"

namespace wse::experiments {

namespace {

// Simulation cost of the prompts' prefill on the wafer (wafer_only), from the structure:
// token passes, a pass being one token timed through every layer's kernels (each kernel
// a cache lookup once its shape has been simulated). Pieces of one token past a prompt's
// first (decode.prefill_chunk_tokens 1) are timed once per context length in blocks of
// attention.tokens_per_pe and reused by every prompt (the decoder's microbatch memo), so
// a trace costs about one pass per request plus one per block of its longest prompt;
// longer pieces are timed afresh, each in ceil(tokens / gemm_vectors) passes, so the
// cost grows with the trace's total prompt tokens. Measured on a 2-core machine, a pass
// costs 1.6 to 3 ms of CPU (wafer_only, chunk 4 against 1: 5.1 s more for 1,649 prompt
// tokens at workload.trace.limit=3, 18.5 s more for 11,540 at limit 20).
std::uint64_t prefill_token_passes(const std::vector<workloads::Request>& requests, std::uint64_t chunk,
                                   std::uint64_t gemm_vectors, std::uint64_t tokens_per_pe) {
  std::uint64_t passes = 0;
  if (chunk == 1) {
    std::uint64_t longest = 0;
    for (const auto& r : requests) longest = std::max<std::uint64_t>(longest, r.input_tokens);
    return requests.size() + ceil_div(longest, tokens_per_pe);
  }
  for (const auto& r : requests) {
    const std::uint64_t whole = r.input_tokens / chunk, rest = r.input_tokens % chunk;
    passes += whole * ceil_div(chunk, gemm_vectors) + (rest ? ceil_div(rest, gemm_vectors) : 0);
  }
  return passes;
}

// Warns when decode.prefill_chunk_tokens costs far more simulation than its default (1):
// at least 10 times the passes and 20,000 passes (half a minute or more) more.
void warn_prefill_cost(const config::Section& dec, const wafer::DecodeConfig& d,
                       const std::vector<workloads::Request>& requests, std::vector<std::string>* warnings) {
  if (!warnings || d.prefill_chunk_tokens == 1) return;
  const std::uint64_t now =
      prefill_token_passes(requests, d.prefill_chunk_tokens, d.gemm_vectors, d.tokens_per_pe);
  const std::uint64_t def = prefill_token_passes(requests, 1, d.gemm_vectors, d.tokens_per_pe);
  if (now < 10 * def || now - def < 20000) return;
  const double minutes_lo = static_cast<double>(now - def) * 1.6e-3 / 60;
  const double minutes_hi = static_cast<double>(now - def) * 3e-3 / 60;
  std::ostringstream m;
  m << std::setprecision(2) << dec.source_of("prefill_chunk_tokens").where() << ": key '"
    << dec.key_path("prefill_chunk_tokens") << "' = " << d.prefill_chunk_tokens
    << ": the prompts' prefill is estimated at " << now << " token passes to simulate, against " << def
    << " at the default 1 (" << now / std::max<std::uint64_t>(def, 1)
    << "x; pieces longer than one token are timed afresh for every prompt), about " << minutes_lo << " to "
    << minutes_hi << " min more of CPU; keep the default 1 unless chunked prefill is what is studied, or "
    << "run fewer requests (workload.trace.limit)";
  warnings->push_back(m.str());
}

class Machines : public sc_core::sc_module, public stats::Provider {
 public:
  // `draft` (speculative decoding): the draft model and its decoder on the wafers' other
  // rows; the Trainium prefill instances run its prefill fused with the target's.
  Machines(const sc_core::sc_module_name& name, const workloads::TransformerModel& model,
           wafer::WaferDecoder& decoder, unsigned prefill, unsigned decode, const TrainiumSide* trainium,
           const workloads::TransformerModel* draft = nullptr, wafer::WaferDecoder* draft_decoder = nullptr)
      : sc_module(name), stats_(std::string(basename())) {
    if (trainium) {
      runner_ =
          std::make_unique<neuron::TrainiumPrefill>(trainium->chip, trainium->instance, trainium->prefill);
      split_ = make_prefill_split(*trainium);
      for (unsigned i = 0; i < prefill; ++i) {
        trainium_.push_back(std::make_unique<TrainiumMachine>(
            *runner_, model, stats_.child(prefill_group_name("trn_prefill", i, trainium->prefill.dp_degree)),
            nullptr, draft));
        trainium_.back()->set_prefill_split(split_.get(), trainium->prefill.pp_degree);
        prefill_.push_back(trainium_.back().get());
      }
    }
    for (unsigned j = 0; j < decode; ++j) {
      wafers_.push_back(std::make_unique<WaferMachine>(
          decoder, stats_.child("cs3_system" + std::to_string(j)), draft_decoder));
      decode_.push_back(wafers_.back().get());
      if (!trainium) prefill_.push_back(wafers_.back().get());
    }
  }
  const stats::Group& stats() const override { return stats_; }
  const std::vector<serving::PrefillBackend*>& prefill() const { return prefill_; }
  const std::vector<serving::DecodeBackend*>& decode() const { return decode_; }
  const std::vector<std::unique_ptr<WaferMachine>>& wafers() const { return wafers_; }
  std::vector<const TrainiumMachine*> trainium() const {
    std::vector<const TrainiumMachine*> out;
    for (const auto& m : trainium_) out.push_back(m.get());
    return out;
  }

 private:
  stats::Group stats_;
  std::unique_ptr<neuron::TrainiumPrefill> runner_;
  std::unique_ptr<neuron::TrainiumPipeline> split_;  // prefill.cp_degree or pp_degree > 1
  std::vector<std::unique_ptr<TrainiumMachine>> trainium_;
  std::vector<std::unique_ptr<WaferMachine>> wafers_;
  std::vector<serving::PrefillBackend*> prefill_;
  std::vector<serving::DecodeBackend*> decode_;
};

class WaferServing final : public ServingExperiment {
 public:
  WaferServing(const workloads::TransformerModel& model, std::vector<workloads::Request> requests,
               const serving::ServingConfig& cfg, FaultSchedule faults, const wafer::WaferConfig& wafer_cfg,
               const wafer::DecodeConfig& dcfg, std::unique_ptr<wafer::WaferDecoder> decoder,
               const TrainiumSide* trainium, const efa::EfaNetworkConfig* efa, trace::Writer* trace,
               const GpuSide* gpu = nullptr, std::optional<workloads::TransformerModel> draft = std::nullopt,
               std::unique_ptr<wafer::WaferDecoder> draft_decoder = nullptr)
      : ServingExperiment(model, cfg, std::move(faults)),
        wafer_(wafer_cfg),
        dcfg_(dcfg),
        decoder_(std::move(decoder)),
        draft_(std::move(draft)),
        draft_decoder_(std::move(draft_decoder)) {
    // Each request holds the draft's KV beside the target's, and the prefill side sends both.
    if (draft_) count_draft_kv(*draft_);
    machines_ =
        std::make_unique<Machines>("machines", model_, *decoder_, cfg_.prefill_instances, cfg_.decode_systems,
                                   trainium, draft_ ? &*draft_ : nullptr, draft_decoder_.get());
    // GPU prefill (gpu_prefill_cs3_decode): the prefill machines are the GPU groups.
    if (gpu) {
      const unsigned instances =
          gpu->span > 1 ? cfg_.prefill_instances * gpu->span : cfg_.prefill_instances / gpu->groups;
      gpu_ = std::make_unique<GpuMachines>("gpu", instances, gpu->groups, gpu->gpu, gpu->node, gpu->pass,
                                           model_, gpu->span, draft_ ? &*draft_ : nullptr);
    }
    if (efa) {
      kv_path_ =
          std::make_unique<WaferKvPath>("kv_path", *efa, fault_schedule().efa, wafer_, decoder_->regions(),
                                        dcfg_.wafers, cfg_.decode_systems, trace, gpu ? gpu->span : 1);
    }
    serving::KvPath* path = kv_path_.get();
    if (kv_path_ && trainium && trainium->prefill.dp_degree > 1) {
      // The prefill replicas of an instance (prefill.dp_degree) share its EFA sender.
      grouped_ = std::make_unique<GroupedKvPath>(*kv_path_, trainium->prefill.dp_degree);
      path = grouped_.get();
    }
    start(std::move(requests), gpu_ ? gpu_->prefill() : machines_->prefill(), machines_->decode(), path,
          trace);
  }
  std::vector<const stats::Group*> extra_stats() const override {
    if (draft_decoder_) return {&decoder_->stats(), &draft_decoder_->stats()};
    return {&decoder_->stats()};
  }

 private:
  const efa::SrdEngine* efa_engine() const override {
    return kv_path_ ? &kv_path_->efa().network().engine() : nullptr;
  }
  std::map<std::string, Activity> activity() const override {
    std::map<std::string, Activity> a = {{"cs3", total_activity(machines_->wafers())}};
    if (gpu_) a["gpu_instance"] = gpu_->activity();
    if (!machines_->trainium().empty()) {
      a["trainium_instance"] = total_activity(machines_->trainium());
    }
    return a;
  }
  void summarize_machines(nlohmann::json& s) const override {
    // Where decode time goes: busy seconds per kernel kind over all steps, and shares.
    std::map<std::string, double> kernels;
    double decode_s = 0.0;
    std::uint64_t steps = 0;
    for (const auto& w : machines_->wafers()) {
      for (const auto& [k, v] : w->kernel_seconds()) kernels[k] += v;
      decode_s += w->decode_seconds();
      steps += w->steps();
    }
    double kernel_total = 0.0;
    for (const auto& [k, v] : kernels) kernel_total += v;
    nlohmann::json per_kernel = nlohmann::json::object();
    for (const auto& [k, v] : kernels) {
      per_kernel[k] = {{"seconds", v}, {"share", kernel_total > 0 ? v / kernel_total : 0.0}};
    }
    std::vector<std::uint32_t> layers(dcfg_.wafers, 0);
    for (const auto& r : decoder_->regions()) ++layers.at(r.wafer);
    // The physical floor beside the simulated time: per decode step and per prefill pass
    // (means over the run), and the ratio of the simulated total to the floor's.
    wafer::WaferFloor df, pf;
    double prefill_s = 0.0;
    std::uint64_t prefills = 0;
    for (const auto& w : machines_->wafers()) {
      df += w->decode_floor();
      pf += w->prefill_floor();
      prefill_s += w->prefill_seconds();
      prefills += w->prefills();
    }
    const auto floor_json = [](const wafer::WaferFloor& f, double simulated_s, std::uint64_t passes) {
      const double n = passes > 0 ? static_cast<double>(passes) : 1.0;
      return nlohmann::json{{"passes", passes},
                            {"simulated_s", simulated_s / n},
                            {"compute_s", f.compute_s / n},
                            {"sram_s", f.sram_s / n},
                            {"latency_s", f.latency_s / n},
                            {"step_s", f.step_s / n},
                            {"ratio", f.step_s > 0.0 ? simulated_s / f.step_s : 0.0}};
    };
    nlohmann::json floor = {{"decode_step", floor_json(df, decode_s, steps)}};
    if (prefills > 0) floor["prefill_pass"] = floor_json(pf, prefill_s, prefills);
    s["wafer"] = {{"name", wafer_.name},
                  {"mapping", dcfg_.mapping == wafer::Mapping::kSpread ? "spread" : "packed"},
                  {"floor", floor},
                  {"wafers_per_decode_system", dcfg_.wafers},
                  {"decode_systems", cfg_.decode_systems},
                  {"layers_per_wafer", layers},
                  {"decode_steps", steps},
                  {"mean_step_s", steps ? decode_s / static_cast<double>(steps) : 0.0},
                  {"kernel_seconds", per_kernel}};
    if (!machines_->trainium().empty()) s["trainium"] = trainium_summary(machines_->trainium());
    if (gpu_) s["gpu"] = gpu_->summary();
  }

  wafer::WaferConfig wafer_;
  wafer::DecodeConfig dcfg_;
  std::unique_ptr<wafer::WaferDecoder> decoder_;
  std::optional<workloads::TransformerModel> draft_;    // serving.speculative.draft_model
  std::unique_ptr<wafer::WaferDecoder> draft_decoder_;  // its placement on the wafers' other rows
  std::unique_ptr<Machines> machines_;
  std::unique_ptr<GpuMachines> gpu_;
  std::unique_ptr<WaferKvPath> kv_path_;
  std::unique_ptr<GroupedKvPath> grouped_;
};

// Speculative decoding on the wafers: the draft takes the southern `draft_rows` rows of
// each wafer of the decode system (its layers pipelined over the wafers as the
// target's), the target the rows above them; the split is the one that lets every
// request hold the most tokens of both models' KV (the largest min(target tokens, draft
// tokens)). Null decoders when no split leaves both room for KV.
struct SpeculativeWafers {
  std::unique_ptr<wafer::WaferDecoder> target, draft;
  std::uint32_t draft_rows = 0;
  std::uint64_t tokens = 0;  // KV tokens every request may hold in all (both models)
};

SpeculativeWafers place_beside(const wafer::WaferConfig& w, const wafer::DecodeConfig& dcfg,
                               const workloads::TransformerModel& model,
                               const workloads::TransformerModel& draft) {
  const std::uint32_t height = dcfg.region.is_auto() ? w.height : dcfg.region.rows;
  const std::uint32_t width = dcfg.region.is_auto() ? w.width : dcfg.region.cols;
  const auto decoder = [&](const workloads::TransformerModel& m, std::uint32_t rows) {
    wafer::DecodeConfig c = dcfg;
    c.region = wafer::GridShape{rows, width};
    try {
      return std::make_unique<wafer::WaferDecoder>(w, c, m);
    } catch (const wafer::CapacityError&) {
      return std::unique_ptr<wafer::WaferDecoder>();
    } catch (const std::invalid_argument&) {
      return std::unique_ptr<wafer::WaferDecoder>();
    }
  };
  const auto tokens = [&](const workloads::TransformerModel& m, std::uint32_t rows) -> std::uint64_t {
    if (rows == 0) return 0;
    const auto d = decoder(m, rows);
    return d ? d->kv_capacity_tokens() : 0;
  };
  // The draft's tokens grow with its rows, the target's shrink: the smallest r at which
  // the draft holds at least the target's tokens, or the row before it, is the best split.
  std::uint32_t lo = 1, hi = height - 1;
  while (lo < hi) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (tokens(draft, mid) >= tokens(model, height - mid))
      hi = mid;
    else
      lo = mid + 1;
  }
  SpeculativeWafers best;
  for (std::uint32_t r : {lo > 1 ? lo - 1 : lo, lo}) {
    const std::uint64_t t = std::min(tokens(draft, r), tokens(model, height - r));
    if (t > best.tokens) {
      best.tokens = t;
      best.draft_rows = r;
    }
  }
  if (best.tokens == 0) return best;
  best.target = decoder(model, height - best.draft_rows);
  best.draft = decoder(draft, best.draft_rows);
  return best;
}

// `gpu_prefill`: GPU instances prefill in place of Trainium (disaggregated placement only).
std::unique_ptr<sim::Experiment> make_wafer_serving(config::Section& root, const sim::ExperimentInfo& info,
                                                    serving::Placement placement, bool gpu_prefill = false) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  const workloads::TransformerModel& model = in.model;
  std::optional<TrainiumSide> trainium;
  std::optional<GpuSide> gpu;
  if (gpu_prefill) {
    gpu = read_gpu_side(root, model, true);
  } else if (placement == serving::Placement::disaggregated) {
    trainium = read_trainium_side(root);
  }
  config::Section wafer_s = root.section("wafer", "the CS-3's wafer (configs/hardware/cs3.yaml)");
  const wafer::WaferConfig wafer_cfg = wafer::read_wafer_config(wafer_s);
  if (info.memory) {
    // The largest fabric a kernel is simulated on is the whole wafer at its tile.
    const std::uint64_t nodes = std::uint64_t{(wafer_cfg.width + wafer_cfg.tile - 1) / wafer_cfg.tile} *
                                ((wafer_cfg.height + wafer_cfg.tile - 1) / wafer_cfg.tile);
    const std::uint64_t per = wafer::Fabric::idle_bytes_per_router(wafer_cfg.fabric.colors);
    info.memory->charge(wafer_s, "width", sim::mul_sat(nodes, per),
                        "the fabric of a " + std::to_string(wafer_cfg.width) + " x " +
                            std::to_string(wafer_cfg.height) + " wafer at tile " +
                            std::to_string(wafer_cfg.tile) + " (" + std::to_string(nodes) + " routers x " +
                            std::to_string(per) + " B)",
                        "use a coarser wafer.fabric.tile or a smaller wafer (wafer.width, wafer.height)");
  }
  config::Section dec = root.section("decode", "how the model is placed on the CS-3s and run", true);
  const wafer::DecodeConfig dcfg = wafer::read_decode_config(dec);
  if (placement == serving::Placement::colocated) warn_prefill_cost(dec, dcfg, in.requests, info.warnings);
  config::Section sv = root.section("serving", "serving policy", true);
  serving::ServingConfig cfg = serving::read_serving_config(sv);
  std::optional<DraftModel> draft = read_draft_model(sv, model, info.seed, cfg);
  cfg.placement = placement;
  cfg.layers = model.layers;
  std::optional<efa::EfaNetworkConfig> efa;
  unsigned gpu_instances = 0;  // GPU prefill: the instances of the prefill pool
  if (placement == serving::Placement::colocated) {
    cfg.prefill_instances = cfg.decode_systems = read_machine_count(
        sv, "systems",
        "CS-3 decode systems serving the trace (each decode.wafers CS-3s holding one model copy)");
  } else {
    if (gpu) {
      gpu_instances = read_machine_count(sv, "prefill_instances", "GPU instances that prefill");
      if (gpu_instances % gpu->span != 0) {
        sv.fail("prefill_instances",
                "a model copy spans " + std::to_string(gpu->span) +
                    " instances (gpu_pass.tp_degree over gpu_instance.gpus): use a multiple of " +
                    std::to_string(gpu->span) + "; got " + std::to_string(gpu_instances));
      }
      // The prefill machines: the groups of each instance, or the groups over span instances.
      cfg.prefill_instances = gpu->span > 1 ? gpu_instances / gpu->span : gpu_instances * gpu->groups;
    } else {
      cfg.prefill_instances = read_machine_count(sv, "prefill_instances", "Trainium instances that prefill");
    }
    cfg.decode_systems = read_machine_count(
        sv, "decode_systems", "CS-3 decode systems (each decode.wafers CS-3s holding one copy of the model)");
    DerivedCount senders{cfg.prefill_instances, located_key(sv, "prefill_instances"), ""};
    if (gpu && gpu->span > 1) {
      // A group over several instances sends from each instance's EFA attachment.
      senders.count = gpu_instances;
      senders.why =
          "a group spans " + std::to_string(gpu->span) + " instances, each sending on its own EFA attachment";
    } else if (gpu) {
      senders.from += " x the tensor-parallel groups of an instance, " +
                      located_key(root.section("gpu_instance", "the GPU instance"), "gpus") + " / " +
                      located_key(root.section("gpu_pass", "the GPU pass", true), "tp_degree");
      senders.why = "every group is an EFA sender";
    }
    efa = read_serving_efa(root, senders,
                           {cfg.decode_systems * dcfg.wafers,
                            located_key(sv, "decode_systems") + " x " + located_key(dec, "wafers"),
                            "every CS-3 has its own EFA attachment"});
    // A group over span instances takes each message as span writes.
    charge_kv_transfers(info.memory, sv, cfg, *efa, in.requests.size() * (gpu ? gpu->span : 1), dcfg.wafers);
  }
  FaultSchedule faults = read_faults(root, efa ? &*efa : nullptr,
                                     placement == serving::Placement::disaggregated ? cfg.decode_systems : 0);
  if (!dcfg.region.is_auto() && (dcfg.region.rows > wafer_cfg.height || dcfg.region.cols > wafer_cfg.width)) {
    dec.fail("region",
             "the region " + std::to_string(dcfg.region.rows) + "x" + std::to_string(dcfg.region.cols) +
                 " (rows x columns) exceeds the " + std::to_string(wafer_cfg.height) + " x " +
                 std::to_string(wafer_cfg.width) + " PEs of " + wafer_cfg.name + "; use at most \"" +
                 std::to_string(wafer_cfg.height) + "x" + std::to_string(wafer_cfg.width) + "\", or `all`");
  }
  check_reserved_sram(wafer_s, dec, wafer_cfg.pe.sram_bytes, dcfg.reserved_sram_bytes);
  std::unique_ptr<wafer::WaferDecoder> decoder;
  try {
    decoder = std::make_unique<wafer::WaferDecoder>(wafer_cfg, dcfg, model);
  } catch (const wafer::CapacityError& e) {
    dec.fail("wafers", std::string("the model does not fit: ") + e.what());
  } catch (const std::invalid_argument& e) {
    dec.fail("wafers", e.what());
  }
  cfg.decode_kv_capacity_bytes = decoder->kv_capacity_bytes();
  std::unique_ptr<wafer::WaferDecoder> draft_decoder;
  if (draft && trainium) check_trainium_draft_prefill(*trainium, model, *draft);
  // GPU prefill: each group makes the draft's prompt KV beside the target's (both models'
  // weights in its HBM).
  if (draft && gpu) check_gpu_draft_fits(*gpu, model, *draft);
  if (draft) {
    SpeculativeWafers sw = place_beside(wafer_cfg, dcfg, model, draft->model);
    if (!sw.target) {
      const std::uint64_t need = draft->model.weight_bytes();
      const std::uint64_t room = cfg.decode_kv_capacity_bytes;
      draft->section.fail(
          "draft_model", draft->model.name + " does not fit beside " + model.name +
                             " on a decode system of " + std::to_string(dcfg.wafers) + " " + wafer_cfg.name +
                             " (decode.wafers): its weights need " + std::to_string(need) +
                             " B, and the target leaves " + std::to_string(room) + " B of SRAM for KV" +
                             (need > room ? ", " + std::to_string(need - room) + " B short"
                                          : "; no split of the wafers' rows leaves both models room for KV") +
                             "; raise decode.wafers or use a smaller draft");
    }
    decoder = std::move(sw.target);
    draft_decoder = std::move(sw.draft);
    // Both models' KV per token, in the units of the serving layer's kv_bytes (target + draft).
    cfg.decode_kv_capacity_bytes =
        sw.tokens * (model.kv_bytes_per_token() + draft->model.kv_bytes_per_token());
    check_requests_fit(
        tr, model, in.requests, sw.tokens * model.kv_bytes_per_token(),
        "a decode system's SRAM after the target's and the draft's weights (the target's share)",
        "raise decode.wafers or drop the request");
  } else {
    check_requests_fit(tr, model, in.requests, cfg.decode_kv_capacity_bytes,
                       "a decode system's SRAM after the weights", "raise decode.wafers or drop the request");
  }
  // The Trainium instances (fleet, EFA senders); the serving layer sees their
  // prefill.dp_degree replicas.
  const unsigned trainium_instances = cfg.prefill_instances;
  if (trainium) {
    check_prefill_group_fits(root, *trainium, model, cfg.prefill_max_batch_tokens, false);
    cfg.prefill_instances *= trainium->prefill.dp_degree;
  }
  RunCost cost;
  if (gpu) {
    cost.fleet.push_back(read_fleet_part(root, "gpu_instance", gpu_instances));
  } else if (placement == serving::Placement::disaggregated) {
    cost.fleet.push_back(read_fleet_part(root, "trainium_instance", trainium_instances));
  }
  cost.fleet.push_back(read_fleet_part(root, "cs3", std::uint64_t{cfg.decode_systems} * dcfg.wafers));
  auto experiment = std::make_unique<WaferServing>(
      model, std::move(in.requests), cfg, std::move(faults), wafer_cfg, dcfg, std::move(decoder),
      trainium ? &*trainium : nullptr, efa ? &*efa : nullptr, info.trace, gpu ? &*gpu : nullptr,
      draft ? std::optional(std::move(draft->model)) : std::nullopt, std::move(draft_decoder));
  experiment->set_energy(read_run_energy(root, cost, model));
  experiment->set_cost(std::move(cost));
  return experiment;
}

}  // namespace

std::unique_ptr<sim::Experiment> make_disaggregated(config::Section& root, const sim::ExperimentInfo& info) {
  return make_wafer_serving(root, info, serving::Placement::disaggregated);
}

std::unique_ptr<sim::Experiment> make_wafer_only(config::Section& root, const sim::ExperimentInfo& info) {
  return make_wafer_serving(root, info, serving::Placement::colocated);
}

std::unique_ptr<sim::Experiment> make_gpu_prefill_cs3_decode(config::Section& root,
                                                             const sim::ExperimentInfo& info) {
  return make_wafer_serving(root, info, serving::Placement::disaggregated, true);
}

}  // namespace wse::experiments
