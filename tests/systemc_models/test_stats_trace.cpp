// The statistics and trace hooks that models build on.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <systemc>

#include "systemc_models/stats/stats.h"
#include "systemc_models/tlm/memory_target.h"
#include "systemc_models/trace/trace.h"
#include "util/systemc_test.h"

namespace wse {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::Pair;

TEST(StatsDistribution, PercentilesAreNearestRank) {
  // Samples {15, 20, 35, 40, 50} (given unsorted). Nearest rank = ceil(q/100 x 5):
  //   p5 -> rank 1 -> 15; p30 -> ceil(1.5) = 2 -> 20; p40 -> rank 2 -> 20;
  //   p50 -> ceil(2.5) = 3 -> 35; p90 -> ceil(4.5) = 5 -> 50; p100 -> 50; p0 -> rank 1 -> 15.
  stats::Distribution d("latency", "s", "request latency");
  for (double v : {40.0, 15.0, 50.0, 35.0, 20.0}) d.sample(v);
  EXPECT_EQ(d.percentile(5), 15.0);
  EXPECT_EQ(d.percentile(30), 20.0);
  EXPECT_EQ(d.percentile(40), 20.0);
  EXPECT_EQ(d.percentile(50), 35.0);
  EXPECT_EQ(d.percentile(90), 50.0);
  EXPECT_EQ(d.percentile(100), 50.0);
  EXPECT_EQ(d.percentile(0), 15.0);
  EXPECT_EQ(d.mean(), 32.0);  // 160 / 5
  EXPECT_EQ(d.min(), 15.0);
  EXPECT_EQ(d.max(), 50.0);
  EXPECT_EQ(d.count(), 5u);
  nlohmann::json j;
  d.to_json(j, 1.0);
  EXPECT_EQ(j["count"], 5);
  EXPECT_EQ(j["p50"], 35.0);
  EXPECT_EQ(j["p90"], 50.0);
  EXPECT_EQ(j["unit"], "s");
  EXPECT_EQ(j["description"], "request latency");
  d.reset();
  EXPECT_EQ(d.count(), 0u);
  EXPECT_EQ(d.percentile(50), 0.0);  // no samples
}

TEST(StatsDistribution, PercentilesFollowSamplesAddedAfterAnEarlierQueryAndAReset) {
  // The sorted samples are kept between queries: a sample added after a query, and a
  // reset followed by as many new samples, must still be seen.
  //   {40, 15, 50}: p50 -> ceil(1.5) = rank 2 -> 40; p100 -> 50.
  //   + {5}: {5, 15, 40, 50}: p50 -> rank 2 -> 15; p0 -> 5.
  //   reset, then {1, 2, 3, 4}: p50 -> rank 2 -> 2; p100 -> 4.
  stats::Distribution d("latency", "s", "request latency");
  for (double v : {40.0, 15.0, 50.0}) d.sample(v);
  EXPECT_EQ(d.percentile(50), 40.0);
  EXPECT_EQ(d.percentile(100), 50.0);
  d.sample(5.0);
  EXPECT_EQ(d.percentile(50), 15.0);
  EXPECT_EQ(d.percentile(0), 5.0);
  d.reset();
  EXPECT_EQ(d.percentile(50), 0.0);  // no samples
  for (double v : {4.0, 3.0, 2.0, 1.0}) d.sample(v);
  EXPECT_EQ(d.percentile(50), 2.0);
  EXPECT_EQ(d.percentile(100), 4.0);
}

TEST(StatsUtilization, FractionIsBusyOverElapsedTimesLanes) {
  // Busy 0.25 + 0.5 = 0.75 s over 1.5 s -> 0.5; spread over 3 lanes -> 0.75 / 4.5 = 1/6.
  stats::Utilization u("utilization", "link busy");
  u.add_busy(0.25);
  u.add_busy(0.5);
  EXPECT_DOUBLE_EQ(u.fraction(1.5), 0.5);
  EXPECT_EQ(u.fraction(0.0), 0.0);  // nothing elapsed: 0, not a division by zero
  u.set_lanes(3);
  EXPECT_DOUBLE_EQ(u.fraction(1.5), 1.0 / 6.0);
  EXPECT_EQ(u.unit(), "fraction");
  nlohmann::json j;
  u.to_json(j, 1.5);
  EXPECT_DOUBLE_EQ(j["value"].get<double>(), 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(j["busy_s"].get<double>(), 0.75);
}

TEST(StatsGroup, ToJsonNestsChildrenAndDottedGroupNames) {
  stats::Group system("system");
  system.counter("requests", "count", "requests served").add(7);
  stats::Group link("system.kv_link");
  link.scalar("line_rate", "B/s", "configured rate").set(12.5e9);
  stats::Group& lane = link.child("lane0");
  lane.counter("packets", "count", "packets sent") += 3;

  const nlohmann::json j = stats::to_json({&system, &link}, 2.0);
  EXPECT_EQ(j["system"]["requests"]["value"], 7);
  EXPECT_EQ(j["system"]["requests"]["unit"], "count");
  EXPECT_EQ(j["system"]["kv_link"]["line_rate"]["value"], 12.5e9);
  EXPECT_EQ(j["system"]["kv_link"]["lane0"]["packets"]["value"], 3);
  EXPECT_EQ(j["system"]["kv_link"]["lane0"]["packets"]["description"], "packets sent");

  system.reset();
  link.reset();
  const nlohmann::json k = stats::to_json({&system, &link}, 2.0);
  EXPECT_EQ(k["system"]["requests"]["value"], 0);
  EXPECT_EQ(k["system"]["kv_link"]["lane0"]["packets"]["value"], 0);
}

TEST(StatsGroup, UtilizationPathsNameTheGroupAndAreSorted) {
  // A Utilization called "utilization" is listed under its group's path; any other name
  // is appended. Elapsed 4 s.
  stats::Group link("system.kv_link");
  link.utilization("utilization", "wire busy").add_busy(1.0);                 // 0.25
  link.utilization("rx", "receive side busy").add_busy(2.0);                  // 0.5
  link.child("lane0").utilization("utilization", "lane busy").add_busy(4.0);  // 1.0
  stats::Group hbm("chip0.hbm");
  hbm.utilization("utilization", "hbm busy").add_busy(3.0);  // 0.75

  const auto u = stats::utilizations({&link, &hbm}, 4.0);
  EXPECT_THAT(
      u, ElementsAre(Pair("chip0.hbm", DoubleEq(0.75)), Pair("system.kv_link", DoubleEq(0.25)),
                     Pair("system.kv_link.lane0", DoubleEq(1.0)), Pair("system.kv_link.rx", DoubleEq(0.5))));
}

class StatsCollectTest : public testing::SystemCTest {};

TEST_F(StatsCollectTest, WalkerFindsProvidersInTheModuleTree) {
  // A MemoryTarget "mem" and its child SharedResource "mem.access" are both Providers:
  // the walker lists them parent first, and to_json nests access under mem.
  tlm_blocks::MemoryTargetConfig c;
  c.capacity = Size{4096};
  c.access.bandwidth = Bandwidth{1e9};
  tlm_blocks::MemoryTarget mem("mem", c);
  stats::Group extra("workload");
  extra.counter("tokens", "count", "tokens generated").add(5);

  const auto groups = stats::collect({&extra});
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0]->name(), "mem");
  EXPECT_EQ(groups[1]->name(), "mem.access");
  EXPECT_EQ(groups[2]->name(), "workload");
  const nlohmann::json j = stats::to_json(groups, 1.0);
  EXPECT_EQ(j["mem"]["capacity"]["value"], 4096.0);
  EXPECT_TRUE(j["mem"]["access"].contains("utilization"));
  EXPECT_EQ(j["workload"]["tokens"]["value"], 5);
  const auto u = stats::utilizations(groups, 1.0);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].first, "mem.access");
}

