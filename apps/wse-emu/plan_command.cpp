// `wse-emu plan PLAN.yaml --out DIR [--backend local|slurm] [--jobs N]` (plan_command.h).
//
// Layout of DIR:
//   plan.csv        one row per deployment run: workload, rate, pools, whether it met the
//                   SLOs, the SLO figures and the objective (written last, atomically)
//   frontier.csv    per workload and rate: the fewest prefill machines for each decode
//                   pool size, and the best deployment by the objective
//   points/<id>/    each run's `wse-emu run` outputs (resumed: complete points are not rerun)
#include "apps/wse-emu/plan_command.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "apps/wse-emu/cli.h"
#include "apps/wse-emu/sweep_command.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"
#include "systemc_models/units/units.h"
#include "workloads/model/transformer.h"

namespace fs = std::filesystem;

namespace wse::app {

// ---- the search ----------------------------------------------------------------------

PlanSearch::PlanSearch(std::uint32_t p_min, std::uint32_t p_max, std::uint32_t d_min, std::uint32_t d_max)
    : p_min_(p_min), p_max_(p_max), d_min_(d_min), d_max_(d_max) {
  for (std::uint32_t d = d_min; d <= d_max; ++d) bisect_[d] = Bisection{p_min, p_max + 1};
}

std::optional<bool> PlanSearch::implied_outcome(std::uint32_t p, std::uint32_t d) const {
  bool met = false, missed = false;
  for (const auto& [pd, ok] : measured_) {
    if (ok && pd.first <= p && pd.second <= d) met = true;
    if (!ok && pd.first >= p && pd.second >= d) missed = true;
  }
  if (met == missed) return std::nullopt;  // nothing known, or measured results disagree: run it
  return met;
}

std::optional<bool> PlanSearch::known(std::uint32_t p, std::uint32_t d) const {
  if (auto it = measured_.find({p, d}); it != measured_.end()) return it->second;
  return implied_outcome(p, d);
}

bool PlanSearch::implied(std::uint32_t p, std::uint32_t d) const {
  return !measured_.contains({p, d}) && implied_outcome(p, d).has_value();
}

void PlanSearch::settle() {
  for (auto& [d, b] : bisect_) {
    while (!b.done) {
      // First the largest pool (settles whether d can meet the SLOs at all), then bisection.
      const std::uint32_t q = b.hi == p_max_ + 1 ? p_max_ : b.lo + (b.hi - b.lo) / 2;
      if (b.lo >= b.hi) {
        b.done = true;
        break;
      }
      const std::optional<bool> k = known(q, d);
      if (!k) break;
      if (*k) {
        b.hi = q;
      } else if (q == p_max_) {
        b.lo = b.hi = p_max_ + 1;  // even the largest pool misses
      } else {
        b.lo = q + 1;
      }
    }
  }
}

std::vector<std::pair<std::uint32_t, std::uint32_t>> PlanSearch::next_round() {
  settle();
  std::vector<std::pair<std::uint32_t, std::uint32_t>> round;
  for (const auto& [d, b] : bisect_) {
    if (b.done) continue;
    round.emplace_back(b.hi == p_max_ + 1 ? p_max_ : b.lo + (b.hi - b.lo) / 2, d);
  }
  return round;
}

void PlanSearch::record(std::uint32_t p, std::uint32_t d, bool met) { measured_[{p, d}] = met; }

std::optional<std::uint32_t> PlanSearch::fewest(std::uint32_t d) const {
  const auto it = bisect_.find(d);
  if (it == bisect_.end() || !it->second.done || it->second.hi > p_max_) return std::nullopt;
  return it->second.hi;
}

std::vector<std::pair<std::pair<std::uint32_t, std::uint32_t>, std::pair<std::uint32_t, std::uint32_t>>>
PlanSearch::contradictions() const {
  std::vector<std::pair<std::pair<std::uint32_t, std::uint32_t>, std::pair<std::uint32_t, std::uint32_t>>>
      out;
  for (const auto& [miss, miss_ok] : measured_) {
    if (miss_ok) continue;
    for (const auto& [met, met_ok] : measured_) {
      if (met_ok && met.first <= miss.first && met.second <= miss.second) {
        out.push_back({miss, met});
        break;
      }
    }
  }
  return out;
}

// ---- the floor bound -----------------------------------------------------------------

std::uint32_t fewest_prefill_by_floor(std::vector<double> work_s, double span_s, double limit_s,
                                      double quantile) {
  if (work_s.empty() || !(span_s + limit_s > 0.0)) return 1;
  std::sort(work_s.begin(), work_s.end());
  const double rank = std::ceil(quantile / 100.0 * static_cast<double>(work_s.size()));
  const auto m = static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(work_s.size())));
  double w = 0.0;
  for (std::size_t i = 0; i < m; ++i) w += work_s[i];
  const double need = std::ceil(w / (span_s + limit_s));
  return need < 1.0 ? 1u : need > 1e9 ? 1000000000u : static_cast<std::uint32_t>(need);
}

std::uint32_t fewest_decode_by_floor(std::vector<double> work_s, std::size_t k, double window_s) {
  if (work_s.empty() || k == 0 || !(window_s > 0.0)) return 1;
  std::sort(work_s.begin(), work_s.end());
  double w = 0.0;
  for (std::size_t i = 0; i < std::min(k, work_s.size()); ++i) w += work_s[i];
  const double need = std::ceil(w / window_s);
  return need < 1.0 ? 1u : need > 1e9 ? 1000000000u : static_cast<std::uint32_t>(need);
}

