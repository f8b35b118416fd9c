// `wse-emu run` and `wse-emu check`: the two-phase life of an experiment. Phase 1 reads
// and validates the whole configuration and elaborates the modules; any problem there
// is bad input (exit 2) and nothing is written. Phase 2 simulates and writes the result
// files atomically.
//
// Everything written except host.json is a function of the configuration alone: the
// same inputs and seed give byte-identical files. What measures the host (wall and CPU
// time, peak memory, host name, pid, start date) goes to host.json only.
#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <systemc>

#include "apps/wse-emu/cli.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"
#include "systemc_models/sim/progress.h"
#include "systemc_models/stats/stats.h"
#include "systemc_models/trace/trace.h"

namespace fs = std::filesystem;

namespace wse::app {

namespace {

struct Elaborated {
  config::Document doc;
  sim::ExperimentInfo info;
  std::unique_ptr<sim::MemoryBudget> memory;  // info.memory points here
  std::unique_ptr<std::vector<std::string>> warnings =
      std::make_unique<std::vector<std::string>>();  // info.warnings
  std::unique_ptr<sim::Experiment> experiment;
};

// The configuration's warnings (ExperimentInfo::warnings), one line each on stderr.
void print_warnings(const Elaborated& e) {
  for (const auto& w : *e.warnings) std::cerr << "wse-emu: warning: " << w << "\n";
}

// Phase 1. Throws config::ConfigError on bad input.
Elaborated elaborate(const sim::Registry& registry, const fs::path& file,
                     const std::vector<std::string>& overrides, trace::Writer* trace = nullptr) {
  Elaborated e{
      config::load(file, overrides), {}, nullptr, std::make_unique<std::vector<std::string>>(), nullptr};
  e.info.trace = trace;
  e.info.warnings = e.warnings.get();
  config::Section root = e.doc.root();
  config::Section ex = root.section("experiment", "what to run");
  e.info.name = ex.string("name", {.doc = "experiment name, reported in summary.json"});
  e.info.mode = ex.string("mode", {.doc = "experiment mode (see 'wse-emu list')"});
  e.info.seed = static_cast<std::uint64_t>(
      ex.integer("seed", {.doc = "seed of every random choice in the run", .def = "1", .min = 0}));
  e.memory = std::make_unique<sim::MemoryBudget>(sim::MemoryBudget::read(root));
  e.info.memory = e.memory.get();
  const sim::ExperimentFactory* factory = registry.mode(e.info.mode);
  if (!factory) {
    std::vector<std::string> names;
    std::string all;
    for (const auto& [n, d] : registry.modes()) {
      names.push_back(n);
      all += (all.empty() ? "" : ", ") + n;
    }
    auto guess = config::did_you_mean(e.info.mode, names);
    ex.fail("mode", "unknown experiment mode '" + e.info.mode + "'" +
                        (guess ? "; did you mean '" + *guess + "'?" : "") + " Allowed: " + all);
  }
  e.experiment = (*factory)(root, e.info);
  e.doc.finish();
  return e;
}

// Where the notes already shown are remembered: $WSE_EMU_STATE_DIR, else
// $XDG_CACHE_HOME/wse-emu, else ~/.cache/wse-emu; empty if none can be named.
fs::path notes_shown_file() {
  fs::path dir;
  if (const char* d = std::getenv("WSE_EMU_STATE_DIR"); d && *d) {
    dir = d;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    dir = fs::path(x) / "wse-emu";
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    dir = fs::path(h) / ".cache" / "wse-emu";
  } else {
    return {};
  }
  return dir / "notes_shown";
}

void print_notes(const config::Document& doc) {
  // Group notes by file so that an HF config.json with many unused keys is one line. A
  // file's note is shown once: the first run that reads the file (as it is now: its
  // path, size and contents' hash) prints it, later runs do not; a changed file is noted
  // again. Remembered in notes_shown_file(); if that cannot be written, every run notes.
  std::map<std::string, std::vector<std::string>> by_file;
  for (const auto& n : doc.notes()) by_file[n.source.file].push_back(n.key_path);
  if (by_file.empty()) return;
  const fs::path state = notes_shown_file();
  std::set<std::string> shown;
  if (!state.empty()) {
    std::ifstream in(state);
    for (std::string line; std::getline(in, line);) shown.insert(line);
  }
  std::vector<std::string> fresh;
  for (const auto& [file, keys] : by_file) {
    std::string stamp = fs::absolute(file).lexically_normal().string();
    if (std::ifstream f(file, std::ios::binary); f) {
      const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      stamp += " " + std::to_string(text.size()) + " " + std::to_string(std::hash<std::string>{}(text));
    }
    if (shown.count(stamp)) continue;
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
    std::cerr << "note: " << keys.size() << " key(s) of " << file << " are not used by this model: " << list
              << " (shown once per file; --quiet hides it)\n";
    fresh.push_back(stamp);
  }
  if (fresh.empty() || state.empty()) return;
  std::error_code ec;
  fs::create_directories(state.parent_path(), ec);
  std::ofstream out(state, std::ios::app);
  for (const auto& s : fresh) out << s << "\n";
}

void flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& rows) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, rows);
  } else if (j.is_number_float()) {
    std::ostringstream os;
    os << std::setprecision(6) << j.get<double>();
    rows.emplace_back(prefix, os.str());
  } else if (j.is_string()) {
    rows.emplace_back(prefix, j.get<std::string>());
  } else {
    rows.emplace_back(prefix, j.dump());
  }
}

