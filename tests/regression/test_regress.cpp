// `wse-emu regress`: the shipped experiments still give their reference figures; a
// reference moved out of tolerance (on a copy) fails with that figure named; a change
// inside a figure's own tolerance passes; --update rewrites the copy, prints what
// changed, and keeps the figure's tolerance.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class Regress : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::wse::testing::temp_path(std::string("wse_regress_") +
                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "refs");
    // A copy of the suite: the shipped kv_link experiment (fast), its shipped reference.
    const fs::path src = WSE_SOURCE_DIR;
    fs::copy_file(src / "tests/regression/references/kv_link.json", dir_ / "refs/kv_link.json");
    std::ofstream(dir_ / "suite.yaml") << "references: refs\n"
                                       << "experiments:\n  - name: kv_link\n    experiment: "
                                       << (src / "configs/experiments/kv_link.yaml").string() << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  nlohmann::json reference() { return nlohmann::json::parse(slurp(dir_ / "refs/kv_link.json")); }
  void save(const nlohmann::json& j) { std::ofstream(dir_ / "refs/kv_link.json") << j.dump(2) << "\n"; }
  Result regress(const std::string& extra = "") {
    return wse_emu("regress --suite '" + (dir_ / "suite.yaml").string() + "' " + extra, dir_ / "io");
  }
  // The table line of a figure.
  static std::string line_of(const std::string& out, const std::string& figure) {
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(figure + " ", 0) == 0) return line;
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(Regress, ShippedReferencesPass) {
  Result r = wse_emu("regress --all", dir_ / "io");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("figure"));
  // Every reference holds its resolved configuration, and the runs match it.
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("configuration: not in the reference")));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("key(s) differ from the reference")));
  EXPECT_THAT(r.out, HasSubstr("configuration: as in the reference"));
  EXPECT_THAT(r.out, HasSubstr("regression: PASS"));
  EXPECT_THAT(r.out, HasSubstr("== default ("));  // every listed experiment ran
  EXPECT_THAT(r.out, HasSubstr("== kv_link ("));
  EXPECT_THAT(line_of(r.out, "simulated_time_s"), MatchesRegex(".* ok"));
  EXPECT_THAT(line_of(r.out, "kv_transfer.time_s.p99"), MatchesRegex(".* ok"));
}

TEST_F(Regress, PerturbedReferenceFailsAndUpdateRestoresIt) {
  nlohmann::json ref = reference();
  const double p99 = ref["figures"]["kv_transfer.time_s.p99"]["value"].get<double>();
  // 1 % off with the default tolerance of 1e-6: out of tolerance; "now" is 1/1.01 of
  // the reference, a change of -0.990 %.
  ref["figures"]["kv_transfer.time_s.p99"]["value"] = p99 * 1.01;
  ref["figures"]["kv_transfer.time_s.p99"]["tolerance"] = {{"relative", 1e-6}, {"absolute", 0}};
  save(ref);
  Result r = regress("--all");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(line_of(r.out, "kv_transfer.time_s.p99"), MatchesRegex(".*-0\\.99 %.* OUT OF TOLERANCE"));
  EXPECT_THAT(line_of(r.out, "simulated_time_s"), MatchesRegex(".* ok"));
  EXPECT_THAT(r.out, HasSubstr("1 figure(s) out of tolerance"));
  EXPECT_THAT(r.out, HasSubstr("regression: FAIL"));

  // --update: the change is printed, the value restored, the tolerance kept.
  ref["figures"]["kv_transfer.time_s.p99"]["tolerance"] = {{"relative", 2e-6}, {"absolute", 0}};
  save(ref);
  Result u = regress("--update");
  EXPECT_EQ(u.exit_code, 0) << u.out << u.err;
  EXPECT_THAT(u.out, HasSubstr("kv_transfer.time_s.p99: "));
  EXPECT_THAT(u.out, HasSubstr("1 figure(s) changed"));
  const nlohmann::json after = reference();
  EXPECT_DOUBLE_EQ(after["figures"]["kv_transfer.time_s.p99"]["value"].get<double>(), p99);
  EXPECT_EQ(after["figures"]["kv_transfer.time_s.p99"]["tolerance"]["relative"].get<double>(), 2e-6);
  EXPECT_EQ(regress().exit_code, 0);
  // A second --update has nothing to change.
  EXPECT_THAT(regress("--update").out, HasSubstr("unchanged"));
}

TEST_F(Regress, AFiguresOwnToleranceDecides) {
  nlohmann::json ref = reference();
  const double t = ref["figures"]["simulated_time_s"]["value"].get<double>();
  ref["figures"]["simulated_time_s"]["value"] = t * 1.01;
  // 1 % off, tolerance 2 %: passes.
  ref["figures"]["simulated_time_s"]["tolerance"] = {{"relative", 0.02}, {"absolute", 0}};
  save(ref);
  EXPECT_EQ(regress().exit_code, 0);
  // Absolute tolerance: |now - ref| = 0.01 t ~ 2.16 s; 3 s passes, 1 s does not.
  ref["figures"]["simulated_time_s"]["tolerance"] = {{"relative", 0}, {"absolute", 3.0}};
  save(ref);
  EXPECT_EQ(regress().exit_code, 0);
  ref["figures"]["simulated_time_s"]["tolerance"] = {{"relative", 0}, {"absolute", 1.0}};
  save(ref);
  EXPECT_EQ(regress().exit_code, 1);
}

