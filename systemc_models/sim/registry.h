// What the `wse-emu` command can run: experiment modes (`wse-emu run`) and
// microbenchmarks (`wse-emu bench NAME`). Each component registers its own entries
// through a function it exports (e.g. wse::efa::register_benches), called explicitly
// from apps/wse-emu/registrations.cpp; there is no global registry object.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "systemc_models/config/config.h"
#include "systemc_models/sim/limits.h"
#include "systemc_models/stats/stats.h"
#include "systemc_models/trace/trace.h"

namespace wse::sim {

class Progress;

// Services a running experiment may use. All optional.
struct RunContext {
  trace::Writer* trace = nullptr;  // null when --trace is off
  Progress* progress = nullptr;    // null when progress is silenced
  bool token_times = false;        // --token-times: keep every token's emission time (tokens.csv)
};

// An experiment elaborated from configuration (phase 1: all validation, capacity
// checks and module construction happen in the factory, before any output exists),
// then simulated (phase 2).
class Experiment {
 public:
  virtual ~Experiment() = default;
  // Runs the simulation to completion.
  virtual void run(RunContext& ctx) = 0;
  // Adds mode-specific headline figures to summary.json (requests, throughput, ...).
  virtual void summarize(nlohmann::json& summary) const = 0;
  // Extra files: name -> content, written atomically next to summary.json.
  virtual std::map<std::string, std::string> extra_files() const { return {}; }
  // Model-level events processed outside the SystemC kernel (added to "events").
  virtual std::uint64_t model_events() const { return 0; }
  // Simulated time covered by the run; by default the SystemC kernel's time.
  virtual double simulated_seconds() const;
  // Statistics groups owned outside the sc_object tree.
  virtual std::vector<const stats::Group*> extra_stats() const { return {}; }
};

// What the `experiment:` section of every experiment file says.
struct ExperimentInfo {
  std::string name;
  std::string mode;
  std::uint64_t seed = 1;
  // The timeline writer when --trace is given, else null. Its file opens only after
  // elaboration; modules may register their tracks while they are built.
  trace::Writer* trace = nullptr;
  // limits.memory_budget, read before the factory runs: factories charge the
  // configuration-sized state they are about to allocate. Null: no limit (tests that
  // build experiments directly).
  MemoryBudget* memory = nullptr;
  // Warnings about the configuration that do not stop it (e.g. a knob whose estimated
  // simulation cost is far above its default's): one line each, naming file:line and
  // key; `check` and `run` print them on stderr. Null: not collected.
  std::vector<std::string>* warnings = nullptr;
};

// Builds an experiment from the configuration root (`experiment:` has been read).
using ExperimentFactory =
    std::function<std::unique_ptr<Experiment>(config::Section& root, const ExperimentInfo& info)>;

struct BenchArgs {
  std::filesystem::path out_dir;  // exists; write CSV files here (sim::write_file_atomic)
  bool quick = false;             // smaller sweep for tests
  bool quiet = false;
  // Bench-specific choices from the command line, by option name (e.g. "size", "grid",
  // "reduction", "accumulate" for `bench gemv`), each value as given (repeatable options
  // give several); a bench ignores the names it does not know.
  std::map<std::string, std::vector<std::string>> options;
};

struct Bench {
  std::string description;
  // Returns the names of the files written, for the command to list.
  std::function<std::vector<std::string>(const BenchArgs&)> run;
};

class Registry {
 public:
  void add_mode(const std::string& name, std::string description, ExperimentFactory f);
  void add_bench(const std::string& name, Bench b);
  const ExperimentFactory* mode(const std::string& name) const;
  const Bench* bench(const std::string& name) const;
  std::vector<std::pair<std::string, std::string>> modes() const;  // name, description
  std::vector<std::pair<std::string, std::string>> benches() const;

 private:
  std::map<std::string, std::pair<std::string, ExperimentFactory>> modes_;
  std::map<std::string, Bench> benches_;
};

}  // namespace wse::sim