// ---- the plan file -------------------------------------------------------------------

namespace {

using PlanError = InputFileError;

struct Pool {
  std::string key;  // configuration key path of the machine count
  std::uint32_t min = 1, max = 1;
};

struct Workload {
  std::string name;
  std::vector<std::string> overrides;
};

struct Slo {
  std::string figure;  // summary.json key path
  double limit = 0.0;  // the figure must be at most this
  std::string written;
};

struct Plan {
  std::string name;
  fs::path experiment;
  std::vector<std::string> fixed;
  std::vector<Workload> workloads;
  std::string rate_key;
  std::vector<std::string> rates;  // as written
  Pool prefill, decode;
  std::vector<Slo> slos;
  std::string objective;         // cost | power | machines | a summary figure path
  std::string objective_figure;  // the figure minimised (empty: machines)
  bool prune = true;             // rule out deployments by the floor bound (prune: false: run them)
};

Pool read_pool(config::Section& pools, const std::string& name) {
  config::Section n =
      pools.section(name, "the " + name + " machine count to size: {key: CONFIG.KEY, min: N, max: M}");
  Pool p;
  p.key = n.string("key", {.doc = "the configuration key of the " + name + " machine count"});
  p.min = static_cast<std::uint32_t>(
      n.integer("min", {.doc = "the fewest machines to try", .def = "1", .min = 1, .max = 4096}));
  p.max = static_cast<std::uint32_t>(
      n.integer("max", {.doc = "the most machines to try", .min = 1, .max = 4096}));
  if (p.min > p.max) {
    n.fail("max", "max (" + std::to_string(p.max) + ") is below min (" + std::to_string(p.min) +
                      "); give max >= min");
  }
  return p;
}

// A plain number written whole ("0.5", "1e3"), or nothing.
std::optional<double> plain_number(const std::string& text) {
  double v = 0.0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || text.empty() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Read through the configuration language (systemc_models/config/config.h), as
// experiment files are: every error names the plan's file:line:column and the key path,
// and a key nothing reads (a typo) is an error with "did you mean", never ignored.
Plan read_plan(const fs::path& file) {
  if (const auto why = not_a_file(file)) throw PlanError("plan file '" + file.string() + "' " + *why);
  config::Document doc = config::load(file);
  config::Section root = doc.root();
  Plan p;
  const std::string stem = file.stem().string();
  p.name = root.string("name", {.doc = "the plan's name", .def = stem});
  (void)root.string("description", {.doc = "what the plan is for", .def = ""});
  // Required keys and sections are checked after `finish`: a misspelt key may be why one
  // is missing.
  const std::string experiment =
      root.string("experiment", {.doc = "the base experiment file, relative to the plan file", .def = ""});
  if (std::optional<config::Section> set = root.optional_section(
          "set", "fixed overrides of every run, key path: value, e.g. {workload.trace.limit: 300}")) {
    for (const std::string& k : set->keys()) {
      p.fixed.push_back(k + "=" + set->value(k, "a fixed override of every run").yaml);
    }
  }
  if (std::optional<config::Section> w = root.optional_section(
          "workloads", "named variants of the workload: name: {key path: value, ...} ({} for the base)")) {
    const std::vector<std::string> names = w->keys();
    if (names.empty()) {
      root.fail("workloads",
                "maps a name to its overrides (a mapping, {} for the base experiment's workload); found an "
                "empty mapping");
    }
    for (const std::string& name : names) {
      Workload wl;
      wl.name = name;
      if (name.empty() ||
          name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
              std::string::npos) {
        w->fail(name, "workload name '" + name + "' names folders: use letters, digits and _");
      }
      if (std::optional<config::Section> o = w->optional_section(
              name, "the workload's overrides of the base experiment, key path: value; {} for none")) {
        for (const std::string& k : o->keys()) {
          wl.overrides.push_back(k + "=" + o->value(k, "an override of the workload").yaml);
        }
      }
      p.workloads.push_back(std::move(wl));
    }
  } else {
    p.workloads.push_back(Workload{"base", {}});
  }
  std::optional<config::Section> rates =
      root.optional_section("rates", "the arrival rates: {key: workload.trace.rate_scale, values: [...]}");
  if (rates) {
    p.rate_key = rates->string("key", {.doc = "the configuration key of the arrival rate"});
    const std::vector<config::Section::Value> values =
        rates->value_list("values", "the arrival rates, numbers > 0 given to rates.key");
    if (values.empty()) rates->fail("values", "needs a non-empty list of rates, found []");
    for (std::size_t i = 0; i < values.size(); ++i) {
      const config::Section::Value& v = values[i];
      const std::optional<double> rate =
          v.kind == config::Node::Kind::Scalar ? plain_number(v.text) : std::nullopt;
      if (!rate || !(*rate > 0.0)) {
        throw config::ConfigError(v.source, rates->key_path("values") + "[" + std::to_string(i) + "]",
                                  "expected a rate, a number > 0 (the value of " + p.rate_key +
                                      " in each run), found " +
                                      (v.kind == config::Node::Kind::Scalar ? "'" + v.text + "'" : v.text));
      }
      p.rates.push_back(v.text);
    }
  }
  std::optional<config::Section> pools = root.optional_section(
      "pools", "the two machine counts to size: {prefill: {key, min, max}, decode: {key, min, max}}");
  if (pools) {
    p.prefill = read_pool(*pools, "prefill");
    p.decode = read_pool(*pools, "decode");
    if (p.prefill.key == p.decode.key) {
      pools->section("decode", "")
          .fail("key", "both pools size '" + p.prefill.key + "'; give each its own key");
    }
  }
  std::optional<config::Section> slo =
      root.optional_section("slo", "summary figures and their upper limits, e.g. requests.ttft_s.p99: 2 s");
  if (slo) {
    for (const std::string& figure : slo->keys()) {
      Slo s;
      s.figure = figure;
      s.written = slo->string(figure, {.doc = "the figure's upper limit: a time with its unit, or a number"});
      // A time with its unit (the SLO figures of summary.json are in seconds), or a number.
      std::optional<double> limit;
      if (s.written.find_first_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos) {
        try {
          limit = parse_duration(s.written).seconds;
        } catch (const std::exception&) {
          limit.reset();
        }
      } else {
        limit = plain_number(s.written);
      }
      if (!limit) {
        slo->fail(figure, "SLO '" + figure + "' limit '" + s.written +
                              "' is neither a time (2 s, 50 ms) nor a number");
      }
      if (*limit < 0.0) {
        slo->fail(figure, "SLO '" + figure + "' limit '" + s.written +
                              "' is negative; an SLO is an upper limit, >= 0");
      }
      s.limit = *limit;
      p.slos.push_back(std::move(s));
    }
  }
  const std::string prune = root.string(
      "prune", {.doc = "rule out deployments by the floor bound (false: run them)", .def = "true"});
  p.objective = root.string(
      "objective", {.doc = "cost | power | machines | a summary figure path, minimised", .def = "cost"});
  doc.finish();  // a misspelt key first: it may be why something is missing

  if (experiment.empty()) {
    root.fail("experiment",
              "missing required key 'experiment' (the base experiment file, relative to the plan file)");
  }
  p.experiment = experiment;
  if (p.experiment.is_relative()) {
    p.experiment = fs::absolute(fs::path(root.source_of("experiment").file)).parent_path() / p.experiment;
  }
  p.experiment = p.experiment.lexically_normal();
  if (const auto why = not_a_file(p.experiment)) {
    root.fail("experiment", "base experiment '" + p.experiment.string() + "' " + *why);
  }
  if (!rates)
    root.fail("rates", "missing required section 'rates' ({key: workload.trace.rate_scale, values: [...]})");
  if (!pools) {
    root.fail("pools",
              "missing required section 'pools' ({prefill: {key, min, max}, decode: {key, min, max}})");
  }
  if (!slo || slo->keys().empty()) {
    root.fail(
        "slo",
        "missing required section 'slo': summary figures and their limits, e.g. requests.ttft_s.p99: 2 s");
  }
  if (prune != "true" && prune != "false") {
    root.fail("prune",
              "is '" + prune +
                  "'; give true (rule out deployments by the floor bound, the default) or false (run "
                  "every deployment the search asks for)");
  }
  p.prune = prune == "true";
  if (p.objective == "cost") {
    p.objective_figure = "cost.fleet_usd_per_hour";
  } else if (p.objective == "power") {
    p.objective_figure = "energy.mean_power_w";
  } else if (p.objective != "machines") {
    p.objective_figure = p.objective;  // a summary figure, minimised
  }
  return p;
}

// A summary figure by its dotted path, or nothing.
std::optional<double> figure(const nlohmann::json& summary, const std::string& path) {
  const nlohmann::json* j = &summary;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!j->is_object() || !j->contains(part)) return std::nullopt;
    j = &(*j)[part];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (!j->is_number()) return std::nullopt;
  return j->get<double>();
}

std::string fmt(double v) {
  std::ostringstream o;
  o << std::setprecision(10) << v;
  return o.str();
}

// A CSV field: quoted when it holds a comma, a quote or a line break.
std::string csv_text(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
  return q + "\"";
}

std::string point_id(const Plan& plan, std::size_t w, std::size_t r, std::uint32_t p, std::uint32_t d) {
  return plan.workloads[w].name + "-rate" + std::to_string(r) + "-p" + std::to_string(p) + "-d" +
         std::to_string(d);
}

std::vector<std::string> overrides(const Plan& plan, std::size_t w, std::size_t r, std::uint32_t p,
                                   std::uint32_t d) {
  std::vector<std::string> o = plan.fixed;
  o.insert(o.end(), plan.workloads[w].overrides.begin(), plan.workloads[w].overrides.end());
  o.push_back(plan.rate_key + "=" + plan.rates[r]);
  o.push_back(plan.prefill.key + "=" + std::to_string(p));
  o.push_back(plan.decode.key + "=" + std::to_string(d));
  return o;
}

// One run's outcome as plan.csv records it.
struct Outcome {
  std::string status;  // met | missed | invalid (not run: counted as missed)
  std::vector<std::optional<double>> slo_values;
  std::optional<double> objective;
  std::string note;
};

struct Scenario {
  std::size_t w, r;
  PlanSearch search;
  std::map<std::pair<std::uint32_t, std::uint32_t>, Outcome> outcomes;
  bool probed = false;              // the floor bound was derived (or found not to apply)
  std::uint32_t prefill_floor = 0;  // fewer prefill machines than this cannot meet a TTFT SLO
  std::string floor_reason;         // why (plan.csv `error` of a pruned deployment)
  std::uint32_t decode_floor = 0;   // fewer decode systems than this cannot meet the SLOs
  std::string decode_reason;        // why
};

// The quantile of a requests.<what> distribution that an SLO figure names
// (requests.ttft_s.p99 -> 99, .max -> 100), or nothing.
std::optional<double> quantile_of(const std::string& figure, const std::string& what) {
  const std::string prefix = "requests." + what + ".";
  if (figure.rfind(prefix, 0) != 0) return std::nullopt;
  const std::string q = figure.substr(prefix.size());
  if (q == "max") return 100.0;
  if (q.size() < 2 || q[0] != 'p' || q.find_first_not_of("0123456789", 1) != std::string::npos)
    return std::nullopt;
  const double v = std::stod(q.substr(1));
  if (v <= 0.0 || v > 100.0) return std::nullopt;
  return v;
}

std::optional<double> ttft_quantile(const std::string& figure) { return quantile_of(figure, "ttft_s"); }

// requests.csv as text columns by name (fields may be quoted).
std::vector<std::map<std::string, std::string>> read_requests(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          f.back() += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          f.back() += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        f.emplace_back();
      } else {
        f.back() += c;
      }
    }
    rows.push_back(std::move(f));
  }
  std::vector<std::map<std::string, std::string>> out;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    std::map<std::string, std::string> m;
    for (std::size_t c = 0; c < rows[0].size() && c < rows[r].size(); ++c) m[rows[0][c]] = rows[r][c];
    out.push_back(std::move(m));
  }
  return out;
}