std::string temp_path(const std::string& name) { return ::wse::testing::temp_path(name).string(); }

TEST(TraceWriter, FinishWritesValidTraceEventJson) {
  const std::string path = temp_path("wse_trace_writer_test.json");
  std::filesystem::remove(path);
  trace::Writer w(path);
  const trace::TrackId hbm = w.track("chip0", "hbm");
  const trace::TrackId link = w.track("system", "kv_link");
  EXPECT_EQ(w.track("chip0", "hbm"), hbm);  // same names, same track
  EXPECT_NE(link, hbm);
  w.slice(hbm, "read", 1e-6, 2.5e-6, {{"bytes", "64"}});
  w.instant(link, "loss", 3e-6);
  w.counter("system", "queue depth", 4e-6, 3);
  w.flow(7, hbm, 1e-6, true, false);
  w.flow(7, link, 5e-6, false, true);
  // Streaming to the temporary file: nothing at the final path until finish().
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
  w.finish();
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));

  std::ifstream in(path);
  const nlohmann::json doc = nlohmann::json::parse(in);  // throws if not valid JSON
  const auto& events = doc["traceEvents"];
  // 2 process names + 2 thread names + slice + instant + counter + 2 flow events.
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(w.events_written(), 9u);
  std::vector<std::string> process_names;
  for (const auto& e : events) {
    if (e["ph"] == "M" && e["name"] == "process_name") process_names.push_back(e["args"]["name"]);
    if (e["ph"] == "X") {
      EXPECT_EQ(e["name"], "read");
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 1.0);  // microseconds
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 2.5);
      EXPECT_EQ(e["args"]["bytes"], "64");
    }
    if (e["ph"] == "C") {
      EXPECT_EQ(e["args"]["value"], 3.0);
    }
  }
  EXPECT_THAT(process_names, ElementsAre("chip0", "system"));
  std::filesystem::remove(path);
}

