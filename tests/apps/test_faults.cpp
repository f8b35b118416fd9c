// Every shipped fault schedule (configs/faults/*.yaml; a new file is covered by being
// there) runs through the real command, with and without its faults (--set faults=[]),
// and keeps the invariant of docs/faults.md:
//  - every request of the trace appears exactly once in requests.csv (the same ids as
//    the fault-free run), in a terminal state: completed, or rejected with a reason;
//  - a completed request generated exactly its requested output tokens (at least 1);
//  - summary.json's totals are the sums over the rows (completed, rejected, output
//    tokens, KV bytes, re-routes, KV bytes resent, tokens recomputed);
//  - each kind of fault in the schedule had an effect: efa_loss_burst retransmitted
//    packets and made the KV transfers longer in all; efa_path_down rerouted packets
//    (and, if every path went down, made the transfers longer); decode_system_down
//    re-routed or rejected requests, and every re-routed request that completed ended
//    later than in the fault-free run.
// Bad fault schedules are bad input (exit 2) with file, line, key and what is allowed.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"
#include "util/shipped_files.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using Row = std::map<std::string, std::string>;

std::vector<Row> csv_rows(const std::string& text) {
  std::vector<Row> out;
  std::istringstream in(text);
  std::vector<std::string> header;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    if (line.back() == ',') cells.emplace_back();
    if (header.empty()) {
      header = cells;
      continue;
    }
    EXPECT_EQ(cells.size(), header.size()) << line;
    Row r;
    for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) r[header[i]] = cells[i];
    out.push_back(std::move(r));
  }
  return out;
}

double num(const Row& r, const std::string& k) {
  const auto it = r.find(k);
  return it == r.end() || it->second.empty() ? -1.0 : std::stod(it->second);
}
std::uint64_t count(const Row& r, const std::string& k) {
  return static_cast<std::uint64_t>(std::stoull(r.at(k)));
}

struct RunFiles {
  nlohmann::json summary;
  std::vector<Row> rows;
};

