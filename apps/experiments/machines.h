// The machines of a serving experiment as the serving layer sees them
// (serving::PrefillBackend, serving::DecodeBackend): a Trainium instance running operator
// graphs on the Trainium model, and a CS-3 decode system (one or several wafers holding
// one copy of the model) running them on the wafer model. Each adds its busy time per
// resource class to statistics, so that summary.json reports the utilization of every
// bandwidth on the way.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/energy.h"
#include "neuroncore/transformer/pipeline_op.h"
#include "neuroncore/transformer/prefill.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/backends.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::experiments {

// The energy model's counts (Activity) of one Trainium pass, or of a pipeline's passes,
// on chips of `hbm_bytes_per_s` HBM peak bandwidth joined by links of `link_bytes_per_s`:
// the tensor engines' matrix FLOPs, each pass's HBM data-bus busy time per chip x the
// peak x the pass's chips (a pipeline: a stage group's), and the links' busy time summed
// over the directed links x one link's bandwidth.
Activity trainium_activity(const neuron::PrefillResult& r, double hbm_bytes_per_s, double link_bytes_per_s);
Activity trainium_activity(const neuron::PipelineResult& r, double hbm_bytes_per_s, double link_bytes_per_s);

// One Trainium instance: both phases run its operator graphs on the Trainium model.
class TrainiumMachine : public serving::PrefillBackend, public serving::DecodeBackend {
 public:
  // `decode_split`, when given, runs the decode steps (a split of the instance's chips of
  // its own, trainium_decode:); else the runner does, as the prefill batches.
  // `draft`, when given, is a speculative-decoding draft model fused with the target on the
  // same chips (serving.speculative, docs/serving.md): its passes run on the runner before
  // the target's verification pass, and its prompt KV is made by a prefill pass of its own
  // after the target's. Not with `decode_split`.
  TrainiumMachine(neuron::TrainiumPrefill& runner, const workloads::TransformerModel& model,
                  stats::Group& group, neuron::TrainiumPipeline* decode_split = nullptr,
                  const workloads::TransformerModel* draft = nullptr);
  serving::PrefillTiming prefill(const std::vector<serving::PrefillChunk>& batch) override;
  double step(const std::vector<std::uint32_t>& contexts) override;
  // prefill.cp_degree or pp_degree > 1: the prefill batches run on one replica of the split
  // (TrainiumPipeline::run_batch) instead of the runner's one group: over its
  // context-parallel groups, or through its pipeline stages, a batch entering the first
  // stage once the batch before has left it (docs/neuroncore.md, "Prefill splits in the
  // serving modes").
  void set_prefill_split(neuron::TrainiumPipeline* split, std::uint32_t pp = 1) {
    prefill_split_ = split;
    stage_free_ps_.assign(pp, 0);
  }
  serving::SpeculativeTiming speculative_step(const std::vector<std::uint32_t>& contexts,
                                              std::uint32_t draft_tokens) override;
  // The physical floors (TrainiumFloor) of the passes run, summed term by term, with their
  // count and simulated seconds.
  struct Floors {
    neuron::TrainiumFloor floor;
    std::uint64_t passes = 0;
    double simulated_s = 0.0;
    // One pass of `simulated` seconds against its floor.
    void add(const neuron::TrainiumFloor& f, double simulated) {
      floor += f;
      ++passes;
      simulated_s += simulated;
    }
  };
  const Floors& prefill_floor() const { return prefill_floor_; }
  const Floors& decode_floor() const { return decode_floor_; }
  // The instance's work over the run: the energy model's counts.
  const Activity& activity() const { return activity_; }

 private:
  void account(const neuron::PrefillResult& r);
  void account(const neuron::PipelineResult& r);
  neuron::TrainiumPrefill& runner_;
  neuron::TrainiumPipeline* decode_split_ = nullptr;
  neuron::TrainiumPipeline* prefill_split_ = nullptr;
  std::vector<std::uint64_t> stage_free_ps_;  // pp > 1: when each stage ends its last batch, absolute
  const workloads::TransformerModel& model_;
  const workloads::TransformerModel* draft_ = nullptr;
  stats::Utilization& tensor_;
  stats::Utilization& vector_;
  stats::Utilization& dma_;
  stats::Utilization& hbm_;
  stats::Utilization& link_;
  stats::Utilization& runtime_;
  std::vector<stats::Utilization*> algorithms_;  // by CollectiveAlgorithm
  stats::Counter& chip_runs_;
  Floors prefill_floor_, decode_floor_;
  Activity activity_;
  sc_core::sc_time next_step_at_;  // when the last decode step of the split ends
};

// summary.json `trainium`: the floors of the prefill passes and decode steps of these
// machines (means per pass, and the ratio of simulated to floor time).
nlohmann::json trainium_summary(const std::vector<const TrainiumMachine*>& machines);

// The work of these machines over the run, summed.
template <class Machines>
Activity total_activity(const Machines& machines) {
  Activity a;
  for (const auto& m : machines) a += m->activity();
  return a;
}

// One CS-3 system (or a pipeline of several holding one copy of the model): decode steps
// and, in wafer_only mode, prefill batches run on the wafer model (wse_mesh/decode).
// Several machines may share one decoder (same model, same placement): its time depends
// only on the batch, and its kernel cache is then shared.
class WaferMachine : public serving::PrefillBackend, public serving::DecodeBackend {
 public:
  // `draft`, when given, is a speculative-decoding draft model placed beside the target on
  // the same wafers (its own rows of each; serving.speculative, docs/serving.md): its
  // decode steps run before the target's verification pass, and in wafer_only its prefill
  // after the target's.
  WaferMachine(wafer::WaferDecoder& decoder, stats::Group& group, wafer::WaferDecoder* draft = nullptr);
  serving::PrefillTiming prefill(const std::vector<serving::PrefillChunk>& batch) override;
  double step(const std::vector<std::uint32_t>& contexts) override;
  serving::SpeculativeTiming speculative_step(const std::vector<std::uint32_t>& contexts,
                                              std::uint32_t draft_tokens) override;
  // Busy seconds per kernel kind, over all passes.
  const std::map<std::string, double>& kernel_seconds() const { return kernel_s_; }
  std::uint64_t steps() const { return steps_; }
  double decode_seconds() const { return decode_s_; }
  // The physical floors (WaferFloor) of the decode steps and of the prefill passes run,
  // summed term by term, and the simulated seconds of the prefill passes.
  const wafer::WaferFloor& decode_floor() const { return decode_floor_; }
  const wafer::WaferFloor& prefill_floor() const { return prefill_floor_; }
  std::uint64_t prefills() const { return prefills_; }
  double prefill_seconds() const { return prefill_s_; }
  // The system's work over the run (all its wafers): the energy model's counts.
  const Activity& activity() const { return activity_; }

 private:
  void account(const wafer::WaferRunResult& r);
  wafer::WaferDecoder& decoder_;
  wafer::WaferDecoder* draft_ = nullptr;
  stats::Utilization& pe_;
  stats::Utilization& sram_;
  stats::Utilization& fabric_;
  stats::Utilization& link_;
  stats::Counter& weight_bytes_;
  stats::Counter& kv_bytes_;
  std::map<std::string, double> kernel_s_;
  std::uint64_t steps_ = 0;
  double decode_s_ = 0.0;
  wafer::WaferFloor decode_floor_, prefill_floor_;
  std::uint64_t prefills_ = 0;
  double prefill_s_ = 0.0;
  Activity activity_;
};

}  // namespace wse::experiments
