// `wse-emu compare`: headline figures of run folders side by side with ratios to the
// baseline, in a table and in compare.csv; a sweep folder stands for its points; a
// folder without a summary is bad input (exit 2, no compare.csv).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/cli_harness.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Compare : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::wse::testing::temp_path(
        "wse_compare_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A run folder whose summary has the given TPOT p50, dollars per million output tokens
  // and busiest resource class.
  fs::path run(const std::string& name, double tpot, double usd, const std::string& busiest) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    std::ofstream(d / "summary.json")
        << "{\"experiment\": \"" << name << "\", \"mode\": \"m\", \"simulated_time_s\": 10,"
        << " \"requests\": {\"completed\": 4, \"tpot_s\": {\"p50\": " << tpot << "}},"
        << " \"cost\": {\"usd_per_million_output_tokens\": " << usd << "},"
        << " \"utilization_by_class\": {\"serving.machine*.decode_busy\": {\"mean\": 0.9},"
        << " \"" << busiest << "\": {\"mean\": 0.5}, \"other\": {\"mean\": 0.1}}}";
    return d;
  }
  fs::path dir_;
};

TEST_F(Compare, ThreeRunsWithRatiosToTheBaseline) {
  run("a", 0.010, 20.0, "gpu.instance*.hbm");
  run("b", 0.002, 100.0, "machines.cs3_system*.pe_compute");
  run("c", 0.005, 10.0, "trainium.instance*.sbuf_dma");
  const Result r = wse_emu("compare '" + (dir_ / "a").string() + "' '" + (dir_ / "b").string() + "' '" +
                               (dir_ / "c").string() + "' --out '" + (dir_ / "cmp").string() + "'",
                           dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("a (baseline)"));
  // TPOT p50: b 0.002 / 0.010 = 0.2, c 0.005 / 0.010 = 0.5; $ per M output: 5 and 0.5.
  EXPECT_THAT(r.out, HasSubstr("0.002 (x0.200)"));
  EXPECT_THAT(r.out, HasSubstr("0.005 (x0.500)"));
  EXPECT_THAT(r.out, HasSubstr("100 (x5.000)"));
  const std::string csv = slurp(dir_ / "cmp" / "compare.csv");
  EXPECT_THAT(csv, HasSubstr("figure,a,a/a,b,b/a,c,c/a\n"));
  EXPECT_THAT(csv, HasSubstr("tpot_p50_s,0.01,1.000,0.002,0.200,0.005,0.500\n"));
  EXPECT_THAT(csv, HasSubstr("usd_per_million_output_tokens,20,1.000,100,5.000,10,0.500\n"));
  // A figure no run reports is '-'; the busiest resource leaves out the serving layer's
  // own machine-busy classes.
  EXPECT_THAT(csv, HasSubstr("tokens_per_joule_output,-,-,-,-,-,-\n"));
  EXPECT_THAT(
      csv, HasSubstr("busiest_resource,gpu.instance*.hbm (50.0%),-,machines.cs3_system*.pe_compute (50.0%),-,"
                     "trainium.instance*.sbuf_dma (50.0%),-\n"));
  // --baseline: the ratios are to c.
  const Result b =
      wse_emu("compare '" + (dir_ / "a").string() + "' '" + (dir_ / "c").string() + "' --baseline '" +
                  (dir_ / "c").string() + "' --quiet --out '" + (dir_ / "cmp2").string() + "'",
              dir_ / "io");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.out, "");
  EXPECT_THAT(slurp(dir_ / "cmp2" / "compare.csv"), HasSubstr("tpot_p50_s,0.01,2.000,0.005,1.000\n"));
}

// scripts/plot_compare.py draws compare.png from compare.csv.
TEST_F(Compare, PlotScriptDrawsAPng) {
  run("a", 0.010, 20.0, "x");
  run("b", 0.002, 100.0, "x");
  ASSERT_EQ(wse_emu("compare '" + (dir_ / "a").string() + "' '" + (dir_ / "b").string() +
                        "' --quiet --out '" + (dir_ / "cmp").string() + "'",
                    dir_ / "io")
                .exit_code,
            0);
  const std::string cmd = "cd '" + std::string(WSE_SOURCE_DIR) +
                          "' && /usr/bin/python3 scripts/plot_compare.py '" + (dir_ / "cmp").string() +
                          "' > '" + (dir_ / "plot.out").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "plot.out");
  EXPECT_EQ(slurp(dir_ / "cmp" / "compare.png").rfind("\x89PNG\r\n", 0), 0u);
  // A file that is not a compare.csv is refused with the fix.
  std::ofstream(dir_ / "cmp" / "compare.csv") << "x,y\n";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_THAT(slurp(dir_ / "plot.out"), HasSubstr("not a compare.csv"));
}

TEST_F(Compare, ASweepFolderStandsForItsPoints) {
  run("sweep/points/p0", 0.004, 1.0, "x");
  run("sweep/points/p1", 0.008, 2.0, "x");
  const Result r =
      wse_emu("compare '" + (dir_ / "sweep").string() + "' --quiet --out '" + (dir_ / "cmp").string() + "'",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(slurp(dir_ / "cmp" / "compare.csv"), HasSubstr("tpot_p50_s,0.004,1.000,0.008,2.000\n"));
}

TEST_F(Compare, AFolderWithoutSummaryIsBadInputAndNothingIsWritten) {
  run("a", 0.010, 20.0, "x");
  fs::create_directories(dir_ / "empty");
  const Result r = wse_emu("compare '" + (dir_ / "a").string() + "' '" + (dir_ / "empty").string() +
                               "' --out '" + (dir_ / "cmp").string() + "'",
                           dir_ / "io");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no summary.json in '" + (dir_ / "empty").string() + "'"));
  EXPECT_FALSE(fs::exists(dir_ / "cmp"));
  std::ofstream(dir_ / "empty" / "summary.json") << "{not json";
  const Result j = wse_emu(
      "compare '" + (dir_ / "empty").string() + "' --out '" + (dir_ / "cmp").string() + "'", dir_ / "io");
  EXPECT_EQ(j.exit_code, 2);
  EXPECT_THAT(j.err, HasSubstr("summary.json': not JSON"));
  EXPECT_FALSE(fs::exists(dir_ / "cmp"));
}

}  // namespace
}  // namespace wse::testing
