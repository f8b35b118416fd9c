#include "apps/wse-emu/compare_command.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "apps/wse-emu/cli.h"
#include "systemc_models/sim/output.h"

namespace fs = std::filesystem;

namespace wse::app {

namespace {

// A run folder's summary, read and checked before anything is written.
struct Run {
  std::string name;  // as shown: the folder's name (made unique with its parent when needed)
  fs::path dir;
  nlohmann::json summary;
};

class CompareInputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Run read_run(const fs::path& dir) {
  const fs::path file = dir / "summary.json";
  std::ifstream in(file);
  if (!in) {
    throw CompareInputError("'" + file.string() + "': no summary.json in '" + dir.string() +
                            "'; give folders written by 'wse-emu run' or a sweep's output folder");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Run r;
  r.dir = dir;
  try {
    r.summary = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw CompareInputError("'" + file.string() + "': not JSON (" + e.what() +
                            "); rerun 'wse-emu run' into '" + dir.string() + "'");
  }
  if (!r.summary.is_object() || !r.summary.contains("experiment")) {
    throw CompareInputError("'" + file.string() +
                            "': not a wse-emu summary (no 'experiment' key); rerun 'wse-emu run' into '" +
                            dir.string() + "'");
  }
  return r;
}

// The run folders a path stands for: itself, or a sweep output folder's points.
std::vector<fs::path> expand(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) {
    throw CompareInputError("'" + p.string() + "': not a folder; give run folders written by 'wse-emu run'");
  }
  if (fs::exists(p / "summary.json") || !fs::is_directory(p / "points", ec)) return {p};
  std::vector<fs::path> points;
  for (const auto& e : fs::directory_iterator(p / "points")) {
    if (e.is_directory()) points.push_back(e.path());
  }
  std::sort(points.begin(), points.end());
  if (points.empty())
    throw CompareInputError("'" + (p / "points").string() + "': a sweep folder without points");
  return points;
}

std::string cell(const nlohmann::json* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_number()) return sim::fmt_num(v->get<double>());
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

// value / baseline, when both are numbers and the baseline is not zero.
std::string ratio(const nlohmann::json* v, const nlohmann::json* b) {
  if (!v || !b || !v->is_number() || !b->is_number()) return "-";
  const double bv = b->get<double>();
  if (bv == 0.0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v->get<double>() / bv);
  return buf;
}

// A number as the table shows it: 4 significant digits (compare.csv keeps 9).
std::string brief(const std::string& v) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size()) return v;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", d);
  return buf;
}

}  // namespace

const std::vector<CompareFigure>& compare_figures() {
  static const std::vector<CompareFigure> figures = {
      {"mode", "mode"},
      {"simulated_s", "simulated_time_s"},
      {"requests_completed", "requests.completed"},
      {"ttft_p50_s", "requests.ttft_s.p50"},
      {"ttft_p99_s", "requests.ttft_s.p99"},
      {"tpot_p50_s", "requests.tpot_s.p50"},
      {"tpot_p99_s", "requests.tpot_s.p99"},
      {"e2e_p50_s", "requests.e2e_s.p50"},
      {"output_tokens_per_s", "throughput.output_tokens_per_s"},
      {"goodput_fraction", "goodput.fraction"},
      {"goodput_requests_per_s", "goodput.requests_per_s"},
      {"tokens_per_joule_output", "energy.tokens_per_joule.output"},
      {"tokens_per_joule_all", "energy.tokens_per_joule.all"},
      {"usd_per_million_output_tokens", "cost.usd_per_million_output_tokens"},
      {"usd_per_million_tokens", "cost.usd_per_million_tokens"},
      {"fleet_usd_per_hour", "cost.fleet_usd_per_hour"},
  };
  return figures;
}

const nlohmann::json* figure_at(const nlohmann::json& summary, const std::string& path) {
  const nlohmann::json* at = &summary;
  std::size_t from = 0;
  while (from <= path.size()) {
    const std::size_t dot = std::min(path.find('.', from), path.size());
    const std::string key = path.substr(from, dot - from);
    if (!at->is_object() || !at->contains(key)) return nullptr;
    at = &(*at)[key];
    from = dot + 1;
  }
  return at;
}