TEST_F(Regress, MissingFigureAndMissingReferenceFail) {
  nlohmann::json ref = reference();
  ref["figures"]["kv_transfer.gone"] = {{"value", 1.0}, {"tolerance", {{"relative", 0}}}};
  ref["figures"].erase("events");
  save(ref);
  Result r = regress("--all");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(line_of(r.out, "kv_transfer.gone"), MatchesRegex(".*MISSING"));
  EXPECT_THAT(line_of(r.out, "events"), MatchesRegex(".*new \\(not judged\\)"));
  // Without --all, a missing headline figure is listed, a missing utilization counted.
  ref["figures"]["utilization.gone"] = {{"value", 0.5}};
  save(ref);
  Result brief = regress();
  EXPECT_EQ(brief.exit_code, 1);
  EXPECT_THAT(line_of(brief.out, "kv_transfer.gone"), MatchesRegex(".*MISSING"));
  EXPECT_EQ(line_of(brief.out, "utilization.gone"), "");
  EXPECT_THAT(brief.out, HasSubstr("events (new) 1, utilization (missing) 1 (1 out of tolerance)"));
  EXPECT_THAT(brief.out, HasSubstr("2 figure(s) out of tolerance"));
  fs::remove(dir_ / "refs/kv_link.json");
  Result none = regress();
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.out, HasSubstr("no reference"));
  Result bad = wse_emu("regress --suite '" + (dir_ / "nope.yaml").string() + "'", dir_ / "io");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("does not exist"));
  // A typo in the suite is an error, not a silently ignored key.
  std::ofstream(dir_ / "typo.yaml") << "references: refs\ntolerence: {relative: 0.1}\nexperiments: []\n";
  Result typo = wse_emu("regress --suite '" + (dir_ / "typo.yaml").string() + "'", dir_ / "io");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_THAT(
      typo.err,
      HasSubstr("typo.yaml:2:1: key 'tolerence': unknown key 'tolerence'; did you mean 'tolerance'?"));
}

// Issue 17, item 20: after one hardware change, `regress` printed every figure (some 300
// lines for the default experiment) and never named the input that changed. It now
// leads with the configuration keys that differ from the reference's resolved
// configuration, then the headline figures that moved; the others are counted by group
// and listed with --all.
TEST_F(Regress, OneHardwareChangeLeadsWithTheChangedKeyAndTheHeadlineFiguresThatMoved) {
  ASSERT_TRUE(reference().contains("config")) << "the shipped reference holds its resolved configuration";
  std::ofstream(dir_ / "suite.yaml", std::ios::app) << "    set: {kv_transfer.link.bandwidth: 1.6 Tb/s}\n";
  Result r = regress();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_GE(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[0], HasSubstr("== kv_link ("));
  EXPECT_EQ(lines[1], "configuration: 1 key(s) differ from the reference");
  EXPECT_THAT(lines[3], MatchesRegex(" *kv_transfer.link.bandwidth +3.2 Tb/s +1.6 Tb/s"));
  // The headline figures that moved, with their verdicts.
  EXPECT_THAT(line_of(r.out, "kv_transfer.time_s.p99"), MatchesRegex(".*\\+99.6 %.* OUT OF TOLERANCE"));
  // The rest is counted, not listed: neither the event count nor any utilization.
  EXPECT_EQ(line_of(r.out, "events"), "");
  for (const auto& l : lines) EXPECT_NE(l.rfind("utilization", 0), 0u) << l;
  // The run's energy and cost (the fleet held, and drawing static power, for the
  // simulated time, which moves by 1.2e-6) are counted with the rest.
  EXPECT_THAT(r.out,
              HasSubstr("other figure(s) changed, 14 of them out of tolerance: cost 3 (3 out of tolerance), "
                        "energy 8 (7 out of tolerance), events 1 (1 out of tolerance)"));
  EXPECT_THAT(r.out, HasSubstr("--all lists them"));
  EXPECT_THAT(r.out, HasSubstr("24 figure(s) out of tolerance"));
  // --all lists every figure, moved or not.
  Result all = regress("--all");
  EXPECT_EQ(all.exit_code, 1);
  EXPECT_THAT(line_of(all.out, "events"), MatchesRegex(".* OUT OF TOLERANCE"));
  EXPECT_THAT(line_of(all.out, "model.weight_bytes"), MatchesRegex(".* ok"));
  EXPECT_GT(std::count(all.out.begin(), all.out.end(), '\n'),
            std::count(r.out.begin(), r.out.end(), '\n') + 5);
}

// A reference written before the configuration was recorded says so; --update records
// it, with the trace's path relative to the experiment's folder (the same text in every
// checkout), and the next comparison finds it unchanged.
TEST_F(Regress, UpdateRecordsTheResolvedConfiguration) {
  nlohmann::json ref = reference();
  ref.erase("config");
  save(ref);
  Result r = regress();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("configuration: not in the reference"));
  Result u = regress("--update");
  EXPECT_EQ(u.exit_code, 0) << u.out << u.err;
  EXPECT_THAT(u.out, HasSubstr("configuration recorded ("));
  const nlohmann::json after = reference();
  ASSERT_TRUE(after.contains("config"));
  EXPECT_EQ(after["config"]["kv_transfer.link.bandwidth"], "3.2 Tb/s");
  EXPECT_EQ(after["config"]["workload.trace.path"], "../../workloads/data/traces/azure2023_conv.csv");
  EXPECT_THAT(regress().out, HasSubstr("configuration: as in the reference"));
  // A reference whose configuration is not key -> text is bad input naming the file.
  ref = reference();
  ref["config"]["kv_transfer.link.bandwidth"] = 3.2;
  save(ref);
  Result bad = regress();
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err,
              HasSubstr("kv_link.json: config key 'kv_transfer.link.bandwidth': the value must be a string"));
}

}  // namespace
}  // namespace wse::testing
