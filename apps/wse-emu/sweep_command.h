// `wse-emu sweep`: a design-space sweep over one base experiment. The sweep file names
// the experiment and the configuration keys to vary (a cartesian `grid:` and zipped
// lists); every point is validated in this process before any runs, then each point
// runs as its own `wse-emu run` process (on this machine or as a Slurm job array) and
// the points' summaries are gathered into one results.csv.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "systemc_models/sim/registry.h"

namespace wse::app {

struct SweepOptions {
  std::filesystem::path sweep_file;
  std::filesystem::path out_dir;
  std::string backend = "local";  // local | slurm
  int jobs = 0;  // local: parallel processes (0 = host cores); slurm: array throttle (0 = none)
  bool quiet = false;
  bool force = false;  // use an out_dir that holds something other than this sweep
};

int run_sweep(const sim::Registry& registry, const SweepOptions& opt);

// Bad input in a sweep file, a regression suite or a reference file: the message names
// the file (and line, key or figure) and what to change. The commands exit 2 with it.
class InputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why `file` cannot be read as a regular file ("does not exist", "is a directory", or the
// operating system's reason, e.g. "File name too long"), or nothing when it can. Never
// throws (the error-code overloads of std::filesystem).
std::optional<std::string> not_a_file(const std::filesystem::path& file);

// Reads a sweep file and enumerates its points as `wse-emu sweep` does before it
// validates them: each point's `--set` overrides (KEY=YAML), the fixed `set:` first.
// Throws InputFileError when the file cannot be read as a file, config::ConfigError
// (file:line:column and key path) for anything wrong in it (fuzz/fuzz_sweep.cpp).
std::vector<std::vector<std::string>> sweep_points(const std::filesystem::path& file);

// ---- shared with `wse-emu plan` ----

// A run of the base experiment with its overrides (KEY=YAML), into out/points/<id>.
struct PointSpec {
  std::string id;
  std::string label;  // what the progress lines call it
  std::vector<std::string> overrides;
};

// Runs, as `wse-emu sweep` does (one `wse-emu run` process a point, locally `jobs` at a
// time or as a Slurm job array), those of `points` not complete in out/points/<id>
// (summary.json there, and point.txt naming the same overrides); returns the signal that
// stopped them, 0 when every point ran. A point's exit status is in its exit_code file.
int run_point_specs(const std::filesystem::path& experiment, const std::vector<PointSpec>& points,
                    const std::filesystem::path& out, const std::string& backend, int jobs, bool quiet);

// ---- shared with `wse-emu regress` ----

// The validation `wse-emu check` does (load, override, elaborate, unknown-key check),
// in this process, with nothing printed. Returns the error message, or nothing when
// the configuration is valid.
std::optional<std::string> validate_experiment(const sim::Registry& registry,
                                               const std::filesystem::path& experiment,
                                               const std::vector<std::string>& overrides);

// Every numeric leaf of a summary.json, its key path joined with dots, in the order
// simulated_time_s, events, then the others by key path. A `wall_time_s` (in
// the summary.json of versions that kept the host's time there) is left out.
std::vector<std::pair<std::string, double>> numeric_figures(const nlohmann::json& summary);

// Runs this very program (`wse-emu ARGS...`) as a child process with stdout and stderr
// written to the given files; returns its exit status (-1 if it could not start or
// was killed by a signal).
int run_self(const std::vector<std::string>& args, const std::filesystem::path& stdout_file,
             const std::filesystem::path& stderr_file);

// The last non-empty line of a text file that is neither a note nor a warning, without
// a leading "wse-emu: error: " (the message a failed run leaves on stderr).
std::string last_error_line(const std::filesystem::path& file);

// Path of the running wse-emu executable.
std::filesystem::path self_executable();

}  // namespace wse::app