// The host's side of a run: not reproducible, kept out of every other file.
nlohmann::json host_json(double wall_s) {
  nlohmann::json h;
  h["reproducible"] = false;
  h["note"] =
      "host-dependent: wall and CPU time, peak memory, host name, process id, start date, build; "
      "not reproducible (every other output file is a function of the configuration and seed)";
  h["wall_time_s"] = wall_s;
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    h["cpu_time_s"] = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    h["peak_rss_bytes"] = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // Linux: KiB
  }
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) == 0) h["hostname"] = host.data();
  h["pid"] = ::getpid();
  const std::time_t now = std::time(nullptr) - static_cast<std::time_t>(wall_s);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::array<char, 32> date{};
  std::strftime(date.data(), date.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  h["started_utc"] = date.data();
  h["wse_emu_version"] = WSE_VERSION;
  h["systemc_version"] = sc_core::sc_release();
  return h;
}

void print_summary(const nlohmann::json& summary) {
  std::vector<std::pair<std::string, std::string>> rows;
  nlohmann::json rest = summary;
  rest.erase("utilization");
  rest.erase("utilization_by_class");
  flatten(rest, "", rows);
  std::size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  std::cout << "summary\n";
  for (const auto& [k, v] : rows) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << k << "  " << v << "\n";
  }
  if (!summary.contains("utilization_by_class") || summary["utilization_by_class"].empty()) return;
  // Resource classes, busiest first: "which bandwidth saturates first". Every resource
  // is in summary.json under "utilization".
  const nlohmann::json& classes = summary["utilization_by_class"];
  std::vector<std::pair<double, std::string>> order;
  for (const auto& [k, v] : classes.items()) order.emplace_back(v["max"].get<double>(), k);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::size_t w = 14;
  for (const auto& [f, k] : order) w = std::max(w, k.size());
  std::cout << "utilization by resource class (busiest first)\n  " << std::left
            << std::setw(static_cast<int>(w)) << "class"
            << "     max     mean  count  busiest\n";
  for (const auto& [f, k] : order) {
    const nlohmann::json& c = classes[k];
    std::cout << "  " << std::left << std::setw(static_cast<int>(w)) << k << std::right << std::fixed
              << std::setprecision(1) << std::setw(7) << f * 100 << " %" << std::setw(7)
              << c["mean"].get<double>() * 100 << " %" << std::setw(7) << c["count"].get<std::size_t>()
              << "  " << (c["count"].get<std::size_t>() > 1 ? c["busiest"].get<std::string>() : "") << "\n";
    std::cout.unsetf(std::ios::fixed);
  }
}

