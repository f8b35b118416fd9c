#include "workloads/serving/serving_report.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "systemc_models/sim/output.h"
#include "systemc_models/stats/stats.h"

namespace wse::serving {

namespace {

nlohmann::json percentiles(const stats::Distribution& d) {
  return {{"mean", d.mean()},
          {"p50", d.percentile(50)},
          {"p90", d.percentile(90)},
          {"p99", d.percentile(99)},
          {"count", d.count()}};
}

std::string t(double s) { return s < 0 ? "" : sim::fmt_num(s); }

// Sessions (when the trace has them): how many, their turns, and for each session
// whose every turn completed, its length from its first arrival to its last token.
nlohmann::json retention_json(const RetentionCounts& k, bool enabled) {
  return {{"enabled", enabled},
          {"hits", k.hits},
          {"host_hits", k.host_hits},
          {"misses", k.misses},
          {"evictions", k.evictions},
          {"evicted_to_host", k.evicted_to_host},
          {"host_evictions", k.host_evictions},
          {"host_write_bytes", k.host_write_bytes},
          {"host_reloads", k.host_hits},
          {"host_reload_bytes", k.host_reload_bytes}};
}

void summarize_sessions(const ServingSystem& system, const ServingConfig& config, nlohmann::json& s) {
  const auto& reqs = system.requests();
  const auto& recs = system.records();
  if (reqs.empty() || !reqs.front().in_session()) return;
  stats::Distribution length("session", "s", "");
  std::uint64_t sessions = 0, completed = 0, turns_done = 0, new_tokens = 0;
  double start = 0;
  bool whole = true;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].turn == 0) {
      ++sessions;
      start = recs[i].arrival_s;
      whole = true;
    }
    whole = whole && recs[i].completed();
    turns_done += recs[i].completed() ? 1 : 0;
    new_tokens += reqs[i].new_tokens;
    const bool last = i + 1 == reqs.size() || reqs[i + 1].turn == 0;
    if (last && whole) {
      ++completed;
      length.sample(recs[i].last_token_s - start);
    }
  }
  s["sessions"] = {
      {"sessions", sessions},          {"completed", completed},          {"turns", reqs.size()},
      {"turns_completed", turns_done}, {"new_prompt_tokens", new_tokens}, {"length_s", percentiles(length)}};
  if (config.placement == Placement::colocated) {
    // No KV crosses machines: what retention saves is prefill work.
    s["sessions"]["kv_retention"] = retention_json(system.retention(), config.kv_retention);
    s["sessions"]["kv_retention"]["prefill_tokens_skipped"] = system.retention().prefill_tokens_skipped;
  }
}

}  // namespace

double hidden_share(const RequestRecord& r) {
  const double len = r.kv_end_s - r.kv_start_s;
  if (r.kv_start_s < 0 || len <= 0) return 0.0;
  const double overlap = std::min(r.kv_end_s, r.first_token_s) - std::max(r.kv_start_s, r.prefill_start_s);
  return std::clamp(overlap / len, 0.0, 1.0);
}

