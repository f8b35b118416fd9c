// `wse-emu sweep SWEEP.yaml --out DIR [--backend local|slurm] [--jobs N]`.
//
// Layout of DIR:
//   results.csv                 one row per point (written last, atomically); reproducible
//   host.csv                    wall time and peak memory per point (the host's; not reproducible)
//   points/<id>/point.txt       the --set overrides of the point (identifies it on resume)
//   points/<id>/...             the point's `wse-emu run` outputs (summary.json, ...)
//   points/<id>/stdout.txt, stderr.txt, exit_code
//   slurm/sweep.sbatch, slurm/task-<n>.out   (slurm backend)
//
// A point is complete when its summary.json exists; complete points are not rerun.
// DIR must be absent, empty, or an earlier run of the same sweep (then resumed) unless
// --force is given.
#include "apps/wse-emu/sweep_command.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/wse-emu/cli.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"

extern char**
    environ;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): POSIX's, for posix_spawn

namespace fs = std::filesystem;

namespace wse::app {

namespace {

using SweepError = InputFileError;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One varied value: the text a person wrote (for results.csv) and the YAML given to
// --set (quoted again when the sweep file quoted it, so "007" stays a string).
struct Value {
  std::string written;
  std::string yaml;
};

Value to_value(const config::Section::Value& v) { return {v.text, v.yaml}; }

// A dimension of the sweep: one grid key, or a zip group (several keys moving together).
struct Dimension {
  std::vector<std::string> keys;
  std::vector<std::vector<Value>> choices;  // choices[i][k]: value of keys[k] in choice i
  config::Source source;                    // where it is written, and its key path
  std::string key_path;
};

struct Point {
  std::string id;
  std::vector<std::string> varied;     // written values, in column order
  std::vector<std::string> overrides;  // fixed `set:` first, then varied, as KEY=YAML
};

struct Sweep {
  std::string name;
  fs::path experiment;  // absolute
  std::vector<std::string> fixed;
  std::vector<std::string> columns;  // varied key paths, in column order
  std::vector<Dimension> dims;
  std::vector<Point> points;
};

// The keys of `set:`, `grid:` and the zip groups are configuration key paths of the base
// experiment, each given once in the sweep.
class KeyClaims {
 public:
  void claim(const config::Section& at, const std::string& key) {
    const bool ok = !key.empty() && key.front() != '.' && key.back() != '.' &&
                    key.find("..") == std::string::npos && key.find_first_of(" =\t") == std::string::npos;
    if (!ok) at.fail(key, "'" + key + "' is not a configuration key path (a.b.c)");
    const auto [it, inserted] = first_.emplace(key, at.key_path(key));
    if (!inserted)
      at.fail(key, "key '" + key + "' is given twice in the sweep (also as '" + it->second + "')");
  }