// The files of the probe run both floor bounds read, each read at most once and only
// when a bound gets that far: summary.json, the resolved configuration (as YAML), and
// its requests (requests.csv) with the GEMM FLOPs per token of the model's decoder
// layers, which both bounds divide by a peak. requests() is nullopt when the run bounds
// nothing: no requests, or a trace of sessions (a turn arrives after the previous
// turn's answer, so its arrival depends on the deployment and the probe's arrivals
// bound nothing about the others).
struct ProbeRequests {
  std::vector<std::map<std::string, std::string>> rows;
  double layer_flops = 0.0;
};
class ProbeFiles {
 public:
  explicit ProbeFiles(fs::path folder) : dir_(std::move(folder)) {}
  const fs::path& dir() const { return dir_; }
  const nlohmann::json& summary() {
    if (!summary_) {
      std::ifstream in(dir_ / "summary.json");
      summary_ = nlohmann::json::parse(in);
    }
    return *summary_;
  }
  const YAML::Node& resolved() {
    if (!resolved_) resolved_ = YAML::LoadFile((dir_ / "config.resolved.yaml").string());
    return *resolved_;
  }
  const std::optional<ProbeRequests>& requests() {
    if (!requests_read_) {
      requests_read_ = true;
      ProbeRequests p;
      p.rows = read_requests(dir_ / "requests.csv");
      if (!p.rows.empty() && !p.rows.front().contains("session")) {
        config::Document doc = config::load(dir_ / "config.resolved.yaml");
        config::Section root = doc.root();
        config::Section ms = root.section("model", "the transformer");
        p.layer_flops = static_cast<double>(workloads::read_transformer(ms).layer_linear_flops_per_token());
        requests_ = std::move(p);
      }
    }
    return requests_;
  }

