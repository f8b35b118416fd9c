// The `wse-emu` command: subcommands, their options, and exit codes.
//   0  success
//   1  the simulation failed while running (a model error, an I/O error)
//   2  bad input: usage, configuration, capacity, memory budget, an output directory in
//      use without --force; nothing was written
#pragma once

#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;
inline constexpr int kExitBadInput = 2;

int main(int argc, char** argv);

// An exception's message as one line for "wse-emu: run failed: <what>": an exception
// that passed through the SystemC kernel (an sc_report "(E549) uncaught exception")
// gives the original message, without SystemC's "In file: ... In process: ... @ ... ps"
// lines; line breaks become "; ".
std::string error_text(const std::exception& e);

struct RunOptions {
  std::filesystem::path experiment;
  std::filesystem::path out_dir;
  std::vector<std::string> overrides;
  bool trace = false;
  bool token_times = false;  // also write tokens.csv (serving modes)
  bool quiet = false;
  bool force = false;  // write into an --out directory that is not empty
};

// `wse-emu run`: validate, simulate, write results. Returns an exit code.
int run_experiment(const sim::Registry& registry, const RunOptions& opt);
// `wse-emu check`: validate and print the resolved configuration (or its parameters).
int check_experiment(const sim::Registry& registry, const std::filesystem::path& experiment,
                     const std::vector<std::string>& overrides, bool list_params);

}  // namespace wse::app
