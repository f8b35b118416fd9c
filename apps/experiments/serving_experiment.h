// What the serving experiment modes (trainium_only, trainium_disaggregated,
// disaggregated, wafer_only) share: reading the Trainium side and the machine counts,
// checking the EFA network against them and every request against the decode
// machines' KV capacity, and an Experiment base that runs the serving system to the end
// and reports it (summary.json figures, requests.csv).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/experiments/cost.h"
#include "apps/experiments/energy.h"
#include "apps/experiments/faults.h"
#include "efa_link/efa_config.h"
#include "efa_link/srd_engine.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/pipeline_op.h"
#include "neuroncore/transformer/prefill.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/limits.h"
#include "systemc_models/sim/registry.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/serving_config.h"
#include "workloads/serving/serving_system.h"
#include "workloads/trace/request_trace.h"

namespace wse::experiments {

// The Trainium instance as the experiment YAML gives it (`trainium:`, `instance:`,
// `prefill:`, e.g. configs/hardware/trn2_48xlarge.yaml).
struct TrainiumSide {
  neuron::ChipConfig chip;
  neuron::InstanceConfig instance;
  neuron::PrefillConfig prefill;
};
TrainiumSide read_trainium_side(config::Section& root);

// The prefill's replicas (prefill.dp_degree) and context-parallel groups (cp_degree): an
// instance serves dp prefills at once, each replica cp tensor-parallel groups of its own
// chips, so the serving layer sees instances x dp prefill machines (machine i on instance
// i / dp; docs/neuroncore.md, "Prefill splits in the serving modes"). The HBM of one
// group's chips; with dp or cp > 1 the model's weights must fit it, and with cp > 1 a
// group's share of a batch of `batch_tokens` (errors at prefill.dp_degree or cp_degree;
// cp > 1 is refused colocated); the split a prefill machine runs its batches on when cp > 1
// (else null); the statistics name of serving machine i ("prefill3", or "prefill1_dp1"
// with dp 2).
std::uint64_t prefill_group_hbm_bytes(const TrainiumSide& t);
void check_prefill_group_fits(config::Section& root, const TrainiumSide& t,
                              const workloads::TransformerModel& model, std::uint64_t batch_tokens,
                              bool colocated);
std::unique_ptr<neuron::TrainiumPipeline> make_prefill_split(const TrainiumSide& t);
std::string prefill_group_name(const std::string& base, unsigned machine, unsigned dp);

// A count of machines under `serving:` (at least 1).
unsigned read_machine_count(config::Section& serving, std::string_view key, std::string_view doc);

// A count of EFA machines (senders or receivers) derived from the machine pools: the
// count, the pool keys it comes from, each with where it was written (located_key; e.g.
// "serving.decode_systems (a.yaml:17:3) x decode.wafers (default)"), and why (may be
// empty; e.g. "every CS-3 has its own EFA attachment").
struct DerivedCount {
  unsigned count = 0;
  std::string from;
  std::string why;
};
// "<section>.<key> (file:line:column)" where the key was written, "(--set '...')" for an
// override, "(default)" if absent.
std::string located_key(const config::Section& section, std::string_view key);

// Reads `efa:` with its senders and receivers derived from the pools: a file need not
// type them. One that does and disagrees is a configuration error at the typed key,
// naming the pool keys and where they were written.
efa::EfaNetworkConfig read_serving_efa(config::Section& root, const DerivedCount& senders,
                                       const DerivedCount& receivers);

// Charges limits.memory_budget with what the EFA engine keeps of the KV transfers of
// `requests` requests for the whole run: each request's messages (one per
// kv_layers_per_message layers when layer-wise, one otherwise; up to `parts` - 1 more
// where a message is split between machines), each striped over the sender's adapters
// (efa::SrdEngine::retained_bytes_per_message). Charged at serving.kv_layers_per_message
// (layer-wise) or serving.kv_send.
void charge_kv_transfers(sim::MemoryBudget* memory, config::Section& serving,
                         const serving::ServingConfig& cfg, const efa::EfaNetworkConfig& efa,
                         std::uint64_t requests, unsigned parts);

// Every request's whole context (prompt + outputs) must fit one decode machine's KV
// capacity; otherwise a configuration error at `trace.path` naming the request and what
// to change.
void check_requests_fit(const config::Section& trace, const workloads::TransformerModel& model,
                        const std::vector<workloads::Request>& requests, std::uint64_t capacity_bytes,
                        std::string_view machine, std::string_view fix);

// decode.reserved_sram must be below a PE's SRAM (wafer.pe.sram). The wafer decoder
// checks it too, but its error could only be placed at decode.wafers; this one is
// placed at whichever of the two keys a --set gave (wafer.pe.sram first), else at
// decode.reserved_sram.
void check_reserved_sram(config::Section& wafer, config::Section& decode, std::uint64_t pe_sram_bytes,
                         std::uint64_t reserved_sram_bytes);

class ServingExperiment : public sim::Experiment {
 public:
  void run(sim::RunContext&) override;
  double simulated_seconds() const override { return end_s_; }
  std::map<std::string, std::string> extra_files() const override;
  void summarize(nlohmann::json& s) const override;
  // The machines rented for the run and their prices: summary.json `cost`.
  void set_cost(RunCost c) { cost_ = std::move(c); }
  // The power models of those machines: summary.json `energy`.
  void set_energy(RunEnergy e) { energy_ = std::move(e); }

 protected:
  // `faults`: the fault schedule the run follows, an argument beside the configuration
  // (the derived constructor gives fault_schedule().efa to its EFA network, start()
  // gives the decode outages to the serving system); a non-empty one adds a `faults`
  // section to summary.json.
  ServingExperiment(const workloads::TransformerModel& model, const serving::ServingConfig& cfg,
                    FaultSchedule faults);
  const FaultSchedule& fault_schedule() const { return faults_; }
  // Builds the serving system over the machines (call once, from the derived constructor).
  void start(std::vector<workloads::Request> requests, const std::vector<serving::PrefillBackend*>& prefill,
             const std::vector<serving::DecodeBackend*>& decode, serving::KvPath* kv_path,
             trace::Writer* trace);
  // Speculative decoding counting both models' KV: each request's KV bytes, reserved on a
  // decode machine and sent from a prefill machine, become the target's plus the draft's
  // (the prefill side makes the draft's prompt KV beside the target's and it crosses with
  // it; docs/serving.md, "Speculative decoding"). Call from the derived constructor,
  // before start().
  void count_draft_kv(const workloads::TransformerModel& draft);
  // Mode-specific figures, added to summary.json before the serving figures.
  virtual void summarize_machines(nlohmann::json& /*s*/) const {}
  // The EFA transport carrying the KV caches, if the mode has one (fault figures).
  virtual const efa::SrdEngine* efa_engine() const { return nullptr; }
  // The work of the machines over the run by class (trainium_instance, cs3, gpu_instance),
  // as their models count it: summary.json `energy`.
  virtual std::map<std::string, Activity> activity() const = 0;

  workloads::TransformerModel model_;
  serving::ServingConfig cfg_;
  std::unique_ptr<serving::ServingSystem> system_;

 private:
  void summarize_faults(nlohmann::json& s) const;

  FaultSchedule faults_;
  std::optional<workloads::TransformerModel> draft_kv_;  // count_draft_kv's draft
  bool token_times_ = false;                             // --token-times: tokens.csv
  RunCost cost_;
  RunEnergy energy_;
  double end_s_ = 0;
};

}  // namespace wse::experiments