 private:
  std::map<std::string, std::string> first_;  // key -> where it was first given (key path in the sweep)
};

// The values of `key` in `at` (a grid key or a key of a zip group): a non-empty list.
std::vector<Value> axis_values(config::Section& at, const std::string& key, std::string_view what) {
  const std::vector<config::Section::Value> list =
      at.value_list(key, std::string(what) + " takes a non-empty list of values");
  if (list.empty()) at.fail(key, std::string(what) + " needs a non-empty list of values, found []");
  std::vector<Value> out;
  out.reserve(list.size());
  for (const auto& v : list) out.push_back(to_value(v));
  return out;
}

Dimension read_zip_group(config::Section& group, KeyClaims& claims) {
  const std::vector<std::string> keys = group.keys();
  if (keys.empty()) {
    throw config::ConfigError(group.source(), group.path(),
                              "a zip group is a mapping of key paths to lists of equal length, found an "
                              "empty mapping");
  }
  Dimension d;
  d.source = group.source();
  d.key_path = group.path();
  for (const std::string& key : keys) {
    claims.claim(group, key);
    std::vector<Value> values = axis_values(group, key, "a zip key");
    if (d.keys.empty()) {
      d.choices.resize(values.size());
    } else if (values.size() != d.choices.size()) {
      group.fail(key, "zip lists differ in length: '" + d.keys.front() + "' has " +
                          std::to_string(d.choices.size()) + " values, '" + key + "' has " +
                          std::to_string(values.size()));
    }
    d.keys.push_back(key);
    for (std::size_t i = 0; i < values.size(); ++i) d.choices[i].push_back(std::move(values[i]));
  }
  return d;
}

// Read through the configuration language (systemc_models/config/config.h), as
// experiment files are: every error names the sweep's file:line:column and the key path,
// and a key nothing reads (a typo) is an error with "did you mean", never ignored.
Sweep read_sweep(const fs::path& file) {
  if (const auto why = not_a_file(file)) throw SweepError("sweep file '" + file.string() + "' " + *why);
  config::Document doc = config::load(file);
  config::Section root = doc.root();
  Sweep s;
  const std::string stem = file.stem().string();
  s.name = root.string("name", {.doc = "the sweep's name (the progress lines say it)", .def = stem});
  (void)root.string("description", {.doc = "what the sweep is for", .def = ""});
  // Required, but checked after `finish`: a misspelt key may be why it is missing.
  const std::string experiment =
      root.string("experiment", {.doc = "the base experiment file, relative to the sweep file", .def = ""});
  KeyClaims claims;
  if (std::optional<config::Section> set = root.optional_section(
          "set", "fixed overrides of every point, key path: value, e.g. {workload.trace.limit: 20}")) {
    for (const std::string& key : set->keys()) {
      claims.claim(*set, key);
      s.fixed.push_back(key + "=" + set->value(key, "a fixed override of every point").yaml);
    }
  }
  if (std::optional<config::Section> grid = root.optional_section(
          "grid", "the cartesian product: key path: [values], e.g. {workload.trace.rate_scale: [1, 2]}")) {
    for (const std::string& key : grid->keys()) {
      claims.claim(*grid, key);
      Dimension d;
      d.source = grid->source_of(key);
      d.key_path = grid->key_path(key);
      d.keys.push_back(key);
      for (Value& v : axis_values(*grid, key, "a grid key")) d.choices.push_back({std::move(v)});
      s.dims.push_back(std::move(d));
    }
  }
  constexpr std::string_view kZipDoc =
      "keys that move together: a mapping of key paths to lists of equal length, or a list of such groups";
  std::vector<config::Section> groups;
  if (root.kind("zip") == config::Node::Kind::Seq) {
    groups = root.section_list("zip", kZipDoc);
  } else if (std::optional<config::Section> zip = root.optional_section("zip", kZipDoc)) {
    groups.push_back(*zip);
  }
  for (config::Section& g : groups) s.dims.push_back(read_zip_group(g, claims));
  doc.finish();  // a misspelt key first: it may be why something is missing

  const config::Source at = root.source_of("experiment");
  if (experiment.empty()) {
    root.fail("experiment",
              "missing required key 'experiment' (the base experiment file, relative to the sweep file)");
  }
  s.experiment = experiment;
  if (s.experiment.is_relative()) s.experiment = fs::absolute(fs::path(at.file)).parent_path() / s.experiment;
  s.experiment = s.experiment.lexically_normal();
  if (const auto why = not_a_file(s.experiment)) {
    root.fail("experiment", "base experiment '" + s.experiment.string() + "' " + *why);
  }
  if (s.dims.empty()) {
    throw config::ConfigError(root.source(), "", "nothing to vary: give 'grid:' and/or 'zip:'");
  }
  for (const auto& d : s.dims)
    for (const auto& k : d.keys) s.columns.push_back(k);

  // Mixed-radix enumeration, the first dimension slowest: the order a person reads the file.
  // Counted with a stop at the limit: a product of many dimensions would wrap around.
  constexpr std::size_t kMaxPoints = 100000;
  std::size_t n = 1;
  for (const auto& d : s.dims) {
    n *= d.choices.size();
    if (n > kMaxPoints) {
      throw config::ConfigError(
          d.source, d.key_path,
          "with this dimension the sweep has more than " + std::to_string(kMaxPoints) +
              " points (the product of the lists' lengths); that is surely a mistake: vary fewer keys "
              "or fewer values");
    }
  }
  const std::size_t width = std::max<std::size_t>(3, std::to_string(n - 1).size());
  for (std::size_t i = 0; i < n; ++i) {
    Point p;
    p.id = std::to_string(i);
    p.id.insert(0, width - p.id.size(), '0');
    p.overrides = s.fixed;
    std::size_t rest = i;
    std::vector<std::size_t> digit(s.dims.size());
    for (std::size_t d = s.dims.size(); d-- > 0;) {
      digit[d] = rest % s.dims[d].choices.size();
      rest /= s.dims[d].choices.size();
    }
    for (std::size_t d = 0; d < s.dims.size(); ++d) {
      const auto& choice = s.dims[d].choices[digit[d]];
      for (std::size_t k = 0; k < choice.size(); ++k) {
        p.varied.push_back(choice[k].written);
        p.overrides.push_back(s.dims[d].keys[k] + "=" + choice[k].yaml);
      }
    }
    s.points.push_back(std::move(p));
  }
  return s;
}

std::string describe(const Sweep& s, const Point& p) {
  std::string d;
  for (std::size_t k = 0; k < s.columns.size(); ++k) d += (k ? ", " : "") + s.columns[k] + "=" + p.varied[k];
  return d;
}

std::string point_record(const Point& p) {
  std::string r;
  for (const auto& o : p.overrides) r += o + "\n";
  return r;
}

std::vector<std::string> run_args(const Sweep& s, const Point& p, const fs::path& point_dir) {
  // --force: the sweep made the point's folder itself (point.txt, stdout.txt, stderr.txt).
  std::vector<std::string> a{"run", s.experiment.string(), "--out", point_dir.string(), "--quiet", "--force"};
  for (const auto& o : p.overrides) {
    a.push_back("--set");
    a.push_back(o);
  }
  return a;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command, returning its exit status and stdout.
std::pair<int, std::string> capture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return {-1, out};
  char buf[4096];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, got);
  const int status = ::pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// ---- backends ----

pid_t spawn_self(const std::vector<std::string>& args, const fs::path& out_file, const fs::path& err_file) {
  const std::string exe = self_executable().string();
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// SIGINT, SIGTERM or SIGHUP to a local sweep (Slurm's time limit, kill, Ctrl-C) is
// passed on to the points running (each removes its own files and exits 128 + n, as
// `run` does); the sweep starts no further point, waits for them and exits 128 + n.
// Without this the running points were left behind, still writing.
// Process-wide because a signal handler receives no object to hold them.
namespace stop {
constexpr std::size_t kMaxChildren = 1024;
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables)
volatile std::sig_atomic_t signal_number = 0;
pid_t children[kMaxChildren];  // 0: free slot; read by the handler
volatile std::sig_atomic_t child_count = 0;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

extern "C" void on_sweep_signal(int sig) {
  signal_number = sig;
  for (std::sig_atomic_t i = 0; i < child_count; ++i)
    if (children[i] > 0) ::kill(children[i], sig);
}

void add(pid_t pid) {
  for (std::sig_atomic_t i = 0; i < child_count; ++i)
    if (children[i] == 0) {
      children[i] = pid;
      return;
    }
  if (static_cast<std::size_t>(child_count) < kMaxChildren) {
    children[child_count] = pid;
    child_count = child_count + 1;
  }
}

void remove(pid_t pid) {
  for (std::sig_atomic_t i = 0; i < child_count; ++i)
    if (children[i] == pid) children[i] = 0;
}
}  // namespace stop

std::string duration_text(double s) {
  std::ostringstream o;
  if (s >= 3600)
    o << static_cast<long>(s / 3600) << "h" << std::setw(2) << std::setfill('0')
      << static_cast<long>(s / 60) % 60 << "m";
  else if (s >= 60)
    o << static_cast<long>(s / 60) << "m" << std::setw(2) << std::setfill('0') << static_cast<long>(s) % 60
      << "s";
  else
    o << std::lround(s) << "s";
  return o.str();
}

// Returns the signal that stopped the sweep, 0 if every point ran.
int run_local(const Sweep& s, const std::vector<const Point*>& todo, const fs::path& out, int jobs,
              bool quiet) {
  std::map<pid_t, const Point*> running;
  std::size_t next = 0, done = 0;
  const std::size_t limit = std::min(stop::kMaxChildren, static_cast<std::size_t>(std::max(1, jobs)));
  const auto t0 = std::chrono::steady_clock::now();
  struct sigaction sa {
  }, old_int{}, old_term{}, old_hup{};
  sa.sa_handler = stop::on_sweep_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: waitpid returns to see the signal
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGHUP, &sa, &old_hup);
  auto finish = [&](const Point* p, int code) {
    if (stop::signal_number != 0) return;  // stopped, not finished: a resume reruns it
    sim::write_file_atomic(out / "points" / p->id / "exit_code", std::to_string(code) + "\n");
    ++done;
    if (!quiet) {
      // Points done and an estimate of the time left: the mean wall time per point so
      // far, over the points left, `jobs` at a time.
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double left = static_cast<double>(todo.size() - done);
      const double eta = elapsed / static_cast<double>(done) * left;
      std::cerr << "[" << done << "/" << todo.size() << "] point " << p->id << " (" << describe(s, *p)
                << "): " << (code == 0 ? "ok" : "FAILED, exit " + std::to_string(code)) << "; "
                << duration_text(elapsed) << " so far"
                << (done < todo.size() ? ", about " + duration_text(eta) + " left" : std::string()) << "\n";
    }
  };
  while (next < todo.size() || !running.empty()) {
    while (stop::signal_number == 0 && next < todo.size() && running.size() < limit) {
      const Point* p = todo[next++];
      const fs::path dir = out / "points" / p->id;
      const pid_t pid = spawn_self(run_args(s, *p, dir), dir / "stdout.txt", dir / "stderr.txt");
      if (pid < 0) {
        std::ofstream(dir / "stderr.txt")
            << "wse-emu: error: could not start " << self_executable().string() << "\n";
        finish(p, 127);
      } else {
        running.emplace(pid, p);
        stop::add(pid);
        if (stop::signal_number != 0) ::kill(pid, stop::signal_number);  // arrived while starting it
      }
    }
    if (running.empty()) {
      if (stop::signal_number != 0) break;
      continue;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    stop::remove(pid);
    finish(it->second,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    running.erase(it);
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  stop::child_count = 0;
  return stop::signal_number;
}

// One job array: task n runs todo[n]. Each task records its point's exit code itself,
// so the job's own state is not needed (no accounting database).
void run_slurm(const Sweep& s, const std::vector<const Point*>& todo, const fs::path& out, int jobs,
               bool quiet) {
  const fs::path dir = out / "slurm";
  fs::create_directories(dir);
  std::ostringstream sh;
  sh << "#!/bin/bash\n"
     << "# Written by wse-emu sweep: one array task per point still to run.\n"
     << "#SBATCH --job-name=" << shell_quote("wse-sweep-" + s.name) << "\n"
     << "#SBATCH --output=" << (dir / "task-%a.out").string() << "\n"
     << "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n"
     << "set -u\n"
     << "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (std::size_t n = 0; n < todo.size(); ++n) {
    const fs::path pdir = out / "points" / todo[n]->id;
    sh << "  " << n << ")\n    dir=" << shell_quote(pdir.string()) << "\n    set --";
    for (const auto& a : run_args(s, *todo[n], pdir)) sh << " " << shell_quote(a);
    sh << " ;;\n";
  }
  sh << "  *) echo \"no point for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 1 ;;\nesac\n"
     << shell_quote(self_executable().string()) << " \"$@\" >\"$dir/stdout.txt\" 2>\"$dir/stderr.txt\"\n"
     << "code=$?\necho $code >\"$dir/exit_code.tmp\" && mv \"$dir/exit_code.tmp\" \"$dir/exit_code\"\n";
  const fs::path script = dir / "sweep.sbatch";
  sim::write_file_atomic(script, sh.str());
  fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);

  std::string array = "0-" + std::to_string(todo.size() - 1);
  if (jobs > 0) array += "%" + std::to_string(jobs);
  const std::string cmd = "sbatch --parsable --array=" + array +
                          " --chdir=" + shell_quote(fs::current_path().string()) + " " +
                          shell_quote(script.string()) + " 2>&1";
  auto [code, text] = capture(cmd);
  if (code != 0) throw std::runtime_error("sbatch failed (exit " + std::to_string(code) + "): " + text);
  const std::string job = text.substr(0, text.find_first_of(";\n"));
  if (job.empty() || job.find_first_not_of("0123456789") != std::string::npos) {
    throw std::runtime_error("sbatch printed no job id: " + text);
  }
  if (!quiet) std::cerr << "submitted Slurm job array " << job << " (" << todo.size() << " tasks); waiting\n";
  // Wait until squeue no longer lists any task of the array: completed jobs drop out of
  // its default listing (and out of slurmctld after MinJobAge, which is an error here).
  auto poll = std::chrono::milliseconds(100);
  std::size_t last = todo.size() + 1;
  for (;;) {
    auto [qcode, qtext] = capture("squeue -h -r -j " + job + " -o %i 2>/dev/null");
    if (qcode != 0) break;
    const auto left = static_cast<std::size_t>(std::count(qtext.begin(), qtext.end(), '\n'));
    if (left == 0) break;
    if (!quiet && left != last) std::cerr << "  " << left << " task(s) pending or running\n";
    last = left;
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 2, std::chrono::milliseconds(2000));
  }
}

// ---- gathering ----

std::string fmt_figure(double v) {
  // Counts (bytes, events, requests) exactly; other figures to 10 significant digits.
  if (std::fabs(v) < 9.0e15 && v == std::floor(v)) return std::to_string(static_cast<std::int64_t>(v));
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

bool write_results(const Sweep& s, const fs::path& out) {
  struct Row {
    std::string status, error;
    std::map<std::string, double> figures;
  };
  std::vector<Row> rows;
  std::vector<std::string> figure_order;
  std::set<std::string> known;
  bool all_ok = true;
  for (const auto& p : s.points) {
    const fs::path dir = out / "points" / p.id;
    Row r;
    if (fs::exists(dir / "summary.json")) {
      r.status = "ok";
      for (const auto& [k, v] : numeric_figures(nlohmann::json::parse(read_text(dir / "summary.json")))) {
        r.figures[k] = v;
        if (known.insert(k).second) figure_order.push_back(k);
      }
    } else if (fs::exists(dir / "exit_code")) {
      const int code = std::atoi(read_text(dir / "exit_code").c_str());
      r.status = code == kExitBadInput ? "bad_input" : "failed";
      r.error = last_error_line(dir / "stderr.txt");
      if (r.error.empty() && code > 128)
        r.error = std::string("killed by signal: ") + ::strsignal(code - 128);
      if (r.error.empty()) r.error = "exit status " + std::to_string(code);
      all_ok = false;
    } else {
      r.status = "not_run";
      r.error = "the point did not run (no exit_code)";
      all_ok = false;
    }
    rows.push_back(std::move(r));
  }
  // Column order: simulated_time_s, events, the rest by key path. Nothing of the host's
  // here, so that the file is the same whatever the backend, --jobs or finishing order.
  std::vector<std::string> ordered{"simulated_time_s", "events"};
  std::vector<std::string> middle;
  for (const auto& k : figure_order) {
    if (k != "simulated_time_s" && k != "events") middle.push_back(k);
  }
  std::sort(middle.begin(), middle.end());
  ordered.insert(ordered.end(), middle.begin(), middle.end());

  std::vector<std::string> header{"point"};
  header.insert(header.end(), s.columns.begin(), s.columns.end());
  header.push_back("status");
  header.push_back("error");
  header.insert(header.end(), ordered.begin(), ordered.end());
  sim::CsvWriter csv(header);
  for (std::size_t i = 0; i < s.points.size(); ++i) {
    std::vector<std::string> cells{s.points[i].id};
    cells.insert(cells.end(), s.points[i].varied.begin(), s.points[i].varied.end());
    cells.push_back(rows[i].status);
    cells.push_back(rows[i].error);
    for (const auto& k : ordered) {
      auto it = rows[i].figures.find(k);
      cells.push_back(it == rows[i].figures.end() ? "" : fmt_figure(it->second));
    }
    csv.row(cells);
  }
  // The host's figures of each point (from its host.json), in a file of their own.
  const std::vector<std::string> host_keys{"wall_time_s", "cpu_time_s", "peak_rss_bytes"};
  std::vector<std::string> host_header{"point"};
  host_header.insert(host_header.end(), s.columns.begin(), s.columns.end());
  host_header.insert(host_header.end(), host_keys.begin(), host_keys.end());
  sim::CsvWriter host(host_header);
  for (const auto& p : s.points) {
    std::vector<std::string> cells{p.id};
    cells.insert(cells.end(), p.varied.begin(), p.varied.end());
    nlohmann::json h;
    const fs::path hf = out / "points" / p.id / "host.json";
    if (fs::exists(hf)) h = nlohmann::json::parse(read_text(hf), nullptr, false);
    for (const auto& k : host_keys) {
      cells.push_back(h.is_object() && h.contains(k) && h[k].is_number() ? fmt_figure(h[k].get<double>())
                                                                         : "");
    }
    host.row(cells);
  }
  sim::write_file_atomic(out / "host.csv", host.str());
  sim::write_file_atomic(out / "results.csv", csv.str());
  return all_ok;
}

// Why `out` (not empty) is not an earlier run of sweep `s`, or nothing if it is one.
std::optional<std::string> foreign_content(const Sweep& s, const fs::path& out) {
  if (!fs::is_directory(out)) return sim::output_in_use_message(out);
  const std::set<std::string> ours{"points", "results.csv", "host.csv", "slurm", sim::kClaimMarker};
  for (const auto& e : fs::directory_iterator(out)) {
    if (!ours.count(e.path().filename().string())) {
      return sim::output_in_use_message(out) + " (it holds '" + e.path().filename().string() +
             "', which is not part of a sweep)";
    }
  }
  std::map<std::string, const Point*> by_id;
  for (const auto& p : s.points) by_id[p.id] = &p;
  if (!fs::is_directory(out / "points")) return std::nullopt;
  for (const auto& e : fs::directory_iterator(out / "points")) {
    const std::string id = e.path().filename().string();
    auto it = by_id.find(id);
    const fs::path record = e.path() / "point.txt";
    if (it == by_id.end() || (fs::exists(record) && read_text(record) != point_record(*it->second))) {
      return e.path().string() +
             " holds the result of a different point (another sweep file?); use a new --out, or --force to "
             "run this sweep's points there again";
    }
  }
  return std::nullopt;
}

}  // namespace

// ---- shared helpers ----

std::optional<std::string> not_a_file(const fs::path& file) {
  std::error_code ec;
  const auto st = fs::status(file, ec);
  if (st.type() == fs::file_type::not_found) return "does not exist";
  if (ec) return "cannot be read: " + ec.message();
  if (st.type() == fs::file_type::directory) return "is a directory, not a file";
  if (st.type() != fs::file_type::regular) return "is not a regular file (a FIFO, socket or device)";
  return std::nullopt;
}

std::vector<std::vector<std::string>> sweep_points(const fs::path& file) {
  std::vector<std::vector<std::string>> out;
  for (auto& p : read_sweep(file).points) out.push_back(std::move(p.overrides));
  return out;
}

fs::path self_executable() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("wse-emu") : p;
}