void summarize(const ServingSystem& system, const ServingConfig& config, nlohmann::json& s) {
  stats::Distribution ttft("ttft", "s", ""), tpot("tpot", "s", ""), e2e("e2e", "s", ""), kv("kv", "s", "");
  stats::Distribution hidden("hidden", "fraction", "");
  std::uint64_t tokens = 0, kv_bytes = 0, good = 0;
  double first_arrival = -1, last_token = 0;
  for (const RequestRecord& r : system.records()) {
    if (r.last_token_s < 0) continue;
    if (first_arrival < 0 || r.arrival_s < first_arrival) first_arrival = r.arrival_s;
    last_token = std::max(last_token, r.last_token_s);
    const double f = r.first_token_s - r.arrival_s;
    ttft.sample(f);
    e2e.sample(r.last_token_s - r.arrival_s);
    double per_token = 0;
    if (r.tokens_out > 1) {
      per_token = (r.last_token_s - r.first_token_s) / (r.tokens_out - 1);
      tpot.sample(per_token);
    }
    tokens += r.tokens_out;
    if (r.kv_start_s >= 0) {
      kv.sample(r.kv_end_s - r.kv_start_s);
      hidden.sample(hidden_share(r));
      kv_bytes += r.kv_bytes;
    }
    const bool ttft_ok = config.ttft_slo_s <= 0 || f <= config.ttft_slo_s;
    const bool tpot_ok = config.tpot_slo_s <= 0 || per_token <= config.tpot_slo_s;
    good += ttft_ok && tpot_ok ? 1 : 0;
  }
  const double span = first_arrival < 0 ? 0 : last_token - first_arrival;
  const std::uint64_t done = ttft.count();
  s["requests"] = {{"completed", done},
                   {"rejected", system.rejected()},
                   {"total", system.requests().size()},
                   {"ttft_s", percentiles(ttft)},
                   {"tpot_s", percentiles(tpot)},
                   {"e2e_s", percentiles(e2e)},
                   {"itl_s", percentiles(system.itl())}};
  s["throughput"] = {{"output_tokens_per_s", span > 0 ? static_cast<double>(tokens) / span : 0.0},
                     {"requests_per_s", span > 0 ? static_cast<double>(done) / span : 0.0},
                     {"output_tokens", tokens}};
  if (config.placement == Placement::disaggregated) {
    s["kv_transfer"] = {{"bytes", kv_bytes}, {"time_s", percentiles(kv)}, {"hidden_share", hidden.mean()}};
    if (!system.requests().empty() && system.requests().front().in_session()) {
      const RetentionCounts& k = system.retention();
      s["kv_transfer"]["bytes_saved"] = k.bytes_saved;
      s["kv_transfer"]["retention"] = retention_json(k, config.kv_retention);
    }
  }
  std::uint64_t preempted = 0, swaps = 0, recomputed = 0, swap_bytes = 0;
  for (const RequestRecord& r : system.records()) {
    preempted += r.preemptions > 0 ? 1 : 0;
    swaps += r.swaps;
    recomputed += r.preempt_tokens_recomputed;
    swap_bytes += r.swap_bytes;
  }
  s["preemption"] = {{"policy", config.preemption == Preemption::swap ? "swap" : "recompute"},
                     {"preemptions", system.preemptions()},
                     {"requests_preempted", preempted},
                     {"by_recompute", system.preemptions() - swaps},
                     {"by_swap", swaps},
                     {"tokens_recomputed", recomputed},
                     {"swap_bytes", swap_bytes}};
  if (config.speculative) {
    const Speculative& sp = *config.speculative;
    const SpeculativeCounts& c = system.speculative();
    const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    const double verified = static_cast<double>(c.verified);
    s["speculative"] = {
        {"tokens", sp.tokens},
        {"acceptance", sp.acceptance},
        {"expected_tokens_per_step", sp.expected_tokens_per_step()},
        {"steps", c.steps},
        {"request_steps", c.verified},
        {"drafted_tokens", c.drafted},
        {"accepted_tokens", c.accepted},
        {"acceptance_rate", ratio(static_cast<double>(c.accepted), static_cast<double>(c.drafted))},
        {"tokens_per_step", ratio(static_cast<double>(c.accepted) + verified, verified)},
        {"emitted_tokens_per_step", ratio(static_cast<double>(c.emitted_tokens), verified)},
        {"draft_seconds", c.draft_s},
        {"verify_seconds", c.verify_s},
        {"draft_share", ratio(c.draft_s, c.draft_s + c.verify_s)}};
  }
  summarize_sessions(system, config, s);
  s["goodput"] = {{"ttft_slo_s", config.ttft_slo_s},
                  {"tpot_slo_s", config.tpot_slo_s},
                  {"requests", good},
                  {"fraction", done ? static_cast<double>(good) / static_cast<double>(done) : 0.0},
                  {"requests_per_s", span > 0 ? static_cast<double>(good) / span : 0.0}};
}

void summarize_faults(const ServingSystem& system, nlohmann::json& faults) {
  std::uint64_t affected = 0, reroutes = 0, reprefills = 0, resends = 0, resent_bytes = 0, recomputed = 0;
  nlohmann::json reasons = nlohmann::json::object();
  for (const RequestRecord& r : system.records()) {
    affected += r.reroutes > 0 || r.rejected() ? 1 : 0;
    reroutes += r.reroutes;
    reprefills += r.reprefills;
    resends += r.kv_resends;
    resent_bytes += r.kv_bytes_resent;
    recomputed += r.tokens_recomputed;
    if (r.rejected()) reasons[r.reason] = reasons.value(r.reason, 0) + 1;
  }
  faults["decode_failures"] = system.decode_failures();
  faults["requests_rerouted_or_rejected"] = affected;
  faults["reroutes"] = reroutes;
  faults["reprefills"] = reprefills;
  faults["kv_resends"] = resends;
  faults["kv_bytes_resent"] = resent_bytes;
  faults["tokens_recomputed"] = recomputed;
  faults["rejected"] = system.rejected();
  faults["rejected_reasons"] = reasons;
}