std::string busiest_resource(const nlohmann::json& summary) {
  const nlohmann::json* by_class = figure_at(summary, "utilization_by_class");
  if (!by_class || !by_class->is_object()) return "-";
  std::string best;
  double best_mean = -1.0;
  for (const auto& [k, v] : by_class->items()) {
    if (k.rfind("serving.", 0) == 0 || !v.is_object() || !v.contains("mean")) continue;
    const double mean = v["mean"].get<double>();
    if (mean > best_mean) {
      best_mean = mean;
      best = k;
    }
  }
  if (best.empty()) return "-";
  char pct[32];
  std::snprintf(pct, sizeof pct, " (%.1f%%)", best_mean * 100.0);
  return best + pct;
}

int run_compare(const CompareOptions& opt) {
  std::vector<Run> runs;
  std::size_t baseline = 0;
  try {
    if (opt.runs.empty()) throw CompareInputError("compare: which run folders? give at least one");
    for (const fs::path& p : opt.runs) {
      for (const fs::path& d : expand(p)) runs.push_back(read_run(d));
    }
    if (!opt.baseline.empty()) {
      // The baseline is one of the runs (by folder), or a run of its own, shown first.
      const fs::path want = fs::weakly_canonical(opt.baseline);
      const auto it = std::find_if(runs.begin(), runs.end(),
                                   [&](const Run& r) { return fs::weakly_canonical(r.dir) == want; });
      if (it != runs.end()) {
        baseline = static_cast<std::size_t>(it - runs.begin());
      } else {
        runs.insert(runs.begin(), read_run(opt.baseline));
        baseline = 0;
      }
    }
  } catch (const CompareInputError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  }
  // Names: the folder's name, with its parent's when two runs share it.
  std::map<std::string, int> seen;
  for (const Run& r : runs) ++seen[r.dir.filename().string()];
  for (Run& r : runs) {
    r.name = r.dir.filename().string();
    if (seen[r.name] > 1) r.name = (r.dir.parent_path().filename() / r.dir.filename()).string();
  }

  std::vector<std::string> header{"figure"};
  for (const Run& r : runs) {
    header.push_back(r.name);
    header.push_back(r.name + "/" + runs[baseline].name);
  }
  sim::CsvWriter csv(header);
  std::vector<std::vector<std::string>> table;
  const auto add = [&](const std::string& name, const std::vector<std::string>& values,
                       const std::vector<std::string>& ratios) {
    std::vector<std::string> row{name};
    std::vector<std::string> shown{name};
    for (std::size_t i = 0; i < values.size(); ++i) {
      row.push_back(values[i]);
      row.push_back(ratios[i]);
      shown.push_back(ratios[i] == "-" || i == baseline ? brief(values[i])
                                                        : brief(values[i]) + " (x" + ratios[i] + ")");
    }
    csv.row(row);
    table.push_back(shown);
  };
  for (const CompareFigure& f : compare_figures()) {
    std::vector<std::string> values, ratios;
    const nlohmann::json* b = figure_at(runs[baseline].summary, f.path);
    for (const Run& r : runs) {
      const nlohmann::json* v = figure_at(r.summary, f.path);
      values.push_back(cell(v));
      ratios.push_back(ratio(v, b));
    }
    add(f.name, values, ratios);
  }
  {
    std::vector<std::string> values, ratios;
    for (const Run& r : runs) {
      values.push_back(busiest_resource(r.summary));
      ratios.push_back("-");
    }
    add("busiest_resource", values, ratios);
  }
  try {
    sim::create_output_directory(opt.out_dir);
    sim::write_file_atomic(opt.out_dir / "compare.csv", csv.str());
  } catch (const sim::OutputError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitRunFailed;
  }
  if (!opt.quiet) {
    std::vector<std::size_t> width(table.front().size(), 0);
    std::vector<std::string> head{"figure"};
    for (std::size_t i = 0; i < runs.size(); ++i)
      head.push_back(runs[i].name + (i == baseline ? " (baseline)" : ""));
    table.insert(table.begin(), head);
    for (const auto& row : table) {
      for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    }
    for (const auto& row : table) {
      for (std::size_t c = 0; c < row.size(); ++c) {
        std::cout << (c ? "  " : "") << row[c]
                  << std::string(c + 1 < row.size() ? width[c] - row[c].size() : 0, ' ');
      }
      std::cout << "\n";
    }
    std::cout << "(ratios: run / baseline) written: " << (opt.out_dir / "compare.csv").string() << "\n";
  }
  return kExitOk;
}

}  // namespace wse::app
