// Byte-identical reruns: every shipped experiment, run twice on its first requests,
// writes the same bytes to every file but host.json (the host's wall time, memory, ...);
// and a sweep's results.csv is the same with one process at a time and with two.
#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/experiments/inputs.h"
#include "util/cli_harness.h"
#include "util/shipped_files.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> n;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n.insert(fs::relative(e.path(), dir).string());
  }
  return n;
}

// The first line where two texts differ, for the failure message.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream ia(a), ib(b);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ga = static_cast<bool>(std::getline(ia, la));
    const bool gb = static_cast<bool>(std::getline(ib, lb));
    if (!ga && !gb)
      return "(same lines; sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + ")";
    if (la != lb || ga != gb) return "line " + std::to_string(line) + ":\n  " + la + "\n  " + lb;
  }
}

class Reproducible : public ::testing::TestWithParam<std::string> {};

TEST_P(Reproducible, TwoRunsWriteTheSameBytes) {
  const fs::path exp = fs::path(WSE_SOURCE_DIR) / "configs/experiments" / GetParam();
  // The process id keeps two checkouts' suites running at once out of each other's folders.
  const fs::path scratch =
      ::wse::testing::temp_path("wse_repro_" + exp.stem().string() + "_" + std::to_string(::getpid()));
  fs::remove_all(scratch);
  // One experiment also writes its timeline, which must reproduce too.
  const std::string trace = exp.stem() == "kv_transfer_efa" ? " --trace" : "";
  for (const char* run : {"a", "b"}) {
    const Result r = wse_emu("run '" + exp.string() + "' --quiet --set workload.trace.limit=12" + trace +
                                 " --out '" + (scratch / run).string() + "'",
                             scratch / "io");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::set<std::string> a = files_in(scratch / "a");
  ASSERT_EQ(a, files_in(scratch / "b"));
  for (const char* f : {"summary.json", "stats.json", "config.resolved.yaml", "host.json", "requests.csv"}) {
    EXPECT_TRUE(a.count(f)) << f;
  }
  if (!trace.empty()) {
    EXPECT_TRUE(a.count("trace.json"));
  }
  for (const auto& f : a) {
    if (f == "host.json") continue;  // declared not reproducible
    const std::string x = slurp(scratch / "a" / f), y = slurp(scratch / "b" / f);
    EXPECT_TRUE(x == y) << f << " differs between two runs, first at " << first_difference(x, y);
  }
  // The host's figures are in host.json only.
  const nlohmann::json s = nlohmann::json::parse(slurp(scratch / "a" / "summary.json"));
  EXPECT_FALSE(s.contains("wall_time_s"));
  const nlohmann::json h = nlohmann::json::parse(slurp(scratch / "a" / "host.json"));
  EXPECT_EQ(h["reproducible"], false);
  EXPECT_GT(h["wall_time_s"].get<double>(), 0.0);
  EXPECT_GT(h["peak_rss_bytes"].get<double>(), 0.0);
  // The memory estimate's bound on a requests.csv row holds this header.
  const std::string csv = slurp(scratch / "a" / "requests.csv");
  const std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_LE(static_cast<std::uint64_t>(std::count(header.begin(), header.end(), ',') + 1),
            experiments::kRequestsCsvColumns)
      << header;
  fs::remove_all(scratch);
}

INSTANTIATE_TEST_SUITE_P(Shipped, Reproducible,
                         ::testing::ValuesIn(shipped_yaml_files("configs/experiments")), file_param_name);

// Six points of the KV-link experiment (two link bandwidths x three arrival rates, 20
// requests each) with --jobs 1 and --jobs 2: the points finish in different orders,
// results.csv must not show it. The host's times are in host.csv, one row per point.
TEST(ReproducibleSweep, ResultsCsvIsTheSameWithOneJobAndWithTwo) {
  const fs::path scratch = ::wse::testing::temp_path("wse_repro_sweep");
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  {
    std::ofstream(scratch / "s.yaml")
        << "experiment: " << WSE_SOURCE_DIR << "/configs/experiments/kv_link.yaml\n"
        << "set:\n  workload.trace.limit: 20\n"
        << "grid:\n  kv_transfer.link.bandwidth: [400 Gb/s, 1.6 Tb/s]\n"
        << "  workload.trace.rate_scale: [1, 10, 100]\n";
  }
  for (const char* jobs : {"1", "2"}) {
    const Result r = wse_emu("sweep '" + (scratch / "s.yaml").string() + "' -q --jobs " + jobs + " --out '" +
                                 (scratch / (std::string("j") + jobs)).string() + "'",
                             scratch / "io");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::string one = slurp(scratch / "j1" / "results.csv"), two = slurp(scratch / "j2" / "results.csv");
  EXPECT_EQ(std::count(one.begin(), one.end(), '\n'), 7) << one;
  EXPECT_TRUE(one == two) << "results.csv differs, first at " << first_difference(one, two);
  EXPECT_EQ(one.find("wall_time_s"), std::string::npos);
  const std::string host = slurp(scratch / "j2" / "host.csv");
  EXPECT_EQ(
      host.substr(0, host.find('\n')),
      "point,kv_transfer.link.bandwidth,workload.trace.rate_scale,wall_time_s,cpu_time_s,peak_rss_bytes");
  EXPECT_EQ(std::count(host.begin(), host.end(), '\n'), 7) << host;
  fs::remove_all(scratch);
}

}  // namespace
}  // namespace wse::testing
