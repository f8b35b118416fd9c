// `wse-emu regress [--update] [--suite FILE] [--only NAME] [--out DIR]`.
//
// The suite file lists experiments (paths relative to it) and the folder of their
// references; references/<name>.json holds, per summary figure, the reference value
// and its tolerance:
//   {"experiment": "...", "set": [...],
//    "figures": {"simulated_time_s": {"value": 216.03, "tolerance": {"relative": 1e-6, "absolute": 0}}, ...}}
// A figure is within tolerance when |now - reference| <= max(absolute, relative * |reference|).
// A reference also keeps the run's resolved configuration ("config": key path -> value
// text), so that a comparison leads with the inputs that changed.
#include "apps/wse-emu/regress_command.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <unistd.h>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "apps/wse-emu/cli.h"
#include "apps/wse-emu/sweep_command.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"

namespace fs = std::filesystem;

namespace wse::app {

namespace {

struct Tolerance {
  double relative = 1e-6;
  double absolute = 0;
};

struct Entry {
  std::string name;
  fs::path experiment;  // absolute
  std::string experiment_as_written;
  std::vector<std::string> overrides;
};

struct Suite {
  fs::path references;  // absolute folder
  Tolerance default_tolerance;
  std::vector<Entry> entries;
};

using SuiteError = InputFileError;

// Read through the configuration language (systemc_models/config/config.h), as
// experiment files are: every error names the suite's file:line:column and the key path,
// and a key nothing reads (a typo) is an error with "did you mean", never a default.
Tolerance read_tolerance(config::Section& root, Tolerance t) {
  config::Section n = root.section("tolerance", "the tolerance of figures new to a reference", true);
  t.relative = n.number(
      "relative",
      {.doc = "relative tolerance: |now - reference| <= relative x |reference|", .def = "1.0e-6", .min = 0});
  t.absolute = n.number("absolute",
                        {.doc = "absolute tolerance: |now - reference| <= absolute", .def = "0", .min = 0});
  return t;
}

Suite read_suite(const fs::path& file) {
  if (const auto why = not_a_file(file)) throw SuiteError("regression suite '" + file.string() + "' " + *why);
  const fs::path base = fs::absolute(file).parent_path();
  config::Document doc = config::load(file);
  config::Section root = doc.root();
  Suite s;
  s.references = (base / root.string("references", {.doc = "the folder of the reference files <name>.json, "
                                                           "relative to the suite",
                                                    .def = "references"}))
                     .lexically_normal();
  s.default_tolerance = read_tolerance(root, s.default_tolerance);
  std::vector<config::Section> experiments =
      root.section_list("experiments", "the experiments of the suite, each {name:, experiment:, set:}");
  for (config::Section& e : experiments) {
    Entry en;
    en.name = e.string("name", {.doc = "the reference file <name>.json and the run's folder"});
    if (en.name.empty() || en.name.find_first_of("/\\") != std::string::npos || en.name == "." ||
        en.name == "..") {
      e.fail("name",
             "'" + en.name +
                 "' names the reference file <name>.json and the run's folder: use letters, digits, _ "
                 "or -");
    }
    en.experiment_as_written = e.string("experiment", {.doc = "the experiment file, relative to the suite"});
    en.experiment = (base / en.experiment_as_written).lexically_normal();
    if (const auto why = not_a_file(en.experiment)) {
      e.fail("experiment", "'" + en.experiment.string() + "' " + *why);
    }
    if (std::optional<config::Section> set = e.optional_section(
            "set", "overrides of the experiment, key path: value, e.g. {workload.trace.limit: 20}")) {
      for (const std::string& k : set->keys()) {
        en.overrides.push_back(k + "=" + set->string(k, {.doc = "an override of the experiment"}));
      }
    }
    s.entries.push_back(std::move(en));
  }
  doc.finish();  // a misspelt key first: it may be why nothing else was read
  if (experiments.empty()) {
    root.fail("experiments", "must list at least one {name:, experiment:}");
  }
  return s;
}

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(8) << v;
  return os.str();
}

std::string change_text(double ref, double now) {
  if (ref == now) return "0";
  if (ref == 0) return "from 0";
  std::ostringstream os;
  os << std::showpos << std::setprecision(3) << (now - ref) / std::fabs(ref) * 100 << " %";
  return os.str();
}

std::string tol_text(const Tolerance& t) {
  std::string s;
  if (t.relative > 0) s = "+/-" + num(t.relative * 100) + " %";
  if (t.absolute > 0) s += (s.empty() ? "+/-" : " or +/-") + num(t.absolute);
  return s.empty() ? "exact" : s;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::string cell = r[i];
      if (i + 1 < r.size()) cell.resize(w[i], ' ');
      line += (i ? "  " : "") + cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The resolved configuration of a run (its config.resolved.yaml) as key path -> value
// text: what a comparison diffs to name the inputs that changed. A list of plain values
// is one entry ("[a, b]"); a file path is written relative to the experiment file's
// folder (`base`), so that two checkouts, and runs kept in any --out folder, record the
// same text. The run wrote a path absolute, or relative to its own folder (`run_dir`)
// when both lie in one checkout.
using FlatConfig = std::map<std::string, std::string>;

struct ConfigPaths {
  fs::path base;     // the experiment file's folder
  fs::path run_dir;  // the folder config.resolved.yaml was written in
};

void flatten_config(const YAML::Node& n, const std::string& path, const ConfigPaths& base, FlatConfig& out) {
  if (n.IsMap()) {
    if (n.size() == 0 && !path.empty()) out[path] = "{}";
    for (const auto& kv : n) {
      const std::string k = kv.first.Scalar();
      flatten_config(kv.second, path.empty() ? k : path + "." + k, base, out);
    }
  } else if (n.IsSequence()) {
    bool plain = true;
    for (const auto& e : n) plain = plain && e.IsScalar();
    if (plain) {
      std::string text = "[";
      for (std::size_t i = 0; i < n.size(); ++i) text += (i ? ", " : "") + n[i].Scalar();
      out[path] = text + "]";
    } else {
      for (std::size_t i = 0; i < n.size(); ++i)
        flatten_config(n[i], path + "[" + std::to_string(i) + "]", base, out);
    }
  } else if (n.IsScalar()) {
    std::string v = n.Scalar();
    fs::path file;
    std::error_code ec;
    if (!v.empty() && v.front() == '/') {
      file = v;
    } else if (v.find('/') != std::string::npos && fs::exists(base.run_dir / v, ec)) {
      file = (base.run_dir / v).lexically_normal();
    }
    if (!file.empty()) {
      const fs::path rel = file.lexically_relative(base.base);
      if (!rel.empty()) v = rel.generic_string();
    }
    out[path] = v;
  } else {
    out[path] = "~";
  }
}

FlatConfig resolved_config(const fs::path& resolved_yaml, const fs::path& experiment) {
  FlatConfig out;
  flatten_config(YAML::LoadFile(resolved_yaml.string()), "",
                 {experiment.parent_path(), resolved_yaml.parent_path()}, out);
  return out;
}

// The figures a reader looks at first; the rest (per-resource utilizations, the wafer's
// kernel breakdown, model constants) are listed with --all.
bool headline(const std::string& figure) {
  const std::string group = figure.substr(0, figure.find('.'));
  for (const char* h : {"simulated_time_s", "requests", "throughput", "goodput", "kv_transfer"}) {
    if (group == h) return true;
  }
  return false;
}

// The configuration keys whose values differ between the reference and this run.
std::vector<std::vector<std::string>> config_changes(const nlohmann::json& ref, const FlatConfig& now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& [k, v] : now) {
    const auto r = ref.find(k);
    if (r == ref.end()) {
      rows.push_back({k, "(not set)", v});
    } else if (r->get<std::string>() != v) {
      rows.push_back({k, r->get<std::string>(), v});
    }
  }
  for (const auto& [k, r] : ref.items()) {
    if (!now.count(k)) rows.push_back({k, r.get<std::string>(), "(not set)"});
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// What a comparison leads with: the configuration keys that differ from the reference's.
void print_config_changes(const nlohmann::json& ref, const FlatConfig& now) {
  if (!ref.contains("config")) {
    std::cout << "configuration: not in the reference (written by 'wse-emu regress --update' from now on)\n";
    return;
  }
  const auto changed = config_changes(ref["config"], now);
  if (changed.empty()) {
    std::cout << "configuration: as in the reference\n";
    return;
  }
  std::cout << "configuration: " << changed.size() << " key(s) differ from the reference\n";
  std::vector<std::vector<std::string>> rows{{"  key", "reference", "now"}};
  for (const auto& c : changed) rows.push_back({"  " + c[0], c[1], c[2]});
  print_table(rows);
}

// Whether the reference file of an experiment exists; a path the system cannot even
// look at (too long, a loop) is bad input naming it.
bool reference_exists(const fs::path& ref_file) {
  std::error_code ec;
  const bool there = fs::exists(ref_file, ec);
  if (ec) throw SuiteError("reference " + ref_file.string() + ": cannot be read: " + ec.message());
  return there;
}

// A reference file as written by --update: {"figures": {NAME: {"value": number,
// "tolerance": {"relative": number >= 0, "absolute": number >= 0}}}}. Anything else
// (a corrupt, empty or hand-edited file) is bad input naming the file and the figure;
// checked before any experiment runs.
nlohmann::json read_reference(const fs::path& file) {
  const auto bad = [&](const std::string& what) {
    return SuiteError("reference " + file.string() + ": " + what +
                      "; fix the file, or delete it and run "
                      "'wse-emu regress --update' to write it again");
  };
  std::ifstream in(file, std::ios::binary);
  if (!in) throw bad("cannot be read");
  const std::string text = read_text(file);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw bad("the file is empty");
  nlohmann::json ref;
  try {
    ref = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!ref.is_object())
    throw bad("expected a JSON object with \"figures\", found " + std::string(ref.type_name()));
  const auto figures = ref.find("figures");
  if (figures == ref.end() || !figures->is_object()) throw bad("\"figures\" must be an object of figures");
  for (const auto& [name, f] : figures->items()) {
    const std::string at = "figure '" + name + "': ";
    if (!f.is_object())
      throw bad(at + "expected an object with \"value\", found " + std::string(f.type_name()));
    const auto v = f.find("value");
    if (v == f.end() || !v->is_number())
      throw bad(at + "\"value\" must be a number, found " + (v == f.end() ? "nothing" : v->dump()));
    if (!std::isfinite(v->get<double>())) throw bad(at + "\"value\" must be a finite number");
    if (const auto t = f.find("tolerance"); t != f.end()) {
      if (!t->is_object()) throw bad(at + "\"tolerance\" must be an object {relative, absolute}");
      for (const char* k : {"relative", "absolute"}) {
        const auto x = t->find(k);
        if (x != t->end() && (!x->is_number() || !(x->get<double>() >= 0)))
          throw bad(at + "tolerance \"" + k + "\" must be a number, 0 or more, found " + x->dump());
        if (x != t->end() && !std::isfinite(x->get<double>()))
          throw bad(at + "tolerance \"" + k + "\" must be a finite number, 0 or more");
      }
    }
  }
  if (const auto c = ref.find("config"); c != ref.end()) {
    if (!c->is_object()) throw bad("\"config\" must be an object of key paths and value texts");
    for (const auto& [k, v] : c->items()) {
      if (!v.is_string()) throw bad("config key '" + k + "': the value must be a string, found " + v.dump());
    }
  }
  return ref;
}

}  // namespace

std::size_t check_regress_suite(const fs::path& suite_file) {
  const Suite suite = read_suite(suite_file);
  std::size_t figures = 0;
  for (const auto& en : suite.entries) {
    const fs::path ref_file = suite.references / (en.name + ".json");
    if (reference_exists(ref_file)) figures += read_reference(ref_file)["figures"].size();
  }
  return figures;
}

int run_regress(const RegressOptions& opt) {
  Suite suite;
  try {
    suite = read_suite(opt.suite);
  } catch (const std::exception& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  }
  if (!opt.only.empty()) {
    std::erase_if(suite.entries, [&](const Entry& e) { return e.name != opt.only; });
    if (suite.entries.empty()) {
      std::cerr << "wse-emu: error: no experiment named '" << opt.only << "' in " << opt.suite.string()
                << "\n";
      return kExitBadInput;
    }
  }
  std::map<std::string, nlohmann::json> references;
  try {
    for (const auto& en : suite.entries) {
      const fs::path ref_file = suite.references / (en.name + ".json");
      if (reference_exists(ref_file)) references[en.name] = read_reference(ref_file);
    }
  } catch (const SuiteError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  }
  const bool keep = !opt.out_dir.empty();
  if (keep && !opt.force && sim::directory_in_use(opt.out_dir)) {
    std::cerr << "wse-emu: error: " << sim::output_in_use_message(opt.out_dir) << "\n";
    return kExitBadInput;
  }
  const fs::path runs = keep ? fs::absolute(opt.out_dir)
                             : fs::temp_directory_path() / ("wse-emu-regress-" + std::to_string(::getpid()));
  bool pass = true;
  bool failed_run = false;
  try {
    sim::create_output_directory(runs);
    const sim::FolderClaim claim(runs);  // one command at a time in the folder, as `run`
    if (!claim.refused().empty()) {
      std::cerr << "wse-emu: error: " << claim.refused() << "\n";
      return kExitBadInput;
    }
    for (const auto& en : suite.entries) {
      const fs::path dir = runs / en.name;
      fs::remove_all(dir);
      fs::create_directories(dir);
      std::vector<std::string> args{"run", en.experiment.string(), "--out", dir.string(), "--quiet"};
      for (const auto& o : en.overrides) {
        args.push_back("--set");
        args.push_back(o);
      }
      const int code = run_self(args, runs / (en.name + ".stdout.txt"), runs / (en.name + ".stderr.txt"));
      std::cout << "== " << en.name << " (" << en.experiment_as_written << ")\n";
      if (code != 0 || !fs::exists(dir / "summary.json")) {
        std::cout << "run FAILED (exit " << code << "): " << last_error_line(runs / (en.name + ".stderr.txt"))
                  << "\n";
        pass = false;
        failed_run = true;
        continue;
      }
      auto now = numeric_figures(nlohmann::json::parse(read_text(dir / "summary.json")));
      std::erase_if(now, [](const auto& f) { return f.first == "seed"; });  // an input, not a result
      const fs::path ref_file = suite.references / (en.name + ".json");
      const nlohmann::json ref = references.count(en.name) ? references[en.name] : nlohmann::json();
      const nlohmann::json ref_figures = ref.contains("figures") ? ref["figures"] : nlohmann::json::object();

      if (opt.update) {
        nlohmann::json out;
        out["experiment"] = en.experiment_as_written;
        out["set"] = en.overrides;
        out["figures"] = nlohmann::json::object();
        const FlatConfig config = resolved_config(dir / "config.resolved.yaml", en.experiment);
        out["config"] = config;
        int changes = 0;
        if (ref.contains("config")) {
          for (const auto& c : config_changes(ref["config"], config))
            std::cout << "  configuration " << c[0] << ": " << c[1] << " -> " << c[2] << "\n";
        } else {
          std::cout << "  configuration recorded (" << config.size() << " keys)\n";
        }
        for (const auto& [k, v] : now) {
          Tolerance t = suite.default_tolerance;
          if (ref_figures.contains(k)) {
            const auto& old = ref_figures[k];
            t.relative = old["tolerance"].value("relative", t.relative);
            t.absolute = old["tolerance"].value("absolute", t.absolute);
            const double was = old["value"].get<double>();
            if (was != v) {
              std::cout << "  " << k << ": " << num(was) << " -> " << num(v) << " (" << change_text(was, v)
                        << ")\n";
              ++changes;
            }
          } else {
            std::cout << "  " << k << ": new figure, " << num(v) << "\n";
            ++changes;
          }
          nlohmann::json value = v;
          if (std::fabs(v) < 9.0e15 && v == std::floor(v))
            value = static_cast<std::int64_t>(v);  // counts stay integers
          out["figures"][k] = {{"value", value},
                               {"tolerance", {{"relative", t.relative}, {"absolute", t.absolute}}}};
        }
        for (const auto& [k, old] : ref_figures.items()) {
          if (!out["figures"].contains(k)) {
            std::cout << "  " << k << ": removed (was " << num(old["value"].get<double>()) << ")\n";
            ++changes;
          }
        }
        fs::create_directories(suite.references);
        sim::write_file_atomic(ref_file, out.dump(2) + "\n");
        std::cout << (changes ? std::to_string(changes) + " figure(s) changed; wrote " : "unchanged; wrote ")
                  << ref_file.string() << "\n";
        continue;
      }

      if (ref.is_null()) {
        std::cout << "no reference " << ref_file.string() << "; create it with 'wse-emu regress --update'\n";
        pass = false;
        continue;
      }
      // First the inputs that changed, then the headline figures that moved; every
      // other figure is counted by group (--all lists them all).
      const FlatConfig config = resolved_config(dir / "config.resolved.yaml", en.experiment);
      if (!opt.quiet) print_config_changes(ref, config);
      std::vector<std::vector<std::string>> rows{
          {"figure", "reference", "now", "change", "tolerance", "verdict"}};
      int out_of_tolerance = 0;
      std::map<std::string, double> now_map(now.begin(), now.end());
      // Figures not listed, by group ("utilization", "utilization (missing)", "wafer (new)"):
      // changed, and of those out of tolerance.
      std::map<std::string, std::pair<int, int>> unlisted;
      std::size_t unchanged = 0;
      for (const auto& [k, v] : now) {
        if (!ref_figures.contains(k)) {
          if (opt.all || headline(k)) {
            rows.push_back({k, "-", num(v), "", "", "new (not judged)"});
          } else {
            ++unlisted[k.substr(0, k.find('.')) + " (new)"].first;
          }
          continue;
        }
        const auto& r = ref_figures[k];
        const double ref_v = r["value"].get<double>();
        Tolerance t = suite.default_tolerance;
        if (r.contains("tolerance")) {
          t.relative = r["tolerance"].value("relative", t.relative);
          t.absolute = r["tolerance"].value("absolute", t.absolute);
        }
        const bool ok = std::fabs(v - ref_v) <= std::max(t.absolute, t.relative * std::fabs(ref_v));
        if (!ok) ++out_of_tolerance;
        if (!opt.all && !(headline(k) && v != ref_v)) {
          if (v == ref_v) {
            ++unchanged;
          } else {
            auto& u = unlisted[k.substr(0, k.find('.'))];
            ++u.first;
            if (!ok) ++u.second;
          }
          continue;
        }
        rows.push_back(
            {k, num(ref_v), num(v), change_text(ref_v, v), tol_text(t), ok ? "ok" : "OUT OF TOLERANCE"});
      }
      for (const auto& [k, r] : ref_figures.items()) {
        if (!now_map.count(k)) {
          ++out_of_tolerance;
          if (opt.all || headline(k)) {
            rows.push_back({k, num(r["value"].get<double>()), "-", "", "", "MISSING"});
          } else {
            auto& u = unlisted[k.substr(0, k.find('.')) + " (missing)"];
            ++u.first;
            ++u.second;
          }
        }
      }
      if (!opt.quiet) {
        if (rows.size() > 1) {
          print_table(rows);
        } else if (!opt.all) {
          std::cout << "headline figures: as in the reference\n";
        }
        if (!unlisted.empty()) {
          int moved = 0, out = 0;
          std::string groups;
          for (const auto& [g, c] : unlisted) {
            moved += c.first;
            out += c.second;
            groups += (groups.empty() ? "" : ", ") + g + " " + std::to_string(c.first) +
                      (c.second ? " (" + std::to_string(c.second) + " out of tolerance)" : "");
          }
          std::cout << moved << " other figure(s) changed, " << out << " of them out of tolerance: " << groups
                    << "; --all lists them\n";
        }
        if (unchanged)
          std::cout << "(" << unchanged << " unchanged figure(s) not listed; --all lists them)\n";
      }
      std::cout << (out_of_tolerance ? std::to_string(out_of_tolerance) + " figure(s) out of tolerance"
                                     : "all figures within tolerance")
                << "\n";
      if (out_of_tolerance) pass = false;
    }
  } catch (const std::exception& e) {
    std::cerr << "wse-emu: regress failed: " << e.what() << "\n";
    if (!keep) fs::remove_all(runs);
    return kExitRunFailed;
  }
  if (!keep) fs::remove_all(runs);
  if (opt.update) return failed_run ? kExitRunFailed : kExitOk;
  std::cout << (pass ? "regression: PASS" : "regression: FAIL") << "\n";
  return pass ? kExitOk : kExitRunFailed;
}

}  // namespace wse::app
