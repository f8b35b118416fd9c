// The shipped session experiments (configs/experiments/sessions/), each on its first two
// sessions: they run, every turn of every session completes, later turns arrive after
// their previous turn's answer plus a positive think time, a later turn reuses prefix
// blocks, and a rerun writes the same bytes. They sit in their own folder because the
// whole-folder tests (test_reproducible, test_physical_bounds) run each experiment on
// its first 12 requests, and 12 sessions are about 140 turns of up to 124,000 tokens.
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"
#include "util/shipped_files.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::map<std::string, std::string>> rows(const std::string& csv) {
  std::istringstream in(csv);
  std::string line;
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> out;
  const auto split = [](const std::string& l) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream s(l);
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    if (!l.empty() && l.back() == ',') cells.emplace_back();
    return cells;
  };
  while (std::getline(in, line)) {
    if (header.empty()) {
      header = split(line);
      continue;
    }
    const auto cells = split(line);
    std::map<std::string, std::string> r;
    for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) r[header[i]] = cells[i];
    out.push_back(std::move(r));
  }
  return out;
}

class SessionExperiments : public ::testing::TestWithParam<std::string> {};

TEST_P(SessionExperiments, TwoSessionsRunClosedLoopAndReproduce) {
  const fs::path exp = fs::path(WSE_SOURCE_DIR) / "configs/experiments/sessions" / GetParam();
  const fs::path scratch = temp_path("wse_sessions_" + exp.stem().string());
  fs::remove_all(scratch);
  // The Trainium-only ones are cheap enough to run twice; a wafer one runs once.
  const bool twice = exp.stem().string().find("trainium") != std::string::npos;
  for (const char* run : {"a", "b"}) {
    if (std::string(run) == "b" && !twice) break;
    const Result r = wse_emu("run '" + exp.string() + "' --quiet --set workload.trace.limit=2 --out '" +
                                 (scratch / run).string() + "'",
                             scratch / "io");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const nlohmann::json s = nlohmann::json::parse(slurp(scratch / "a" / "summary.json"));
  ASSERT_TRUE(s.contains("sessions")) << s.dump();
  EXPECT_EQ(s["sessions"]["sessions"], 2);
  EXPECT_EQ(s["sessions"]["completed"], 2);
  EXPECT_EQ(s["sessions"]["turns_completed"], s["sessions"]["turns"]);
  const auto r = rows(slurp(scratch / "a" / "requests.csv"));
  ASSERT_EQ(r.size(), s["sessions"]["turns"].get<std::size_t>());
  std::uint64_t hits = 0;
  for (std::size_t i = 1; i < r.size(); ++i) {
    if (r[i].at("turn") == "0") continue;
    // A later turn arrives after its previous turn's last token (think times are at
    // least 0.2 s in agentic_coding.yaml and 2 s in reasoning.yaml).
    EXPECT_GT(std::stod(r[i].at("arrival_s")), std::stod(r[i - 1].at("last_token_s")) + 0.19) << "row " << i;
    hits += std::stoull(r[i].at("prefix_hit_tokens"));
  }
  // Coding sessions start from a shared context of 2,000 tokens or more: every later
  // turn finds at least its first three blocks cached. The CS-3-only runs keep no prefix
  // cache (their SRAM is the KV room): there a later turn reuses its session's retained
  // KV and prefills only what follows it.
  if (exp.stem().string().rfind("agentic", 0) == 0) {
    if (exp.stem().string().find("_wafer") == std::string::npos) {
      EXPECT_GT(hits, 0u) << "later turns reuse earlier blocks";
    } else {
      EXPECT_EQ(hits, 0u) << "no prefix cache on the wafer";
      EXPECT_GT(s["sessions"]["kv_retention"]["prefill_tokens_skipped"].get<std::uint64_t>(), 0u)
          << "later turns reuse the retained KV";
    }
  }
  if (twice) {
    for (const char* f : {"summary.json", "stats.json", "requests.csv"}) {
      EXPECT_EQ(slurp(scratch / "a" / f), slurp(scratch / "b" / f)) << f;
    }
  }
  fs::remove_all(scratch);
}

INSTANTIATE_TEST_SUITE_P(Shipped, SessionExperiments,
                         ::testing::ValuesIn(shipped_yaml_files("configs/experiments/sessions")),
                         file_param_name);

}  // namespace
}  // namespace wse::testing
