#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include "apps/experiments/kv_transfer.h"

#include <sstream>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/inputs.h"
#include "apps/experiments/kv_paths.h"
#include "efa_link/efa_config.h"
#include "systemc_models/sim/output.h"
#include "systemc_models/sim/progress.h"
#include "systemc_models/stats/stats.h"
#include "systemc_models/tlm/shared_resource.h"
#include "workloads/model/transformer.h"
#include "workloads/trace/request_trace.h"

namespace wse::experiments {

namespace {

struct Record {
  double arrival_s = 0;
  double start_s = 0;
  double end_s = 0;
  std::uint64_t bytes = 0;
};

class KvTransferSystem : public sc_core::sc_module, public stats::Provider {
 public:
  KvTransferSystem(const sc_core::sc_module_name& name, std::unique_ptr<serving::KvPath> path,
                   std::vector<workloads::Request> requests, const workloads::TransformerModel& model,
                   unsigned senders, unsigned receivers)
      : sc_module(name),
        path_(std::move(path)),
        requests_(std::move(requests)),
        model_(model),
        receivers_(receivers),
        records_(requests_.size()),
        stats_(std::string(basename())),
        transfer_time_(
            stats_.distribution("transfer_time", "s", "from arrival to the last byte in place, per request")),
        bytes_(stats_.counter("bytes", "B", "KV cache bytes sent")) {
    for (unsigned s = 0; s < senders; ++s) {
      sc_core::sc_spawn([this, s, senders] { sender(s, senders); }, sc_core::sc_gen_unique_name("sender"));
    }
  }

  void set_progress(sim::Progress* p) { progress_ = p; }
  const stats::Group& stats() const override { return stats_; }
  const std::vector<Record>& records() const { return records_; }
  const std::vector<workloads::Request>& requests() const { return requests_; }
  std::uint64_t total_bytes() const { return bytes_.value(); }

 private:
  // Sender s handles requests s, s + senders, ... in arrival order.
  void sender(unsigned s, unsigned senders) {
    for (std::size_t i = s; i < requests_.size(); i += senders) {
      const auto& r = requests_[i];
      const sc_core::sc_time arrival = sim_time(r.arrival_s, "a request's arrival");
      if (arrival > sc_core::sc_time_stamp()) wait(arrival - sc_core::sc_time_stamp());
      Record& rec = records_[i];
      rec.arrival_s = r.arrival_s;
      rec.start_s = sc_core::sc_time_stamp().to_seconds();
      // The prompt's whole cache (a sliding-window layer holds at most its window).
      rec.bytes = model_.kv_bytes(r.input_tokens);
      // Request i goes to receiver i mod receivers.
      path_->transfer(s, static_cast<unsigned>(i % receivers_), rec.bytes);
      rec.end_s = sc_core::sc_time_stamp().to_seconds();
      transfer_time_.sample(rec.end_s - rec.arrival_s);
      bytes_ += rec.bytes;
      if (progress_) progress_->update(rec.end_s, static_cast<double>(++done_));
    }
  }

  std::unique_ptr<serving::KvPath> path_;
  std::vector<workloads::Request> requests_;
  const workloads::TransformerModel& model_;  // owned by KvTransfer, which outlives this
  unsigned receivers_;
  std::vector<Record> records_;
  sim::Progress* progress_ = nullptr;
  std::size_t done_ = 0;
  stats::Group stats_;
  stats::Distribution& transfer_time_;
  stats::Counter& bytes_;
};

class KvTransfer final : public sim::Experiment {
 public:
  KvTransfer(std::unique_ptr<serving::KvPath> path, std::vector<workloads::Request> requests,
             const workloads::TransformerModel& model, unsigned senders, unsigned receivers)
      : model_(model),
        system_(std::make_unique<KvTransferSystem>("system", std::move(path), std::move(requests), model_,
                                                   senders, receivers)) {}

  void run(sim::RunContext& ctx) override {
    if (ctx.progress) {
      ctx.progress->set_total(static_cast<double>(system_->requests().size()), "requests");
      system_->set_progress(ctx.progress);
    }
    sc_core::sc_start();
    end_s_ = sc_core::sc_time_stamp().to_seconds();
  }

  double simulated_seconds() const override { return end_s_; }

  void summarize(nlohmann::json& s) const override {
    const auto& recs = system_->records();
    stats::Distribution t("t", "s", "");
    stats::Distribution bw("bw", "B/s", "");
    for (const auto& r : recs) {
      t.sample(r.end_s - r.arrival_s);
      if (r.end_s > r.arrival_s) bw.sample(static_cast<double>(r.bytes) / (r.end_s - r.arrival_s));
    }
    s["model"] = model_summary(model_);
    s["requests"] = {{"completed", recs.size()}};
    s["kv_transfer"] = {{"bytes", system_->total_bytes()},
                        {"time_s",
                         {{"mean", t.mean()},
                          {"p50", t.percentile(50)},
                          {"p90", t.percentile(90)},
                          {"p99", t.percentile(99)},
                          {"max", t.max()}}},
                        // Per request: its KV bytes over its transfer time (queueing included).
                        {"request_bandwidth_bytes_per_s",
                         {{"p50", bw.percentile(50)}, {"p90", bw.percentile(90)}, {"max", bw.max()}}},
                        // All KV bytes over the simulated time: the load the trace offers the path.
                        {"offered_load_bytes_per_s",
                         end_s_ > 0 ? static_cast<double>(system_->total_bytes()) / end_s_ : 0.0}};
  }

