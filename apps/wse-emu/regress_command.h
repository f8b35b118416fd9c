// `wse-emu regress`: reruns the experiments listed in a regression suite and compares
// their summary figures with the reference results kept in the repository, each
// figure with its own tolerance.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace wse::app {

struct RegressOptions {
  std::filesystem::path suite = "tests/regression/suite.yaml";
  std::filesystem::path out_dir;  // keep the runs here (default: a temporary folder, removed)
  std::string only;               // run just this experiment of the suite
  bool update = false;            // rewrite the references instead of judging
  bool all = false;               // list every figure (default: the headline figures that moved)
  bool force = false;             // write into an out_dir that is not empty
  bool quiet = false;             // only the verdicts, not the figure tables
};

int run_regress(const RegressOptions& opt);

// Reads a regression suite and the reference files it names, as `wse-emu regress` does
// before it runs anything; returns the number of reference figures read. Throws
// InputFileError (sweep_command.h) naming the file (fuzz/fuzz_regress.cpp).
std::size_t check_regress_suite(const std::filesystem::path& suite);

}  // namespace wse::app