// A default as the schema writes it, in base units ("137438953472 B/s", "1e-06 s"),
// shown with the prefix a person would write ("128 GiB/s", "1 us", "27.34375 GB/s").
// Other text is shown as is.
std::string with_unit_prefix(const std::string& text) {
  const auto space = text.find(' ');
  if (space == std::string::npos) return text;
  const std::string unit = text.substr(space + 1);
  double v = 0;
  const char* b = text.data();
  if (auto [p, ec] = std::from_chars(b, b + space, v); ec != std::errc() || p != b + space || v <= 0)
    return text;
  std::vector<std::pair<std::string, double>> prefixes;
  if (unit == "s") {
    prefixes = {{"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}, {"ps", 1e-12}};
  } else if (unit == "Hz") {
    prefixes = {{"Hz", 1}, {"kHz", 1e3}, {"MHz", 1e6}, {"GHz", 1e9}};
  } else if (unit == "B" || unit == "B/s") {
    const std::string per = unit == "B/s" ? "/s" : "";
    for (const auto& [n, f] : std::vector<std::pair<std::string, double>>{{"B", 1},
                                                                          {"KB", 1e3},
                                                                          {"MB", 1e6},
                                                                          {"GB", 1e9},
                                                                          {"TB", 1e12},
                                                                          {"KiB", 1024.0},
                                                                          {"MiB", 1048576.0},
                                                                          {"GiB", 1073741824.0},
                                                                          {"TiB", 1099511627776.0}}) {
      prefixes.emplace_back(n + per, f);
    }
  } else {
    return text;
  }
  // The shortest text with a number from 1 to below 1024, else with any number from 1.
  for (const double limit : {1024.0, std::numeric_limits<double>::infinity()}) {
    std::string best;
    for (const auto& [name, scale] : prefixes) {
      const double m = v / scale;
      if (m < 1 || m >= limit) continue;
      std::array<char, 64> buf{};
      std::snprintf(buf.data(), buf.size(), "%.12g %s", m, name.c_str());
      if (best.empty() || std::string(buf.data()).size() < best.size()) best = buf.data();
    }
    if (!best.empty()) return best;
  }
  return text;
}

// SIGINT, SIGTERM and SIGHUP (Ctrl-C, Slurm's time limit, a closed terminal) remove
// the files this run created (and its folder, if it created it), print one line and
// exit 128 + n. The handler may only make async-signal-safe calls, so the paths are
// kept in fixed buffers, each registered before its file is created; process-wide
// because a signal handler receives no object to hold them.
namespace interrupt {
constexpr int kMaxFiles = 64;
constexpr std::size_t kMaxPath = 4096;
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables)
char g_files[kMaxFiles][kMaxPath];
volatile std::sig_atomic_t g_count = 0;
char g_dir[kMaxPath];
volatile std::sig_atomic_t g_remove_dir = 0;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

void say(const char* s) { (void)!::write(2, s, std::strlen(s)); }

extern "C" void on_signal(int sig) {
  for (int i = 0; i < g_count; ++i) ::unlink(g_files[i]);
  if (g_remove_dir) ::rmdir(g_dir);
  say("wse-emu: interrupted by ");
  say(sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP");
  say(g_count > 0 || g_remove_dir ? "; removed this run's files\n" : "\n");
  ::_exit(128 + sig);
}

void copy(char* to, const std::string& from) {
  const std::size_t n = std::min(from.size(), kMaxPath - 1);
  std::memcpy(to, from.data(), n);
  to[n] = '\0';
}

// Before the run creates anything: the folder to remove if the run creates it.
void arm(const fs::path& dir, bool remove_dir) {
  g_count = 0;
  copy(g_dir, dir.string());
  g_remove_dir = remove_dir ? 1 : 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
}

// A file the run is about to create, with its temporary name (written first).
void track(const fs::path& file) {
  for (const std::string& p : {file.string(), file.string() + ".tmp." + std::to_string(::getpid())}) {
    if (g_count >= kMaxFiles || p.size() >= kMaxPath) continue;
    copy(g_files[g_count], p);
    g_count = g_count + 1;  // after the copy: the handler sees whole paths only
  }
}

// The run is over (its results complete, or removed by its own clean-up).
void disarm() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
  g_count = 0;
  g_remove_dir = 0;
}
}  // namespace interrupt

using sim::claim_folder;
constexpr const char* kClaim = sim::kClaimMarker;

}  // namespace

