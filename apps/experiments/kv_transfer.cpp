#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include "apps/experiments/kv_transfer.h"

#include <sstream>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/experiments/energy.h"
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
  // Prompt tokens whose KV caches were sent.
  std::uint64_t prompt_tokens() const {
    std::uint64_t n = 0;
    for (const auto& r : requests_) n += r.input_tokens;
    return n;
  }

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

  // The machines at the two ends, held for the run: summary.json `cost` and `energy`.
  void set_fleet(PassFleet f) { fleet_ = std::move(f); }

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
    // The end machines do no modelled work here (static power only); the network carries
    // the KV bytes (the link stands for the EFA attachment, priced as EFA). Tokens: the
    // prompts whose KV caches crossed; no output token is produced.
    fleet_.summarize(s, end_s_, {}, static_cast<double>(system_->total_bytes()), 0, system_->prompt_tokens());
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
  PassFleet fleet_;
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
    receivers = static_cast<unsigned>(
        kv.integer("receivers",
                   {.doc = "decode machines receiving KV caches (request i to receiver i mod receivers; they "
                           "share the link, so only the fleet's cost and energy depend on it)",
                    .def = "1",
                    .min = 1,
                    .max = 4096}));
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
  // The machines at the two ends (docs/cost.md, docs/energy.md): by default the default
  // system's, Trainium instances sending into CS-3s.
  enum class Kind { none, trainium_instance, gpu_instance, cs3 };
  const auto read_kind = [&kv](std::string_view key, std::string_view doc, std::string_view def) {
    return kv.enumeration<Kind>(key, {.doc = doc, .def = def},
                                {{"none", Kind::none},
                                 {"trainium_instance", Kind::trainium_instance},
                                 {"gpu_instance", Kind::gpu_instance},
                                 {"cs3", Kind::cs3}});
  };
  const auto kind_name = [](Kind k) -> std::string {
    switch (k) {
      case Kind::trainium_instance:
        return "trainium_instance";
      case Kind::gpu_instance:
        return "gpu_instance";
      case Kind::cs3:
        return "cs3";
      case Kind::none:
        break;
    }
    return "none";
  };
  const Kind sender_kind =
      read_kind("sender_machine",
                "what each sender is, for the run's cost and energy (the cost.hourly and "
                "energy keys of that kind; none: not charged)",
                "trainium_instance");
  const Kind receiver_kind = read_kind(
      "receiver_machine", "what each receiver is, for the run's cost and energy (as sender_machine)", "cs3");
  std::vector<std::pair<std::string, std::uint64_t>> fleet;
  if (sender_kind != Kind::none) fleet.emplace_back(kind_name(sender_kind), senders);
  if (receiver_kind != Kind::none) {
    if (!fleet.empty() && fleet.back().first == kind_name(receiver_kind)) {
      fleet.back().second += receivers;
    } else {
      fleet.emplace_back(kind_name(receiver_kind), receivers);
    }
  }
  PassFleet pass_fleet = read_pass_fleet(root, fleet, in.model);
  auto run =
      std::make_unique<KvTransfer>(std::move(path), std::move(in.requests), in.model, senders, receivers);
  run->set_fleet(std::move(pass_fleet));
  return run;
}

}  // namespace wse::experiments