RunFiles run(const fs::path& file, const fs::path& out, const std::string& extra) {
  const Result r = wse_emu("run '" + file.string() + "' --quiet " + extra + " --out '" + out.string() + "'",
                           out.parent_path() / ("io_" + out.filename().string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  RunFiles run;
  run.summary = nlohmann::json::parse(slurp(out / "summary.json"));
  run.rows = csv_rows(slurp(out / "requests.csv"));
  return run;
}

double transfer_seconds(const std::vector<Row>& rows) {
  double t = 0;
  for (const Row& r : rows) {
    if (num(r, "transfer_start_s") >= 0 && num(r, "transfer_end_s") >= 0)
      t += num(r, "transfer_end_s") - num(r, "transfer_start_s");
  }
  return t;
}

class FaultSchedules : public ::testing::TestWithParam<std::string> {};

TEST_P(FaultSchedules, NoRequestIsLostAndTheFaultHasAnEffect) {
  const fs::path file = fs::path(WSE_SOURCE_DIR) / "configs/faults" / GetParam();
  const fs::path scratch = ::wse::testing::temp_path("wse_faults_" + file.stem().string());
  fs::remove_all(scratch);
  const RunFiles f = run(file, scratch / "faults", "");
  const RunFiles ref = run(file, scratch / "reference", "--set 'faults=[]'");
  ASSERT_FALSE(f.rows.empty());
  const nlohmann::json& s = f.summary;
  ASSERT_TRUE(s.contains("faults")) << "the schedule " << GetParam() << " has no faults";
  EXPECT_FALSE(ref.summary.contains("faults"));

  // Each request exactly once, the same requests as without faults.
  std::multiset<std::string> ids, ref_ids;
  for (const Row& r : f.rows) ids.insert(r.at("request"));
  for (const Row& r : ref.rows) ref_ids.insert(r.at("request"));
  EXPECT_EQ(ids, ref_ids);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "a request appears twice";
  EXPECT_EQ(f.rows.size(), s["requests"]["total"].get<std::size_t>());

  // Terminal states and token counts; totals are the sums over the rows.
  std::uint64_t completed = 0, rejected = 0, tokens = 0, kv_bytes = 0, reroutes = 0, resent = 0,
                recomputed = 0;
  std::map<std::string, const Row*> ref_by_id;
  for (const Row& r : ref.rows) ref_by_id[r.at("request")] = &r;
  bool rerouted_later = true;
  for (const Row& r : f.rows) {
    const std::string id = "request " + r.at("request");
    const std::string state = r.at("state");
    ASSERT_TRUE(state == "completed" || state == "rejected") << id << ": " << state;
    if (state == "completed") {
      ++completed;
      EXPECT_EQ(count(r, "tokens_out"), std::max<std::uint64_t>(1, count(r, "output_tokens"))) << id;
      EXPECT_TRUE(r.at("reason").empty()) << id;
      tokens += count(r, "tokens_out");
      if (num(r, "transfer_start_s") >= 0) kv_bytes += count(r, "kv_bytes");
      if (count(r, "reroutes") > 0) {
        const Row& base = *ref_by_id.at(r.at("request"));
        rerouted_later = rerouted_later && num(r, "last_token_s") > num(base, "last_token_s");
      }
    } else {
      ++rejected;
      EXPECT_FALSE(r.at("reason").empty()) << id << " rejected without a reason";
      EXPECT_LT(count(r, "tokens_out"), std::max<std::uint64_t>(1, count(r, "output_tokens"))) << id;
    }
    reroutes += count(r, "reroutes");
    resent += count(r, "kv_bytes_resent");
    recomputed += count(r, "tokens_recomputed");
  }
  EXPECT_EQ(s["requests"]["completed"].get<std::uint64_t>(), completed);
  EXPECT_EQ(s["requests"]["rejected"].get<std::uint64_t>(), rejected);
  EXPECT_EQ(completed + rejected, f.rows.size());
  EXPECT_EQ(s["throughput"]["output_tokens"].get<std::uint64_t>(), tokens);
  EXPECT_EQ(s["kv_transfer"]["bytes"].get<std::uint64_t>(), kv_bytes);
  const nlohmann::json& fault_stats = s["faults"];
  EXPECT_EQ(fault_stats["reroutes"].get<std::uint64_t>(), reroutes);
  EXPECT_EQ(fault_stats["kv_bytes_resent"].get<std::uint64_t>(), resent);
  EXPECT_EQ(fault_stats["tokens_recomputed"].get<std::uint64_t>(), recomputed);
  EXPECT_EQ(fault_stats["rejected"].get<std::uint64_t>(), rejected);

  // The fault had an effect.
  const nlohmann::json& kinds = fault_stats["schedule"];
  EXPECT_GT(fault_stats["requests_affected"].get<std::uint64_t>(), 0u);
  if (kinds["efa_loss_burst"].get<int>() > 0) {
    EXPECT_GT(fault_stats["efa"]["packets_retransmitted"].get<std::uint64_t>(), 0u);
    EXPECT_GT(transfer_seconds(f.rows), transfer_seconds(ref.rows));
  }
  if (kinds["efa_path_down"].get<int>() > 0) {
    EXPECT_GT(fault_stats["efa"]["packets_rerouted"].get<std::uint64_t>(), 0u);
    EXPECT_GT(fault_stats["efa"]["requests_with_transfer_in_fault_window"].get<std::uint64_t>(), 0u);
  }
  if (kinds["decode_system_down"].get<int>() > 0) {
    EXPECT_GT(fault_stats["decode_failures"].get<std::uint64_t>(), 0u);
    EXPECT_GT(reroutes + rejected, 0u);
    EXPECT_TRUE(rerouted_later) << "a re-routed request finished no later than without the fault";
  }
  fs::remove_all(scratch);
}

INSTANTIATE_TEST_SUITE_P(Shipped, FaultSchedules, ::testing::ValuesIn(shipped_yaml_files("configs/faults")),
                         file_param_name);

// A bad schedule stops `wse-emu check` with exit 2, naming file:line, the key and what
// is allowed.
TEST(FaultScheduleErrors, NameFileLineKeyAndWhatIsAllowed) {
  const fs::path dir = ::wse::testing::temp_path("wse_faults_errors");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string base =
      "include: " + std::string(WSE_SOURCE_DIR) + "/configs/faults/decode_down_resend.yaml\n";
  struct Case {
    std::string faults;
    std::string key;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"  - {kind: decode_system_dwn, system: 0, start: 1 s}\n", "faults[0].kind", "efa_loss_burst"},
      {"  - {kind: decode_system_down, system: 2, start: 1 s}\n", "faults[0].system", "there are 2 (0..1)"},
      {"  - {kind: efa_path_down, path: 64, start: 1 s, end: 2 s}\n", "faults[0].path",
       "efa.fabric.paths is 64"},
      {"  - {kind: efa_path_down, start: 1 s}\n", "faults[0].end", "needs 'end' or 'duration'"},
      {"  - {kind: efa_loss_burst, probability: 1.5, start: 1 s, end: 2 s}\n", "faults[0].probability", ""},
      {"  - {kind: efa_path_down, probability: 0.1, start: 1 s, end: 2 s}\n", "faults[0].probability",
       "it is for efa_loss_burst"},
      {"  - {kind: decode_system_down, system: 0, start: 2 s, end: 1 s}\n", "faults[0].end",
       "must be after 'start'"},
      {"  - {kind: efa_loss_burst, probability: 0.1, receiver: 8, start: 1 s, end: 2 s}\n",
       "faults[0].receiver", "efa.receivers is 8"},
      {"  - {kind: decode_system_down, system: 0, start: 1 s, end: 3 s}\n"
       "  - {kind: decode_system_down, system: 0, start: 2 s}\n",
       "faults[1].start", "overlaps"},
      {"  - {kind: decode_system_down, system: 0, start: 1 s, during: 3 s}\n", "faults[0].during", ""},
  };
  int i = 0;
  for (const Case& c : cases) {
    const fs::path file = dir / ("bad" + std::to_string(i++) + ".yaml");
    std::ofstream(file) << base << "faults:\n" << c.faults;
    const Result r = wse_emu("check '" + file.string() + "'", dir / "io");
    EXPECT_EQ(r.exit_code, 2) << c.faults << r.err;
    EXPECT_THAT(r.err, HasSubstr(file.filename().string() + ":")) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.key)) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << r.err;
  }
  // A colocated mode has no EFA network and no separate decode systems.
  const fs::path wafer_only = dir / "wafer_only.yaml";
  std::ofstream(wafer_only) << "include: " << WSE_SOURCE_DIR << "/configs/experiments/wafer_only.yaml\n"
                            << "faults:\n  - {kind: decode_system_down, system: 0, start: 1 s}\n";
  const Result r = wse_emu("check '" + wafer_only.string() + "'", dir / "io");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs separate decode systems"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wse::testing