int check_experiment(const sim::Registry& registry, const fs::path& experiment,
                     const std::vector<std::string>& overrides, bool list_params) {
  try {
    Elaborated e = elaborate(registry, experiment, overrides);
    print_notes(e.doc);
    print_warnings(e);
    if (list_params) {
      std::size_t w = 0;
      for (const auto& p : e.doc.params()) w = std::max(w, p.key_path.size());
      for (const auto& p : e.doc.params()) {
        std::cout << std::left << std::setw(static_cast<int>(w)) << p.key_path << "  " << p.value
                  << "   [default: " << with_unit_prefix(p.def) << "]  " << p.doc << "\n";
      }
    } else {
      std::cout << "# resolved configuration of " << experiment.string() << " (every default written out)\n"
                << e.doc.resolved_yaml();
    }
    return kExitOk;
  } catch (const config::ConfigError& err) {
    std::cerr << "wse-emu: error: " << err.what() << "\n";
    return kExitBadInput;
  }
}

int run_experiment(const sim::Registry& registry, const RunOptions& opt) {
  const auto wall_start = std::chrono::steady_clock::now();
  // An earlier run's folder is not written over unless asked (checked before anything
  // else, so that nothing is read or written for nothing).
  if (!opt.force && sim::directory_in_use(opt.out_dir)) {
    std::cerr << "wse-emu: error: " << sim::output_in_use_message(opt.out_dir) << "\n";
    return kExitBadInput;
  }
  Elaborated e;
  std::unique_ptr<trace::Writer> trace;
  if (opt.trace) trace = std::make_unique<trace::Writer>();
  try {
    e = elaborate(registry, opt.experiment, opt.overrides, trace.get());
  } catch (const config::ConfigError& err) {
    std::cerr << "wse-emu: error: " << err.what() << "\n";
    return kExitBadInput;
  }
  if (!opt.quiet) print_notes(e.doc);
  print_warnings(e);

  // Phase 2: from here on, output exists. Every file is written whole or not at all; if
  // the run fails, the files it wrote are removed again (and the folder, if it made it).
  const bool dir_existed = fs::exists(opt.out_dir);
  interrupt::arm(opt.out_dir, !dir_existed);
  std::vector<fs::path> written;
  auto write = [&](const std::string& name, std::string_view content) {
    interrupt::track(opt.out_dir / name);
    sim::write_file_atomic(opt.out_dir / name, content);
    written.push_back(opt.out_dir / name);
  };
  auto clean_up = [&] {
    if (trace) trace->abandon();
    std::error_code ec;
    if (!dir_existed) {
      fs::remove_all(opt.out_dir, ec);
    } else {
      for (const auto& f : written) fs::remove(f, ec);
    }
  };
  // Created and claimed before anything is written; a folder claimed by another run is
  // left to it (nothing here removes what that run wrote).
  try {
    sim::create_output_directory(opt.out_dir);
    if (const std::string other = claim_folder(opt.out_dir); !other.empty()) {
      interrupt::disarm();
      std::cerr << "wse-emu: error: " << other << "\n";
      return kExitBadInput;
    }
    interrupt::track(opt.out_dir / kClaim);  // ours now
  } catch (const std::exception& err) {
    interrupt::disarm();
    std::cerr << "wse-emu: run failed: " << error_text(err) << "\n";
    return kExitRunFailed;
  }
  written.push_back(opt.out_dir / kClaim);
  try {
    // The completion marker (summary.json, written last) of an earlier run goes first,
    // so a rerun that fails never leaves it next to new files.
    // Without --trace, an earlier run's trace.json would sit beside results it does not
    // belong to.
    std::vector<std::string> olds{"summary.json", "host.json"};
    if (!opt.trace) olds.emplace_back("trace.json");
    if (!opt.token_times) olds.emplace_back("tokens.csv");  // likewise, from an earlier --token-times
    for (const std::string& old : olds) {
      std::error_code ec;
      if (fs::remove(opt.out_dir / old, ec); ec) {
        throw sim::OutputError("cannot remove '" + (opt.out_dir / old).string() + "': " + ec.message());
      }
    }
    // Written before simulating: an unwritable folder fails now, not after the run.
    write("config.resolved.yaml", e.doc.resolved_yaml(opt.out_dir, opt.experiment));
    if (trace) {
      interrupt::track(opt.out_dir / "trace.json");
      trace->open((opt.out_dir / "trace.json").string());
    }
    sim::Progress progress(!opt.quiet && sim::Progress::stderr_is_terminal(), 0, "");
    sim::RunContext ctx{trace.get(), progress.enabled() ? &progress : nullptr, opt.token_times};
    e.experiment->run(ctx);
    progress.finish();

    const double sim_s = e.experiment->simulated_seconds();
    const auto groups = stats::collect(e.experiment->extra_stats());
    nlohmann::json summary;
    summary["experiment"] = e.info.name;
    summary["mode"] = e.info.mode;
    summary["seed"] = e.info.seed;
    summary["simulated_time_s"] = sim_s;
    summary["events"] = sc_core::sc_delta_count() + e.experiment->model_events();
    summary["utilization"] = nlohmann::json::object();
    const auto utilizations = stats::utilizations(groups, sim_s);
    for (const auto& [path, f] : utilizations) summary["utilization"][path] = f;
    summary["utilization_by_class"] = nlohmann::json::object();
    for (const auto& c : stats::utilization_classes(utilizations)) {
      summary["utilization_by_class"][c.pattern] = {
          {"max", c.max}, {"mean", c.mean}, {"count", c.count}, {"busiest", c.busiest}};
    }
    e.experiment->summarize(summary);

    write("stats.json", stats::to_json(groups, sim_s).dump(2) + "\n");
    const auto extra = e.experiment->extra_files();
    for (const auto& [name, content] : extra) write(name, content);
    if (opt.token_times && !extra.contains("tokens.csv")) {
      std::cerr << "wse-emu: warning: --token-times: mode '" << e.info.mode
                << "' emits no tokens; no tokens.csv written\n";
    }
    if (trace) {
      trace->finish();
      written.push_back(opt.out_dir / "trace.json");
    }
    const double wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    const nlohmann::json host = host_json(wall_s);
    write("host.json", host.dump(2) + "\n");
    write("summary.json", summary.dump(2) + "\n");
    print_summary(summary);
    if (!opt.quiet) {
      std::ostringstream line;
      line << std::fixed << std::setprecision(2) << "wall time " << wall_s << " s";
      if (host.contains("peak_rss_bytes")) {
        line << ", peak memory " << std::setprecision(1)
             << static_cast<double>(host["peak_rss_bytes"].get<std::uint64_t>()) / (1024.0 * 1024.0)
             << " MiB";
      }
      std::cerr << line.str() << " (host.json)\n";
    }
    std::error_code unclaim;
    fs::remove(opt.out_dir / kClaim, unclaim);
    interrupt::disarm();
    std::cout << "results in " << opt.out_dir.string() << "/\n";
  } catch (const config::ConfigError& err) {
    clean_up();
    interrupt::disarm();
    // Phase-2 configuration errors (found only while running) are still bad input.
    std::cerr << "wse-emu: error: " << err.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& err) {
    clean_up();
    interrupt::disarm();
    std::cerr << "wse-emu: run failed: " << error_text(err) << "\n";
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace wse::app