 private:
  fs::path dir_;
  std::optional<nlohmann::json> summary_;
  std::optional<YAML::Node> resolved_;
  bool requests_read_ = false;
  std::optional<ProbeRequests> requests_;
};

// The floor bound of a scenario from one of its runs (docs/plan.md, "Pruning with the
// floors"). Each request's prefill needs at least the GEMM FLOPs of its decoder layers,
// and a prefill machine does at most its tensor engines' peak, the figure its floor
// (`trainium.floor.prefill_pass.compute_s`) divides by:
//   w_i  = layer GEMM FLOPs per token x n_i / peak
//   peak = physical cores (prefill.tp_degree x prefill.lnc) x rows x columns x 2 x clock
//          x the most moving columns per cycle of any type
// read from the run's resolved configuration. Sets s.prefill_floor (0: no bound) and
// s.floor_reason.
void derive_prefill_floor(const Plan& plan, Scenario& s, ProbeFiles& run, std::uint32_t probe_prefill) {
  std::vector<std::pair<double, const Slo*>> ttft;
  for (const Slo& slo : plan.slos) {
    if (const auto q = ttft_quantile(slo.figure)) ttft.emplace_back(*q, &slo);
  }
  // The pool must be the Trainium prefill instances, one prefill machine each, each
  // running one pass at a time on all its cores.
  if (ttft.empty() || plan.prefill.key != "serving.prefill_instances") return;
  const nlohmann::json& summary = run.summary();
  if (!figure(summary, "trainium.floor.prefill_pass.passes")) return;
  std::ifstream st(run.dir() / "stats.json");
  if (!st) return;
  const nlohmann::json stats = nlohmann::json::parse(st);
  std::uint32_t machines = 0;
  if (stats.contains("machines") && stats["machines"].is_object()) {
    for (const auto& [k, v] : stats["machines"].items()) machines += k.rfind("trn_prefill", 0) == 0 ? 1 : 0;
  }
  if (machines != probe_prefill) return;
  const YAML::Node& cfg = run.resolved();
  const YAML::Node pf = cfg["prefill"];
  const YAML::Node te = cfg["trainium"]["neuroncore"]["tensor"];
  if (!pf || !te || pf["pp_degree"].as<int>(1) != 1 || pf["dp_degree"].as<int>(1) != 1 ||
      pf["cp_degree"].as<int>(1) != 1) {
    return;
  }
  // The floor's rate: the most moving columns per cycle of bf16 and of the types the
  // model's GEMM weights are stored in (a type not named here: the most of any type).
  const auto moving_of = [&](const std::string& type) {
    double most = 0.0;
    for (const char* k : {"moving_per_cycle_bf16", "moving_per_cycle_fp8", "moving_per_cycle_fp32"}) {
      if (te[k]) most = std::max(most, te[k].as<double>());
    }
    const std::string key = type == "bf16" || type == "fp16" ? "moving_per_cycle_bf16"
                            : type.rfind("fp8", 0) == 0      ? "moving_per_cycle_fp8"
                            : type == "fp32"                 ? "moving_per_cycle_fp32"
                                                             : "";
    return !key.empty() && te[key] ? te[key].as<double>() : most;
  };
  double moving = moving_of("bf16");
  for (const char* k : {"weight_dtype", "linear_weight_dtype", "expert_weight_dtype"}) {
    if (cfg["model"][k]) moving = std::max(moving, moving_of(cfg["model"][k].as<std::string>()));
  }
  const double peak = pf["tp_degree"].as<double>() * pf["lnc"].as<double>() * te["rows"].as<double>() *
                      te["columns"].as<double>() * 2.0 * parse_frequency(te["clock"].as<std::string>()).hz *
                      moving;
  if (!(peak > 0.0)) return;
  const std::optional<ProbeRequests>& probe = run.requests();
  if (!probe) return;
  const auto& rows = probe->rows;
  const double layer_flops = probe->layer_flops;
  std::vector<double> work;
  double first = std::numeric_limits<double>::infinity(), last = -first;
  for (const auto& r : rows) {
    // Only a trace whose every request was prefilled once, whole, fits the bound: a
    // rejected request is absent from the TTFT percentiles, and a prefix hit skips work.
    const auto num = [&](const std::string& k) {
      return r.contains(k) && !r.at(k).empty() ? std::stod(r.at(k)) : 0.0;
    };
    if (!r.contains("state") || r.at("state") != "completed" || num("prefix_hit_tokens") != 0.0) return;
    work.push_back(layer_flops * num("input_tokens") / peak);
    first = std::min(first, num("arrival_s"));
    last = std::max(last, num("arrival_s"));
  }
  const double span = last - first;
  for (const auto& [q, slo] : ttft) {
    const std::uint32_t need = fewest_prefill_by_floor(work, span, slo->limit, q);
    if (need <= s.prefill_floor) continue;
    s.prefill_floor = need;
    std::vector<double> sorted = work;
    std::sort(sorted.begin(), sorted.end());
    const auto m = static_cast<std::size_t>(std::clamp(
        std::ceil(q / 100.0 * static_cast<double>(sorted.size())), 1.0, static_cast<double>(sorted.size())));
    double w = 0.0;
    for (std::size_t i = 0; i < m; ++i) w += sorted[i];
    s.floor_reason = "prefill floor: the " + std::to_string(m) + " of " + std::to_string(sorted.size()) +
                     " requests that " + slo->figure + " <= " + slo->written + " needs take at least " +
                     fmt(w) + " machine-s of prefill (their decoder GEMMs at the tensor engines' peak, " +
                     fmt(peak) + " FLOP/s), more than p x (arrival span " + fmt(span) + " s + " +
                     fmt(slo->limit) + " s) for p < " + std::to_string(need);
  }
}