std::string tokens_csv(const ServingSystem& system) {
  sim::CsvWriter csv({"request", "token", "time_s"});
  const auto& reqs = system.requests();
  const auto& times = system.token_times();
  for (std::size_t i = 0; i < times.size(); ++i) {
    for (std::size_t k = 0; k < times[i].size(); ++k) {
      csv.row({std::to_string(reqs[i].id), std::to_string(k), sim::fmt_num(times[i][k])});
    }
  }
  return csv.str();
}

std::string requests_csv(const ServingSystem& system) {
  sim::CsvWriter csv({"request",
                      "arrival_s",
                      "input_tokens",
                      "output_tokens",
                      "prefix_hit_tokens",
                      "prefill_instance",
                      "prefill_start_s",
                      "prefill_end_s",
                      "kv_bytes",
                      "transfer_start_s",
                      "transfer_end_s",
                      "decode_system",
                      "decode_start_s",
                      "first_token_s",
                      "last_token_s",
                      "tokens_out",
                      "state",
                      "reason",
                      "reroutes",
                      "reprefills",
                      "kv_resends",
                      "kv_bytes_resent",
                      "tokens_recomputed",
                      "preemptions",
                      "preempt_tokens_recomputed",
                      "swap_bytes"});
  const auto& reqs = system.requests();
  const auto& recs = system.records();
  // Traces of sessions add each request's session and turn (other traces keep their
  // columns as they were).
  const bool sessions = !reqs.empty() && reqs.front().in_session();
  if (sessions) {
    sim::CsvWriter with({"request",
                         "session",
                         "turn",
                         "arrival_s",
                         "input_tokens",
                         "new_tokens",
                         "output_tokens",
                         "prefix_hit_tokens",
                         "prefill_instance",
                         "prefill_start_s",
                         "prefill_end_s",
                         "kv_bytes",
                         "kv_retained_tokens",
                         "kv_bytes_saved",
                         "kv_reload_s",
                         "transfer_start_s",
                         "transfer_end_s",
                         "decode_system",
                         "decode_start_s",
                         "first_token_s",
                         "last_token_s",
                         "tokens_out",
                         "state",
                         "reason"});
    for (std::size_t i = 0; i < recs.size(); ++i) {
      const RequestRecord& r = recs[i];
      with.row({std::to_string(reqs[i].id),
                std::to_string(reqs[i].session),
                std::to_string(reqs[i].turn),
                t(r.arrival_s),
                std::to_string(reqs[i].input_tokens),
                std::to_string(reqs[i].new_tokens),
                std::to_string(reqs[i].output_tokens),
                std::to_string(r.prefix_hit_tokens),
                std::to_string(r.prefill_instance),
                t(r.prefill_start_s),
                t(r.first_token_s),
                std::to_string(r.kv_bytes),
                std::to_string(r.kv_retained_tokens),
                std::to_string(r.kv_bytes_saved),
                sim::fmt_num(r.kv_reload_s),
                t(r.kv_start_s),
                t(r.kv_end_s),
                std::to_string(r.decode_system),
                t(r.decode_start_s),
                t(r.first_token_s),
                t(r.last_token_s),
                std::to_string(r.tokens_out),
                r.state(),
                r.reason});
    }
    return with.str();
  }
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const RequestRecord& r = recs[i];
    csv.row({std::to_string(reqs[i].id),
             t(r.arrival_s),
             std::to_string(reqs[i].input_tokens),
             std::to_string(reqs[i].output_tokens),
             std::to_string(r.prefix_hit_tokens),
             std::to_string(r.prefill_instance),
             t(r.prefill_start_s),
             t(r.first_token_s),
             std::to_string(r.kv_bytes),
             t(r.kv_start_s),
             t(r.kv_end_s),
             std::to_string(r.decode_system),
             t(r.decode_start_s),
             t(r.first_token_s),
             t(r.last_token_s),
             std::to_string(r.tokens_out),
             r.state(),
             r.reason,
             std::to_string(r.reroutes),
             std::to_string(r.reprefills),
             std::to_string(r.kv_resends),
             std::to_string(r.kv_bytes_resent),
             std::to_string(r.tokens_recomputed),
             std::to_string(r.preemptions),
             std::to_string(r.preempt_tokens_recomputed),
             std::to_string(r.swap_bytes)});
  }
  return csv.str();
}

}  // namespace wse::serving