int run_self(const std::vector<std::string>& args, const fs::path& stdout_file, const fs::path& stderr_file) {
  const pid_t pid = spawn_self(args, stdout_file, stderr_file);
  if (pid < 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string last_error_line(const fs::path& file) {
  std::istringstream in(read_text(file));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.rfind("note: ", 0) != 0 && line.rfind("wse-emu: warning: ", 0) != 0)
      last = line;
  }
  for (const char* prefix : {"wse-emu: error: ", "wse-emu: "}) {
    if (last.rfind(prefix, 0) == 0) return last.substr(std::string(prefix).size());
  }
  return last;
}

std::vector<std::pair<std::string, double>> numeric_figures(const nlohmann::json& summary) {
  std::vector<std::pair<std::string, double>> all;
  auto walk = [&](auto&& self, const nlohmann::json& j, const std::string& prefix) -> void {
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) self(self, v, prefix.empty() ? k : prefix + "." + k);
    } else if (j.is_number()) {
      all.emplace_back(prefix, j.get<double>());
    }
  };
  walk(walk, summary, "");
  std::vector<std::pair<std::string, double>> out;
  for (const char* first : {"simulated_time_s", "events"}) {
    for (const auto& f : all)
      if (f.first == first) out.push_back(f);
  }
  for (const auto& f : all) {
    if (f.first != "simulated_time_s" && f.first != "events" && f.first != "wall_time_s") out.push_back(f);
  }
  return out;
}