// The decode floor bound of a scenario from one of its runs (docs/plan.md, "The decode
// floor"). An SLO that gives each request it holds a deadline for its last token:
//   requests.e2e_s.pQ <= L:  k = ceil(Q/100 x N) requests end by a_i + L;
//   requests.ttft_s.pA <= L_T and requests.tpot_s.pB <= L_P: at least
//     k = ceil(A/100 x N) + ceil(B/100 x N_P) - N requests (N_P: those with more than one
//     output token, TPOT's population) meet both, and end by a_i + L_T + (o_i - 1) x L_P.
// Their o_i - 1 decode tokens each need the decoder GEMM FLOPs G on one decode system,
// whose peak is decode.wafers x PEs x fp16 FMAC SIMD width x 2 x clock (the rate
// `wafer.floor.decode_step.compute_s` divides by), between the first arrival and the
// latest deadline:
//   d >= ceil(W_k / window),  W_k = the k smallest (o_i - 1) x G / peak.
// Sets s.decode_floor (0: no bound) and s.decode_reason.
void derive_decode_floor(const Plan& plan, Scenario& s, ProbeFiles& run) {
  // The pool must be the CS-3 decode systems of a wafer-decode mode, each a replica.
  if (plan.decode.key != "serving.decode_systems") return;
  std::vector<std::pair<double, const Slo*>> ttft, tpot, e2e;
  for (const Slo& slo : plan.slos) {
    if (const auto q = quantile_of(slo.figure, "ttft_s")) ttft.emplace_back(*q, &slo);
    if (const auto q = quantile_of(slo.figure, "tpot_s")) tpot.emplace_back(*q, &slo);
    if (const auto q = quantile_of(slo.figure, "e2e_s")) e2e.emplace_back(*q, &slo);
  }
  if (e2e.empty() && (ttft.empty() || tpot.empty())) return;
  const nlohmann::json& summary = run.summary();
  const std::optional<double> wafers = figure(summary, "wafer.wafers_per_decode_system");
  const std::optional<double> steps = figure(summary, "wafer.decode_steps");
  if (!wafers || !(*wafers >= 1.0) || !steps || !(*steps > 0.0)) return;
  const YAML::Node& cfg = run.resolved();
  const YAML::Node wf = cfg["wafer"];
  if (!wf || !wf["width"] || !wf["height"] || !wf["clock"] || !wf["pe"] || !wf["pe"]["simd_fp16_fmac"])
    return;
  // Every PE of every wafer of the system (a decode.region uses fewer: still a bound).
  const double peak = *wafers * wf["width"].as<double>() * wf["height"].as<double>() *
                      wf["pe"]["simd_fp16_fmac"].as<double>() * 2.0 *
                      parse_frequency(wf["clock"].as<std::string>()).hz;
  if (!(peak > 0.0)) return;
  const std::optional<ProbeRequests>& probe = run.requests();
  if (!probe) return;
  const auto& rows = probe->rows;
  const double layer_flops = probe->layer_flops;
  struct Req {
    double arrival, out, work;
  };
  std::vector<Req> reqs;
  double first = std::numeric_limits<double>::infinity();
  for (const auto& r : rows) {
    // A rejected request is absent from the percentiles: only a run whose every request
    // completed fits the bound.
    const auto num = [&](const std::string& k) {
      return r.contains(k) && !r.at(k).empty() ? std::stod(r.at(k)) : 0.0;
    };
    if (!r.contains("state") || r.at("state") != "completed" || !r.contains("tokens_out")) return;
    const double out = num("tokens_out");
    reqs.push_back(Req{num("arrival_s"), out, std::max(0.0, out - 1.0) * layer_flops / peak});
    first = std::min(first, reqs.back().arrival);
  }
  const double n = static_cast<double>(reqs.size());
  const auto rank = [](double q, double count) {
    return static_cast<std::size_t>(std::clamp(std::ceil(q / 100.0 * count), 1.0, count));
  };
  const auto consider = [&](std::size_t k, const std::vector<double>& work, double window,
                            const std::string& which) {
    const std::uint32_t need = fewest_decode_by_floor(work, k, window);
    if (need <= s.decode_floor) return;
    s.decode_floor = need;
    std::vector<double> sorted = work;
    std::sort(sorted.begin(), sorted.end());
    double w = 0.0;
    for (std::size_t i = 0; i < std::min(k, sorted.size()); ++i) w += sorted[i];
    s.decode_reason =
        "decode floor: the " + std::to_string(k) + " of " + std::to_string(reqs.size()) + " requests that " +
        which + " needs take at least " + fmt(w) +
        " system-s of decode (their output tokens after the first, the decoder GEMMs of each at "
        "the decode system's peak, " +
        fmt(peak) + " FLOP/s), more than d x (their latest deadline - the first arrival, " + fmt(window) +
        " s) for d < " + std::to_string(need);
  };
  for (const auto& [q, slo] : e2e) {
    std::vector<double> work;
    double last = -std::numeric_limits<double>::infinity();
    for (const Req& r : reqs) {
      work.push_back(r.work);
      last = std::max(last, r.arrival);
    }
    consider(rank(q, n), work, last + slo->limit - first, slo->figure + " <= " + slo->written);
  }
  for (const auto& [qt, st] : ttft) {
    for (const auto& [qp, sp] : tpot) {
      std::vector<double> work;
      double deadline = -std::numeric_limits<double>::infinity();
      for (const Req& r : reqs) {
        if (r.out <= 1.0) continue;  // outside TPOT's population
        work.push_back(r.work);
        deadline = std::max(deadline, r.arrival + st->limit + (r.out - 1.0) * sp->limit);
      }
      if (work.empty()) continue;
      const std::size_t mt = rank(qt, n), mp = rank(qp, static_cast<double>(work.size()));
      if (mt + mp <= reqs.size()) continue;  // no request need meet both
      consider(mt + mp - reqs.size(), work, deadline - first,
               st->figure + " <= " + st->written + " and " + sp->figure + " <= " + sp->written);
    }
  }
}

