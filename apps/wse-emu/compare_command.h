// `wse-emu compare RUN_DIR... [--baseline DIR] [--out DIR]`: the headline figures of
// several run folders side by side (latency percentiles, throughput, goodput, tokens per
// joule, dollars per million tokens, the busiest resource), each with its ratio to the
// baseline run (the first folder unless --baseline names one), printed as a table and
// written to DIR/compare.csv. A sweep's output folder stands for its points
// (DIR/points/*, in name order).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wse::app {

struct CompareOptions {
  std::vector<std::filesystem::path> runs;
  std::filesystem::path baseline;  // empty: the first run
  std::filesystem::path out_dir = ".";
  bool quiet = false;  // write compare.csv only, no table
};

int run_compare(const CompareOptions& opt);

// One figure of the comparison: its name, and where it is in summary.json.
struct CompareFigure {
  std::string name;
  std::string path;  // dot-separated path into summary.json
};
const std::vector<CompareFigure>& compare_figures();

// The value at a dot-separated path of `summary`, or nothing (null) when absent.
const nlohmann::json* figure_at(const nlohmann::json& summary, const std::string& path);

// The busiest resource class of a run: the class of utilization_by_class with the largest
// mean, excluding the serving layer's own machine-busy classes, as "class (xx.x%)".
std::string busiest_resource(const nlohmann::json& summary);

}  // namespace wse::app