std::optional<std::string> validate_experiment(const sim::Registry& registry, const fs::path& experiment,
                                               const std::vector<std::string>& overrides) {
  // check_experiment is exactly `wse-emu check`; capture what it prints.
  std::ostringstream out, err;
  std::streambuf* old_out = std::cout.rdbuf(out.rdbuf());
  std::streambuf* old_err = std::cerr.rdbuf(err.rdbuf());
  int code = kExitRunFailed;
  try {
    code = check_experiment(registry, experiment, overrides, false);
  } catch (const std::exception& e) {
    err << "wse-emu: error: " << e.what() << "\n";
  }
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  if (code == kExitOk) return std::nullopt;
  std::string msg = err.str();
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  const std::string prefix = "wse-emu: error: ";
  if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
  return msg.empty() ? std::string("invalid configuration") : msg;
}

namespace {
// The points not complete in out/points/<id> (summary.json there, and point.txt naming
// the same overrides), each folder emptied and its point.txt written; complete ones are
// skipped (resume). An incomplete or failed attempt, or (--force) another sweep's point,
// is removed first.
std::vector<const Point*> points_to_run(const Sweep& s, const fs::path& out) {
  std::vector<const Point*> todo;
  for (const auto& p : s.points) {
    const fs::path dir = out / "points" / p.id;
    const std::string record = point_record(p);
    if (fs::exists(dir / "summary.json") && read_text(dir / "point.txt") == record) continue;
    fs::remove_all(dir);
    sim::create_output_directory(dir);
    sim::write_file_atomic(dir / "point.txt", record);
    todo.push_back(&p);
  }
  return todo;
}
}  // namespace