TEST(TraceWriter, AbandonLeavesNoFile) {
  const std::string path = temp_path("wse_trace_writer_abandoned.json");
  std::filesystem::remove(path);
  {
    trace::Writer w(path);
    w.slice(w.track("p", "t"), "x", 0.0, 1e-9);
    w.abandon();
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  {
    trace::Writer w(path);  // destroyed without finish(): an aborted run
    w.instant(w.track("p", "t"), "x", 0.0);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(TraceWriter, UnwritableDirectoryThrows) {
  EXPECT_THROW(trace::Writer("/nonexistent-directory/trace.json"), std::runtime_error);
}

}  // namespace
}  // namespace wse

namespace wse::stats {
namespace {

TEST(UtilizationClasses, GroupPathsThatDifferOnlyInTheirIndices) {
  const std::vector<std::pair<std::string, double>> u{{"efa.sender0.adapter0.tx", 0.5},
                                                      {"efa.sender0.adapter1.tx", 0.25},
                                                      {"efa.sender1.adapter0.tx", 0.75},
                                                      {"efa.fabric.path12.forward", 0.125},
                                                      {"trn2.hbm", 0.9}};
  const auto c = utilization_classes(u);
  ASSERT_EQ(c.size(), 3u);
  // Busiest class first. A trailing number of any name component is an index, so
  // "trn2" is a class of its own too ("trn*").
  EXPECT_EQ(c[0].pattern, "trn*.hbm");
  EXPECT_EQ(c[0].count, 1u);
  EXPECT_EQ(c[1].pattern, "efa.sender*.adapter*.tx");
  EXPECT_DOUBLE_EQ(c[1].max, 0.75);
  EXPECT_DOUBLE_EQ(c[1].mean, (0.5 + 0.25 + 0.75) / 3);
  EXPECT_EQ(c[1].count, 3u);
  EXPECT_EQ(c[1].busiest, "efa.sender1.adapter0.tx");
  EXPECT_EQ(c[2].pattern, "efa.fabric.path*.forward");
}

}  // namespace
}  // namespace wse::stats