  std::map<std::string, std::string> extra_files() const override {
    sim::CsvWriter csv({"request", "arrival_s", "input_tokens", "kv_bytes", "transfer_start_s",
                        "transfer_end_s", "transfer_time_s"});
    const auto& reqs = system_->requests();
    const auto& recs = system_->records();
    for (std::size_t i = 0; i < recs.size(); ++i) {
      csv.row({std::to_string(reqs[i].id), sim::fmt_num(recs[i].arrival_s),
               std::to_string(reqs[i].input_tokens), std::to_string(recs[i].bytes),
               sim::fmt_num(recs[i].start_s), sim::fmt_num(recs[i].end_s),
               sim::fmt_num(recs[i].end_s - recs[i].arrival_s)});
    }
    return {{"requests.csv", csv.str()}};
  }

 private:
  workloads::TransformerModel model_;
  std::unique_ptr<KvTransferSystem> system_;
  double end_s_ = 0;
};

// The largest KV cache must cross the link, unloaded, within the longest simulated time:
// known at load, so a link too slow for it is bad input (a queue of transfers that
// still overflows fails the run, naming the link).
void check_transfers_fit(const config::Section& link_s, const tlm_blocks::SharedResourceConfig& link,
                         const ModelAndTrace& in) {
  std::uint64_t largest = 0;
  std::uint64_t id = 0;
  for (const auto& r : in.requests) {
    const std::uint64_t b = in.model.kv_bytes(r.input_tokens);
    if (b > largest) {
      largest = b;
      id = r.id;
    }
  }
  const tlm_blocks::TransferTiming timing(link, "kv_transfer.link");
  const double seconds =
      link.latency.seconds + static_cast<double>(largest) / timing.peak_bandwidth().bytes_per_s;
  if (seconds <= kMaxSimulatedSeconds) return;
  std::ostringstream m;
  m << "the KV cache of request " << id << " (" << largest << " B) takes " << seconds << " s over this link ("
    << pretty(timing.peak_bandwidth()) << "), longer than a run can simulate, " << max_simulated_time_text()
    << "; raise the bandwidth";
  link_s.fail(timing.width_mode() ? "width" : "bandwidth", m.str());
}

}  // namespace

std::unique_ptr<sim::Experiment> make_kv_transfer(config::Section& root, const sim::ExperimentInfo& info) {
  config::Section tr = root;  // replaced by the workload.trace section
  ModelAndTrace in = read_model_and_trace(root, &tr, info.memory);
  // A later turn of a session arrives after its previous turn's answer, which only a
  // serving run produces.
  if (!in.requests.empty() && in.requests.front().in_session()) {
    tr.fail("format",
            "sessions arrive closed loop (a turn after its previous turn's answer), which needs a "
            "serving run; mode kv_transfer takes a request trace (azure_csv, mooncake_jsonl or synthetic)");
  }
  config::Section kv = root.section("kv_transfer", "how the KV caches travel");
  enum class Network { link, efa };
  const Network net = kv.enumeration<Network>(
      "network", {.doc = "the path: one shared link, or the EFA network (section efa)", .def = "link"},
      {{"link", Network::link}, {"efa", Network::efa}});
  std::unique_ptr<serving::KvPath> path;
  unsigned senders = 1;
  unsigned receivers = 1;
  if (net == Network::link) {
    senders = static_cast<unsigned>(kv.integer(
        "senders", {.doc = "prefill machines sending KV caches", .def = "1", .min = 1, .max = 4096}));
    config::Section link_s = kv.section("link", "the shared link (bandwidth, latency, arbitration)");
    const tlm_blocks::SharedResourceConfig link = tlm_blocks::read_shared_resource_config(link_s, senders);
    if (link.initiators != senders) {
      link_s.fail("initiators", "must equal kv_transfer.senders (" + std::to_string(senders) + ")");
    }
    check_transfers_fit(link_s, link, in);
    path = std::make_unique<SharedLinkKvPath>("kv_path", link, info.trace);
  } else {
    config::Section efa_s = root.section("efa", "the EFA network (senders = prefill machines)");
    const efa::EfaNetworkConfig efa = efa::read_efa_config(efa_s);
    senders = efa.senders;
    receivers = efa.receivers;
    path = std::make_unique<EfaKvPath>("kv_path", efa, efa::EfaFaults{}, info.trace);
  }
  return std::make_unique<KvTransfer>(std::move(path), std::move(in.requests), in.model, senders, receivers);
}

}  // namespace wse::experiments