int run_point_specs(const fs::path& experiment, const std::vector<PointSpec>& points, const fs::path& out,
                    const std::string& backend, int jobs, bool quiet) {
  Sweep s;
  s.name = out.filename().string();
  s.experiment = experiment;
  s.columns = {"point"};
  for (const PointSpec& spec : points) {
    Point p;
    p.id = spec.id;
    p.varied = {spec.label};
    p.overrides = spec.overrides;
    s.points.push_back(std::move(p));
  }
  const std::vector<const Point*> todo = points_to_run(s, out);
  if (todo.empty()) return 0;
  if (backend == "slurm") {
    run_slurm(s, todo, out, jobs, quiet);
    return 0;
  }
  if (jobs <= 0) jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return run_local(s, todo, out, jobs, quiet);
}

int run_sweep(const sim::Registry& registry, const SweepOptions& opt) {
  Sweep s;
  try {
    s = read_sweep(opt.sweep_file);
  } catch (const SweepError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const config::ConfigError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  }
  if (opt.backend != "local" && opt.backend != "slurm") {
    std::cerr << "wse-emu: error: unknown backend '" << opt.backend << "'; allowed: local, slurm\n";
    return kExitBadInput;
  }

  // Validate every point before running any.
  int bad = 0;
  for (const auto& p : s.points) {
    if (auto err = validate_experiment(registry, s.experiment, p.overrides)) {
      std::cerr << "wse-emu: error: sweep point " << p.id << " (" << describe(s, p) << "): " << *err << "\n";
      ++bad;
    }
  }
  if (bad) {
    std::cerr << "wse-emu: " << bad << " of " << s.points.size()
              << " sweep points are invalid; nothing was run\n";
    return kExitBadInput;
  }

  const fs::path out = fs::absolute(opt.out_dir).lexically_normal();
  // DIR is new, empty, or an earlier run of this very sweep (resumed); anything else is
  // refused before anything is written unless --force.
  if (!opt.force && sim::directory_in_use(out)) {
    if (auto why = foreign_content(s, out)) {
      std::cerr << "wse-emu: error: " << *why << "\n";
      return kExitBadInput;
    }
  }
  std::vector<const Point*> todo;
  std::unique_ptr<sim::FolderClaim> claim;
  try {
    sim::create_output_directory(out / "points");
    // One sweep at a time in a folder (as `run`): a second one would run the same points.
    claim = std::make_unique<sim::FolderClaim>(out);
    if (!claim->refused().empty()) {
      std::cerr << "wse-emu: error: " << claim->refused() << "\n";
      return kExitBadInput;
    }
    todo = points_to_run(s, out);
    if (!opt.quiet) {
      std::cerr << "sweep " << s.name << ": " << s.points.size() << " points, " << todo.size() << " to run ("
                << s.points.size() - todo.size() << " already complete), backend " << opt.backend << "\n";
    }
    if (!todo.empty()) {
      if (opt.backend == "local") {
        int jobs = opt.jobs;
        if (jobs <= 0) jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        if (const int sig = run_local(s, todo, out, jobs, opt.quiet); sig != 0) {
          std::cerr << "wse-emu: sweep stopped by " << ::strsignal(sig) << " (signal " << sig
                    << "): the running points were stopped too; rerun the same command to resume\n";
          return 128 + sig;
        }
      } else {
        run_slurm(s, todo, out, opt.jobs, opt.quiet);
      }
    }
    const bool all_ok = write_results(s, out);
    std::cout << (out / "results.csv").string() << "\n";
    if (!all_ok) {
      std::cerr << "wse-emu: some sweep points failed; see the status and error columns of results.csv\n";
      return kExitRunFailed;
    }
  } catch (const std::exception& e) {
    std::cerr << "wse-emu: sweep failed: " << e.what() << "\n";
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace wse::app
