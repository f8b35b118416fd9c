#include "apps/experiments/op_trace_run.h"

#include <nlohmann/json.hpp>

#include "apps/experiments/energy.h"
#include "apps/experiments/machines.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/prefill.h"
#include "systemc_models/sim/output.h"
#include "systemc_models/stats/stats.h"
#include "workloads/model/op_trace.h"

namespace wse::experiments {

namespace {

class OpTraceRun final : public sim::Experiment {
 public:
  OpTraceRun(workloads::OpTrace trace, const neuron::ChipConfig& chip, const neuron::InstanceConfig& instance,
             const neuron::PrefillConfig& prefill)
      : trace_(std::move(trace)),
        runner_(chip, instance, prefill),
        stats_("trainium"),
        tensor_(stats_.utilization("tensor_engine",
                                   "tensor engines busy (array fraction weighted), mean over cores")),
        vector_(stats_.utilization("vector_engine", "vector engines busy, mean over cores")),
        hbm_(stats_.utilization("hbm", "HBM data bus busy, per chip")),
        link_(stats_.utilization("neuronlink", "NeuronLink links busy, mean over links")) {
    runner_.check_capacity(trace_.graph, trace_.model.weight_bytes);
  }

  // The instance held for the pass: summary.json `cost` and `energy`.
  void set_fleet(PassFleet f) { fleet_ = std::move(f); }

  void run(sim::RunContext&) override {
    result_ = runner_.run(trace_.graph, trace_.model.weight_bytes);
    const double t = result_.seconds();
    tensor_.add_busy(result_.tensor_utilization() * t);
    vector_.add_busy(result_.vector_utilization() * t);
    hbm_.add_busy(result_.hbm_utilization() * t);
    link_.add_busy(result_.link_utilization() * t);
  }
  double simulated_seconds() const override { return result_.seconds(); }
  std::vector<const stats::Group*> extra_stats() const override { return {&stats_}; }
  void summarize(nlohmann::json& s) const override {
    const workloads::OperatorGraph& g = trace_.graph;
    s["op_trace"] = {
        {"model", trace_.model.name},
        {"phase", g.phase},
        {"sequences", g.sequences.size()},
        {"operators", g.ops.size()},
        {"flops", g.total_flops()},
        {"bytes", g.total_bytes()},
        {"layers_reused", result_.reused_layers},
        {"achieved_flops_per_s",
         result_.seconds() > 0 ? static_cast<double>(g.total_flops()) / result_.seconds() : 0.0}};
    // The floor of the one pass, as the serving modes give it (mean over their passes).
    const neuron::TrainiumFloor& f = result_.floor;
    s["trainium"]["floor"][g.phase == "decode" ? "decode_step" : "prefill_pass"] = {
        {"passes", 1},
        {"simulated_s", result_.seconds()},
        {"compute_s", f.compute_s},
        {"hbm_s", f.hbm_s},
        {"collective_s", f.collective_s},
        {"step_s", f.step_s},
        {"ratio", f.step_s > 0.0 ? result_.seconds() / f.step_s : 0.0}};
    // Tokens: a decode pass yields one output token per sequence through the LM head; a
    // prefill (or mixed) pass computes its sequences' new tokens as prompt tokens and
    // yields one output token per sequence through the LM head.
    std::uint64_t output = 0, prompt = 0;
    for (const workloads::Sequence& q : g.sequences) {
      output += q.logits ? 1 : 0;
      if (g.phase != "decode") prompt += q.new_tokens;
    }
    fleet_.summarize(s, result_.seconds(),
                     {{"trainium_instance",
                       trainium_activity(result_, runner_.hbm_bytes_per_s(), runner_.link_bytes_per_s())}},
                     0.0, output, prompt);
  }
  std::map<std::string, std::string> extra_files() const override {
    sim::CsvWriter csv({"layer", "start_s", "end_s", "reused"});
    for (const auto& l : result_.layers) {
      csv.row({std::to_string(l.layer), sim::fmt_num(static_cast<double>(l.start_ps) * 1e-12),
               sim::fmt_num(static_cast<double>(l.end_ps) * 1e-12), l.reused ? "1" : "0"});
    }
    return {{"layers.csv", csv.str()}};
  }

 private:
  workloads::OpTrace trace_;
  neuron::TrainiumPrefill runner_;
  neuron::PrefillResult result_;
  stats::Group stats_;
  stats::Utilization& tensor_;
  stats::Utilization& vector_;
  stats::Utilization& hbm_;
  stats::Utilization& link_;
  PassFleet fleet_;
};

}  // namespace

std::unique_ptr<sim::Experiment> make_op_trace(config::Section& root, const sim::ExperimentInfo& /*info*/) {
  config::Section ot = root.section("op_trace", "the operator trace to execute");
  const auto path = ot.path("path", {.doc = "operator-trace file (JSON Lines, docs/trace_format.md)"});
  std::error_code ec;  // a symlink loop is bad input with its reason, not an exception
  const auto type = std::filesystem::status(path, ec).type();
  if (type == std::filesystem::file_type::not_found)
    ot.fail("path", "operator trace '" + path.string() + "' does not exist");
  if (ec) ot.fail("path", "cannot read operator trace '" + path.string() + "': " + ec.message());
  if (type != std::filesystem::file_type::regular) {
    ot.fail("path", "'" + path.string() +
                        "' is not a regular file (a directory, FIFO or device); give an operator trace");
  }
  workloads::OpTrace trace = workloads::read_op_trace(path);
  config::Section trn = root.section("trainium", "the Trainium chip");
  const neuron::ChipConfig chip = neuron::read_chip_config(trn);
  config::Section inst = root.section("instance", "the Trainium instance (chips on a NeuronLink torus)");
  const neuron::InstanceConfig instance = neuron::read_instance_config(inst);
  config::Section pre = root.section("prefill", "how operators are sharded and run on the instance");
  const neuron::PrefillConfig prefill = neuron::read_prefill_config(pre);
  // The prices and power models: the FLOP figure by the trace's weight type.
  workloads::TransformerModel weights;
  weights.linear_dtype = trace.model.weight_dtype;
  PassFleet fleet = read_pass_fleet(root, {{"trainium_instance", 1}}, weights);
  std::unique_ptr<OpTraceRun> run;
  try {
    run = std::make_unique<OpTraceRun>(std::move(trace), chip, instance, prefill);
  } catch (const std::exception& e) {
    // Capacity: the trace's model and batch do not fit the instance's HBM.
    ot.fail("path", e.what());
  }
  run->set_fleet(std::move(fleet));
  return run;
}

}  // namespace wse::experiments