// The floor bounds of a scenario from its first run; a bound whose outputs cannot be read
// is not derived (every deployment it would rule out runs).
void derive_floor(const Plan& plan, Scenario& s, const fs::path& dir, std::uint32_t probe_prefill,
                  const std::string& label) {
  s.probed = true;
  ProbeFiles run(dir);
  try {
    derive_prefill_floor(plan, s, run, probe_prefill);
  } catch (const std::exception& e) {
    s.prefill_floor = 0;
    std::cerr << "wse-emu: note: no prefill floor bound for " << label << ": " << e.what() << "\n";
  }
  try {
    derive_decode_floor(plan, s, run);
  } catch (const std::exception& e) {
    s.decode_floor = 0;
    std::cerr << "wse-emu: note: no decode floor bound for " << label << ": " << e.what() << "\n";
  }
}

}  // namespace

int run_plan(const sim::Registry& registry, const PlanOptions& opt) {
  Plan plan;
  try {
    plan = read_plan(opt.plan_file);
  } catch (const PlanError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const config::ConfigError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  }
  plan.prune = plan.prune && opt.prune;
  // The largest deployment of every workload and rate must be a valid configuration: a
  // mistyped key or value is bad input, not "does not meet the SLOs".
  for (std::size_t w = 0; w < plan.workloads.size(); ++w) {
    for (std::size_t r = 0; r < plan.rates.size(); ++r) {
      if (auto err = validate_experiment(registry, plan.experiment,
                                         overrides(plan, w, r, plan.prefill.max, plan.decode.max))) {
        std::cerr << "wse-emu: error: plan " << opt.plan_file.string() << ", workload "
                  << plan.workloads[w].name << " at " << plan.rate_key << "=" << plan.rates[r]
                  << " with the largest pools: " << *err << "\n";
        return kExitBadInput;
      }
    }
  }
  const fs::path out = fs::absolute(opt.out_dir).lexically_normal();
  if (!opt.force && sim::directory_in_use(out) && !fs::exists(out / "points")) {
    std::cerr << "wse-emu: error: " << sim::output_in_use_message(out) << "\n";
    return kExitBadInput;
  }
  std::vector<Scenario> scenarios;
  for (std::size_t w = 0; w < plan.workloads.size(); ++w) {
    for (std::size_t r = 0; r < plan.rates.size(); ++r) {
      scenarios.push_back(
          Scenario{w,
                   r,
                   PlanSearch(plan.prefill.min, plan.prefill.max, plan.decode.min, plan.decode.max),
                   {},
                   false,
                   0,
                   {},
                   0,
                   {}});
    }
  }
  try {
    sim::create_output_directory(out / "points");
    const sim::FolderClaim claim(out);
    if (!claim.refused().empty()) {
      std::cerr << "wse-emu: error: " << claim.refused() << "\n";
      return kExitBadInput;
    }
    // With the decode floor bound in play (a decode pool of CS-3 decode systems to size and
    // an SLO that sets deadlines), each scenario's first round runs its largest deployment
    // alone: the bounds come from it, before the smaller decode pools are asked.
    bool e2e = false, ttft = false, tpot = false;
    for (const Slo& slo : plan.slos) {
      e2e = e2e || quantile_of(slo.figure, "e2e_s");
      ttft = ttft || quantile_of(slo.figure, "ttft_s");
      tpot = tpot || quantile_of(slo.figure, "tpot_s");
    }
    const bool deadlines = e2e || (ttft && tpot);
    const bool probe_first = plan.prune && plan.decode.key == "serving.decode_systems" &&
                             plan.decode.min < plan.decode.max && deadlines;
    for (int round = 1;; ++round) {
      std::vector<PointSpec> specs;
      std::vector<std::pair<Scenario*, std::pair<std::uint32_t, std::uint32_t>>> asked;
      bool refused = false;  // a deployment recorded as invalid: the searches moved without a run
      for (Scenario& s : scenarios) {
        std::vector<std::pair<std::uint32_t, std::uint32_t>> ask = s.search.next_round();
        if (probe_first && !s.probed && !ask.empty()) {
          // The decode floor bound can rule out the smaller decode pools that the first
          // round would ask: first the largest deployment alone (the probe), the rest after.
          ask = {*std::max_element(ask.begin(), ask.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; })};
        }
        for (const auto& pd : ask) {
          const auto [p, d] = pd;
          const std::vector<std::string> o = overrides(plan, s.w, s.r, p, d);
          if (plan.prune && (p < s.prefill_floor || d < s.decode_floor)) {
            // Ruled out by a floor bound: it cannot meet the SLOs; recorded, not run.
            std::string why = p < s.prefill_floor ? s.floor_reason : "";
            if (d < s.decode_floor) why += (why.empty() ? "" : "; ") + s.decode_reason;
            s.search.record(p, d, false);
            s.outcomes[pd] =
                Outcome{"pruned", std::vector<std::optional<double>>(plan.slos.size()), std::nullopt, why};
            refused = true;
            continue;
          }
          if (auto err = validate_experiment(registry, plan.experiment, o)) {
            // A smaller deployment the configuration refuses (e.g. the model's weights do
            // not fit fewer machines): it cannot meet the SLOs; recorded, not run. (The
            // largest deployment was checked above: the keys and values are sound.)
            s.search.record(p, d, false);
            s.outcomes[pd] =
                Outcome{"invalid", std::vector<std::optional<double>>(plan.slos.size()), std::nullopt, *err};
            refused = true;
            continue;
          }
          specs.push_back(PointSpec{point_id(plan, s.w, s.r, p, d),
                                    plan.workloads[s.w].name + " rate " + plan.rates[s.r] + ": " +
                                        std::to_string(p) + " prefill, " + std::to_string(d) + " decode",
                                    o});
          asked.push_back({&s, pd});
        }
      }
      if (specs.empty()) {
        if (!refused) break;  // every search is done
        continue;             // only invalid deployments this round: ask again
      }
      if (!opt.quiet) {
        std::cerr << "plan " << plan.name << ": round " << round << ", " << specs.size()
                  << " deployment(s) (those complete in DIR from an earlier run are reused)\n";
      }
      if (const int sig = run_point_specs(plan.experiment, specs, out, opt.backend, opt.jobs, opt.quiet);
          sig != 0) {
        std::cerr << "wse-emu: plan stopped by signal " << sig << "; rerun the same command to resume\n";
        return 128 + sig;
      }
      for (std::size_t i = 0; i < specs.size(); ++i) {
        auto& [s, pd] = asked[i];
        const fs::path dir = out / "points" / specs[i].id;
        std::ifstream in(dir / "summary.json");
        if (!in) {
          std::cerr << "wse-emu: error: plan point " << specs[i].id << " (" << specs[i].label
                    << ") failed: " << last_error_line(dir / "stderr.txt") << " (see "
                    << (dir / "stderr.txt").string() << ")\n";
          return kExitRunFailed;
        }
        const nlohmann::json summary = nlohmann::json::parse(in);
        Outcome o;
        bool met = true;
        for (const Slo& slo : plan.slos) {
          const std::optional<double> v = figure(summary, slo.figure);
          if (!v) {
            std::cerr << "wse-emu: error: " << opt.plan_file.string() << ": SLO figure '" << slo.figure
                      << "' is not in the summary.json of " << dir.string()
                      << "; give a numeric key path of summary.json (e.g. requests.ttft_s.p99)\n";
            return kExitBadInput;
          }
          o.slo_values.push_back(v);
          met = met && *v <= slo.limit;
        }
        if (!plan.objective_figure.empty()) {
          o.objective = figure(summary, plan.objective_figure);
          if (!o.objective) {
            std::cerr << "wse-emu: error: " << opt.plan_file.string() << ": objective '" << plan.objective
                      << "' (figure " << plan.objective_figure << ") is not in the summary.json of "
                      << dir.string()
                      << "; use cost, power, machines or a numeric key path of summary.json\n";
            return kExitBadInput;
          }
        } else {
          o.objective = pd.first + pd.second;
        }
        o.status = met ? "met" : "missed";
        s->search.record(pd.first, pd.second, met);
        s->outcomes[pd] = std::move(o);
        if (plan.prune && !s->probed) derive_floor(plan, *s, dir, pd.first, specs[i].label);
      }
    }

    // plan.csv: every deployment run (or found not to fit), in scenario order.
    std::ostringstream csv;
    csv << "workload,rate,prefill,decode,status";
    for (const Slo& slo : plan.slos) csv << "," << slo.figure;
    csv << ",objective,point,error\n";
    std::ostringstream front;
    front << "workload,rate,decode,fewest_prefill,prefill_per_decode,objective,best\n";
    std::ostringstream table;
    std::size_t runs = 0, pruned = 0;
    for (Scenario& s : scenarios) {
      const std::string& wname = plan.workloads[s.w].name;
      for (const auto& [pd, o] : s.outcomes) {
        csv << wname << "," << plan.rates[s.r] << "," << pd.first << "," << pd.second << "," << o.status;
        for (const auto& v : o.slo_values) csv << "," << (v ? fmt(*v) : "");
        csv << "," << (o.objective ? fmt(*o.objective) : "") << ","
            << (o.status == "invalid" || o.status == "pruned" ? ""
                                                              : point_id(plan, s.w, s.r, pd.first, pd.second))
            << "," << csv_text(o.note) << "\n";
        if (o.status == "pruned") ++pruned;
        if (o.status != "invalid" && o.status != "pruned") ++runs;
      }
      // The best: the lowest objective among the fewest-prefill points (ties: fewer machines).
      std::optional<std::pair<std::uint32_t, std::uint32_t>> best;
      double best_v = std::numeric_limits<double>::infinity();
      for (std::uint32_t d = plan.decode.min; d <= plan.decode.max; ++d) {
        const auto p = s.search.fewest(d);
        if (!p) continue;
        const auto it = s.outcomes.find({*p, d});
        if (it == s.outcomes.end() || !it->second.objective) continue;  // implied by a smaller deployment
        const double v = *it->second.objective;
        if (v < best_v || (v == best_v && best && *p + d < best->first + best->second)) {
          best_v = v;
          best = std::make_pair(*p, d);
        }
      }
      for (std::uint32_t d = plan.decode.min; d <= plan.decode.max; ++d) {
        const auto p = s.search.fewest(d);
        front << wname << "," << plan.rates[s.r] << "," << d << "," << (p ? std::to_string(*p) : "") << ","
              << (p ? fmt(static_cast<double>(*p) / d) : "") << ",";
        const auto it = p ? s.outcomes.find({*p, d}) : s.outcomes.end();
        front << (it != s.outcomes.end() && it->second.objective ? fmt(*it->second.objective) : "") << ","
              << (best && p && best->first == *p && best->second == d ? 1 : 0) << "\n";
      }
      table << "  " << std::left << std::setw(16) << wname << std::setw(10) << plan.rates[s.r];
      if (best) {
        table << std::setw(10) << best->first << std::setw(10) << best->second << std::setw(14)
              << fmt(static_cast<double>(best->first) / best->second) << fmt(best_v) << "\n";
      } else {
        table << "no deployment up to " << plan.prefill.max << " prefill x " << plan.decode.max
              << " decode meets the SLOs\n";
      }
      if (plan.prune && s.prefill_floor > 1) {
        table << "    floor bound: " << s.prefill_floor << " prefill machines at least (" << s.floor_reason
              << ")\n";
      }
      if (plan.prune && s.decode_floor > 1) {
        table << "    floor bound: " << s.decode_floor << " decode systems at least (" << s.decode_reason
              << ")\n";
      }
      for (const auto& [miss, met] : s.search.contradictions()) {
        std::cerr << "wse-emu: note: " << wname << " rate " << plan.rates[s.r] << ": " << miss.first
                  << " prefill x " << miss.second << " decode missed the SLOs although " << met.first << " x "
                  << met.second
                  << " met them (more machines made it worse; the search assumes they never do)\n";
      }
    }
    sim::write_file_atomic(out / "plan.csv", csv.str());
    sim::write_file_atomic(out / "frontier.csv", front.str());
    std::cout << "plan " << plan.name << ": " << runs << " run(s), " << pruned
              << " pruned by the floor bound (not run)" << (plan.prune ? "" : " [pruning off]")
              << "; objective " << plan.objective
              << (plan.objective_figure.empty() || plan.objective_figure == plan.objective
                      ? std::string()
                      : " (" + plan.objective_figure + ")")
              << ", SLOs";
    for (const Slo& slo : plan.slos) std::cout << " " << slo.figure << " <= " << slo.written;
    std::cout << "\n  " << std::left << std::setw(16) << "workload" << std::setw(10) << "rate"
              << std::setw(10) << "prefill" << std::setw(10) << "decode" << std::setw(14) << "per decode"
              << "objective\n"
              << table.str() << (out / "plan.csv").string() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "wse-emu: plan failed: " << e.what() << "\n";
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace wse::app
