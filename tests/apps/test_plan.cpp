// `wse-emu plan`: the search (PlanSearch) round by round against a known need, what a
// result implies about other deployments, and the command end to end on KV-transfer runs
// whose times are derived by hand, its outputs, resume and bad plan files.
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/wse-emu/plan_command.h"
#include "sweep/csv.h"
#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Deployment = std::pair<std::uint32_t, std::uint32_t>;  // (prefill, decode)
using Round = std::vector<Deployment>;

// Prefill counts 1..8, decode counts 1..2; a deployment meets the SLOs when it has at
// least need(d) prefill machines: need(1) = 5, need(2) = 3. By hand:
//   round 1: the largest pool of each d first:   (8,1) met, (8,2) met
//   round 2: bisection of [1, 8): mid 1 + 7/2 = 4: (4,1) missed, (4,2) met
//   round 3: d=1 on [5, 8): 5 + 3/2 = 6; d=2 on [1, 4): 1 + 3/2 = 2: (6,1) met, (2,2) missed
//   round 4: d=1 on [5, 6): 5; d=2 on [3, 4): 3: (5,1) met, (3,2) met
//   then both bisections are empty: p*(1) = 5, p*(2) = 3, 8 runs.
TEST(PlanSearch, BisectsEachDecodeCountRoundByRound) {
  app::PlanSearch s(1, 8, 1, 2);
  const auto met = [](Deployment x) { return x.first >= (x.second == 1 ? 5u : 3u); };
  const std::vector<Round> expected{{{8, 1}, {8, 2}}, {{4, 1}, {4, 2}}, {{6, 1}, {2, 2}}, {{5, 1}, {3, 2}}};
  for (const Round& want : expected) {
    const Round got = s.next_round();
    ASSERT_EQ(got, want);
    for (const Deployment& x : got) s.record(x.first, x.second, met(x));
  }
  EXPECT_TRUE(s.next_round().empty());
  EXPECT_EQ(s.fewest(1), 5u);
  EXPECT_EQ(s.fewest(2), 3u);
  EXPECT_EQ(s.runs(), 8u);
  EXPECT_TRUE(s.contradictions().empty());
}

// A decode count whose largest pool misses is settled in one run.
TEST(PlanSearch, ADecodeCountThatCannotMeetTheSlosStopsAtTheLargestPool) {
  app::PlanSearch s(1, 4, 1, 2);
  ASSERT_EQ(s.next_round(), (Round{{4, 1}, {4, 2}}));
  s.record(4, 1, false);
  s.record(4, 2, true);
  ASSERT_EQ(s.next_round(), (Round{{2, 2}}));  // d = 1 is done: nothing up to 4 meets
  s.record(2, 2, true);
  ASSERT_EQ(s.next_round(), (Round{{1, 2}}));
  s.record(1, 2, false);
  EXPECT_TRUE(s.next_round().empty());
  EXPECT_EQ(s.fewest(1), std::nullopt);
  EXPECT_EQ(s.fewest(2), 2u);
  EXPECT_EQ(s.runs(), 4u);
}

// More machines never hurt: a deployment that met implies every larger one does; one
// that missed implies every smaller one misses; such points are not asked for.
TEST(PlanSearch, ResultsImplyLargerAndSmallerDeploymentsAndContradictionsAreReported) {
  app::PlanSearch s(1, 8, 1, 3);
  s.record(3, 1, true);
  s.record(2, 3, false);
  EXPECT_EQ(s.known(5, 2), true);
  EXPECT_TRUE(s.implied(5, 2));
  EXPECT_EQ(s.known(1, 1), false);
  EXPECT_TRUE(s.implied(1, 1));
  EXPECT_EQ(s.known(2, 2), false);  // (2, 3) missed: fewer decode machines miss too
  EXPECT_EQ(s.known(3, 1), true);
  EXPECT_FALSE(s.implied(3, 1));  // measured
  EXPECT_EQ(s.known(4, 1), true);
  EXPECT_EQ(s.known(1, 3), false);
  EXPECT_EQ(s.known(2, 1), false);
  EXPECT_EQ(s.known(7, 1), true);
  EXPECT_EQ(s.known(2, 4), std::nullopt);  // more decode than (2,3), no more prefill than (3,1)
  // Nothing is left to run: each bisection (largest pool, then [1, 8) from 4, [1, 4)
  // from 2, [3, 4) from 3) finds every point known. d=1: (8,1), (4,1) implied met by
  // (3,1), (2,1) implied missed by (2,3), (3,1) measured: p* = 3. d=2: (8,2), (4,2) met,
  // (2,2) missed, (3,2) met, all implied: p* = 3. d=3: (8,3), (4,3) met, (2,3)
  // measured missed, (3,3) implied met: p* = 3.
  EXPECT_TRUE(s.next_round().empty());
  EXPECT_EQ(s.fewest(1), 3u);
  EXPECT_EQ(s.fewest(2), 3u);
  EXPECT_EQ(s.fewest(3), 3u);
  // A measured miss with more machines than a deployment that met contradicts the rule.
  s.record(4, 2, false);
  ASSERT_EQ(s.contradictions().size(), 1u);
  EXPECT_EQ(s.contradictions()[0].first, (Deployment{4, 2}));
  EXPECT_EQ(s.contradictions()[0].second, (Deployment{3, 1}));
}

// The floor bound by hand. Per-request work 0.25, 0.5, 0.75 and 1 machine-s, arrivals
// 0.5 s apart at most, TTFT limit 0.25 s: span + limit = 0.75 s.
//   max (q 100): m = 4, W = 2.5 s: 2.5 / 0.75 = 3.33 -> 4 machines at least
//   p99:         m = ceil(3.96) = 4: the same, 4
//   p75:         m = 3, W = 1.5 s: 1.5 / 0.75 = 2 -> 2 (2 machines do exactly 1.5 s)
//   p50:         m = 2, W = 0.75 s: 1 -> 1
// and no requests: 1.
TEST(PlanFloor, FewestPrefillMachinesTheFloorAllowsByHand) {
  const std::vector<double> work{1.0, 0.25, 0.75, 0.5};  // any order
  EXPECT_EQ(app::fewest_prefill_by_floor(work, 0.5, 0.25, 100), 4u);
  EXPECT_EQ(app::fewest_prefill_by_floor(work, 0.5, 0.25, 99), 4u);
  EXPECT_EQ(app::fewest_prefill_by_floor(work, 0.5, 0.25, 75), 2u);
  EXPECT_EQ(app::fewest_prefill_by_floor(work, 0.5, 0.25, 50), 1u);
  EXPECT_EQ(app::fewest_prefill_by_floor({}, 0.5, 0.25, 99), 1u);
}

// The decode floor bound by hand: per-request decode work (system-seconds) 0, 0.5, 0.25,
// 1 (any order; 0: a request of one output token, which needs no decode step). k
// requests must finish within the window; their work is at least the k smallest:
//   k = 4, window 1 s:   W = 1.75: ceil(1.75)  = 2 systems
//   k = 4, window 0.5 s: W = 1.75: ceil(3.5)   = 4
//   k = 3, window 0.5 s: W = 0.75: ceil(1.5)   = 2
//   k = 2, window 0.25 s: W = 0.25: exactly 1 -> 1 (one system does exactly 0.25 s)
//   k = 9 (more than the requests): all of them, W = 1.75, window 1 s: 2
// and no bound (1) with k = 0, a window of 0 or no requests.
TEST(PlanFloor, FewestDecodeSystemsTheFloorAllowsByHand) {
  const std::vector<double> work{0.0, 0.5, 0.25, 1.0};
  EXPECT_EQ(app::fewest_decode_by_floor(work, 4, 1.0), 2u);
  EXPECT_EQ(app::fewest_decode_by_floor(work, 4, 0.5), 4u);
  EXPECT_EQ(app::fewest_decode_by_floor(work, 3, 0.5), 2u);
  EXPECT_EQ(app::fewest_decode_by_floor(work, 2, 0.25), 1u);
  EXPECT_EQ(app::fewest_decode_by_floor(work, 9, 1.0), 2u);
  EXPECT_EQ(app::fewest_decode_by_floor(work, 0, 1.0), 1u);
  EXPECT_EQ(app::fewest_decode_by_floor(work, 4, 0.0), 1u);
  EXPECT_EQ(app::fewest_decode_by_floor({}, 4, 1.0), 1u);
}

// Pruning never changes the answer: the search of BisectsEachDecodeCountRoundByRound
// (need(1) = 5, need(2) = 3, prefill 1..8, decode 1..2) with a floor bound of 3 prefill
// machines (valid: both needs are at least 3). A point below the bound is recorded as
// missed without a run, which is what its run would have said, so the search asks the
// same points in the same rounds. By hand: rounds (8,1) (8,2) | (4,1) (4,2) | (6,1)
// (2,2) | (5,1) (3,2); only (2,2) is below 3: 8 points, 7 runs, 1 saved; p*(1) = 5 and
// p*(2) = 3 both ways.
TEST(PlanSearch, PruningByAValidFloorBoundGivesTheSameFrontierWithFewerRuns) {
  const auto met = [](Deployment x) { return x.first >= (x.second == 1 ? 5u : 3u); };
  const std::uint32_t floor_bound = 3;
  const auto search = [&](bool prune, std::size_t& runs) {
    app::PlanSearch s(1, 8, 1, 2);
    runs = 0;
    for (Round r = s.next_round(); !r.empty(); r = s.next_round()) {
      for (const Deployment& x : r) {
        if (prune && x.first < floor_bound) {
          s.record(x.first, x.second, false);  // pruned: not run
          continue;
        }
        ++runs;
        s.record(x.first, x.second, met(x));
      }
    }
    return std::make_pair(s.fewest(1), s.fewest(2));
  };
  std::size_t unpruned_runs = 0, pruned_runs = 0;
  const auto unpruned = search(false, unpruned_runs);
  const auto pruned = search(true, pruned_runs);
  EXPECT_EQ(unpruned, pruned);
  EXPECT_EQ(pruned.first, 5u);
  EXPECT_EQ(pruned.second, 3u);
  EXPECT_EQ(unpruned_runs, 8u);
  EXPECT_EQ(pruned_runs, 7u);
}

class Plan : public ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    // One request of the Azure conversation trace (374 input tokens) over a 400 GB/s
    // link with 15 us latency: Llama-3.1-70B's KV of 374 x 327,680 B = 122,552,320 B
    // takes 122,552,320 / 400e9 = 306.3808 us + 15 us = 321.3808 us. The plan's two
    // "pools" are the senders and the link's initiators, which this mode requires equal:
    // a deployment with unequal counts is invalid (not run, counted as missing the SLOs,
    // as a fleet whose model does not fit).
    const std::string src = WSE_SOURCE_DIR;
    write("base.yaml",
          "experiment: {name: t, mode: kv_transfer}\n"
          "include:\n  - " +
              src +
              "/configs/models/llama-3.1-70b.yaml\n"
              "  - " +
              src +
              "/configs/workloads/azure_conv_1000.yaml\n"
              "workload: {trace: {limit: 1}}\n"
              "kv_transfer:\n  link:\n    bandwidth: 400 GB/s\n    latency: 15 us\n");
  }
  // A plan of llama8b_one_cs3.yaml over the Mooncake JSON Lines trace `trace` (a file of
  // the test's folder; `set` adds overrides after it), at rate 1, with the given pools
  // (YAML lines under `pools:`), SLO (the entries of `slo:`) and the machine count as
  // the objective.
  std::string trace_plan(const std::string& trace, const std::string& set, const std::string& pools,
                         const std::string& slo) const {
    return "experiment: " + std::string(WSE_SOURCE_DIR) +
           "/configs/experiments/llama8b_one_cs3.yaml\n"
           "set: {workload.trace: {format: mooncake_jsonl, path: " +
           (dir_ / trace).string() + "}" + set +
           "}\n"
           "rates: {key: workload.trace.rate_scale, values: [1]}\n"
           "pools:\n" +
           pools + "slo: {" + slo + "}\nobjective: machines\n";
  }
  std::string plan_file(const std::string& slo, const std::string& extra = "") {
    return "experiment: base.yaml\n"
           "rates: {key: workload.trace.rate_scale, values: [1]}\n"
           "pools:\n"
           "  prefill: {key: kv_transfer.senders, min: 1, max: 2}\n"
           "  decode: {key: kv_transfer.link.initiators, min: 1, max: 2}\n"
           "slo: {kv_transfer.time_s.max: " +
           slo +
           "}\n"
           "objective: machines\n" +
           extra;
  }
  Result plan(const std::string& file, const fs::path& out) {
    return wse_emu("plan '" + (dir_ / file).string() + "' --out '" + out.string() + "' --jobs 2",
                   dir_ / "io");
  }
};

// SLO 400 us (met by 321.3808 us). Round 1 asks each decode count's largest pool:
// (2,1) is invalid (1 initiator, 2 senders), so d = 1 cannot meet the SLOs; (2,2) runs
// and meets them. Round 2 bisects [1, 2) for d = 2 at 1: (1,2) is invalid. So 1 run,
// p*(2) = 2, and the best deployment is 2 x 2 (objective: 4 machines).
TEST_F(Plan, TheFewestMachinesThatMeetTheSloAndInvalidDeploymentsCountAsMissing) {
  write("p.yaml", plan_file("400 us"));
  const fs::path out = dir_ / "out";
  Result r = plan("p.yaml", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Csv csv = read_csv(out / "plan.csv");
  ASSERT_EQ(csv.rows.size(), 3u);  // (1,2), (2,1), (2,2) in (prefill, decode) order
  EXPECT_EQ(csv.header[5], "kv_transfer.time_s.max");
  EXPECT_EQ(csv.at(0, "status"), "invalid");
  EXPECT_THAT(csv.at(0, "error"), HasSubstr("must equal kv_transfer.senders"));
  EXPECT_EQ(csv.at(0, "point"), "");
  EXPECT_EQ(csv.at(1, "status"), "invalid");
  EXPECT_EQ(csv.at(2, "status"), "met");
  EXPECT_EQ(csv.at(2, "point"), "base-rate0-p2-d2");
  EXPECT_NEAR(std::stod(csv.at(2, "kv_transfer.time_s.max")), 321.3808e-6, 1e-12);
  EXPECT_EQ(csv.at(2, "objective"), "4");
  const Csv front = read_csv(out / "frontier.csv");
  ASSERT_EQ(front.rows.size(), 2u);
  EXPECT_EQ(front.at(0, "fewest_prefill"), "");
  EXPECT_EQ(front.at(1, "fewest_prefill"), "2");
  EXPECT_EQ(front.at(1, "prefill_per_decode"), "1");
  EXPECT_EQ(front.at(1, "best"), "1");
  EXPECT_THAT(r.out, HasSubstr("1 run(s)"));
  EXPECT_TRUE(fs::exists(out / "points" / "base-rate0-p2-d2" / "summary.json"));
  // Again into the same folder: the point is complete, nothing runs, the same plan.csv.
  const std::string first = slurp(out / "plan.csv");
  Result again = plan("p.yaml", out);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(slurp(out / "plan.csv"), first);
  EXPECT_THAT(again.err, ::testing::Not(HasSubstr("] point ")));
}

// SLO 300 us: 321.3808 us misses it. The one valid largest deployment (2,2) runs and
// misses; no deployment meets the SLOs and the plan says so.
TEST_F(Plan, ATightSloThatNothingMeetsIsSaid) {
  write("p.yaml", plan_file("300 us"));
  const fs::path out = dir_ / "out";
  Result r = plan("p.yaml", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Csv csv = read_csv(out / "plan.csv");
  ASSERT_EQ(csv.rows.size(), 2u);
  EXPECT_EQ(csv.at(1, "status"), "missed");
  EXPECT_EQ(csv.at(1, "prefill"), "2");
  EXPECT_THAT(r.out, HasSubstr("no deployment up to 2 prefill x 2 decode meets the SLOs"));
}

// `text` with its first `from` replaced by `to` (which must be there).
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST_F(Plan, BadPlanFilesNameTheLineAndTheFix) {
  write("typo.yaml", plan_file("400 us", "objectiv: cost\n"));
  Result r = plan("typo.yaml", dir_ / "o1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("typo.yaml:8:1: key 'objectiv': unknown key 'objectiv'; did you mean 'objective'?"));
  EXPECT_FALSE(fs::exists(dir_ / "o1"));

  write("range.yaml",
        "experiment: base.yaml\nrates: {key: workload.trace.rate_scale, values: [1]}\n"
        "pools:\n  prefill: {key: kv_transfer.senders, min: 3, max: 2}\n"
        "  decode: {key: kv_transfer.link.initiators, max: 1}\nslo: {kv_transfer.time_s.max: 1 ms}\n");
  r = plan("range.yaml", dir_ / "o2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(
      r.err,
      HasSubstr("range.yaml:4:52: key 'pools.prefill.max': max (2) is below min (3); give max >= min"));

  write("prune.yaml", plan_file("400 us", "prune: sometimes\n"));
  r = plan("prune.yaml", dir_ / "o6");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("prune.yaml:8:8: key 'prune': is 'sometimes'; give true"));

  write("unit.yaml", plan_file("fast"));
  r = plan("unit.yaml", dir_ / "o3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("unit.yaml:6:31: key 'slo.kv_transfer.time_s.max': SLO 'kv_transfer.time_s.max' "
                        "limit 'fast' is neither a time (2 s, 50 ms) nor a number"));

  // An unknown key inside a section (read through the configuration language, as
  // experiment files are), and arrival rates and machine counts out of their range.
  write("pool_typo.yaml",
        replaced(plan_file("400 us"), "min: 1, max: 2}\n  decode", "mn: 1, max: 2}\n  decode"));
  r = plan("pool_typo.yaml", dir_ / "o7");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("pool_typo.yaml:4:39: key 'pools.prefill.mn': unknown key 'mn'; did you mean "
                               "'min'?"));
  EXPECT_FALSE(fs::exists(dir_ / "o7"));
  write("rate.yaml", replaced(plan_file("400 us"), "values: [1]", "values: [1, 0]"));
  r = plan("rate.yaml", dir_ / "o8");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("rate.yaml:2:53: key 'rates.values[1]': expected a rate, a number > 0 (the value "
                        "of workload.trace.rate_scale in each run), found '0'"));
  EXPECT_FALSE(fs::exists(dir_ / "o8"));
  write("count.yaml",
        replaced(plan_file("400 us"), "min: 1, max: 2}\n  decode", "min: 0, max: 2}\n  decode"));
  r = plan("count.yaml", dir_ / "o9");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(
      r.err,
      HasSubstr("count.yaml:4:44: key 'pools.prefill.min': value '0' is out of range; allowed: >= 1 and "
                "<= 4096"));

  // A key the experiment does not have: bad input before anything runs.
  write("key.yaml",
        "experiment: base.yaml\nrates: {key: workload.trace.rate_scale, values: [1]}\n"
        "pools:\n  prefill: {key: kv_transfer.sendres, max: 2}\n"
        "  decode: {key: kv_transfer.link.initiators, max: 1}\nslo: {kv_transfer.time_s.max: 1 ms}\n");
  r = plan("key.yaml", dir_ / "o4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sendres"));
  EXPECT_FALSE(fs::exists(dir_ / "o4"));

  // An SLO figure that summary.json does not have.
  write("fig.yaml", plan_file("1 ms").replace(plan_file("1 ms").find("kv_transfer.time_s.max"), 22,
                                              "kv_transfer.time_s.p999"));
  r = plan("fig.yaml", dir_ / "o5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("SLO figure 'kv_transfer.time_s.p999' is not in the summary.json"));
}

// The floor bound of a serving plan, by hand. Llama-3.1-8B (32 layers, hidden 4,096, 8
// KV heads of 128, MLP 14,336) prefilled on trn2.48xlarge, four prompts of 8,192 tokens
// all at t = 0 (span 0). Decoder GEMM FLOPs per token: 2 x 32 x (4,096 x (4,096 + 1,024
// + 1,024 + 4,096) + 3 x 4,096 x 14,336) = 13,958,643,712; tensor-engine peak: 128
// physical cores x 128 x 128 x 2 x 2.4 GHz x 1 (bf16) = 1.00663296e16 FLOP/s. Each
// prompt: 13,958,643,712 x 8,192 / 1.00663296e16 = 11.3596 ms; TTFT p99 of 4 requests
// is the 4th (m = ceil(3.96) = 4): W = 45.43829333 ms. With a 40 ms limit, p machines
// do at most p x (0 + 40 ms): p >= ceil(45.438 / 40) = 2. The largest pool (4
// instances) runs first, misses (each prefill alone takes more than 40 ms) and settles
// the search; the bound is reported, nothing is pruned (the search asks no point below
// it), and --no-prune gives the same plan.csv and frontier.csv.
TEST_F(Plan, TheFloorBoundOfAServingPlanByHandAndNoPruneGivesTheSameFrontier) {
  std::string trace;
  for (int i = 0; i < 4; ++i) trace += "{\"timestamp\": 0, \"input_length\": 8192, \"output_length\": 2}\n";
  write("four.jsonl", trace);
  write("serving.yaml", trace_plan("four.jsonl", "",
                                   "  prefill: {key: serving.prefill_instances, min: 1, max: 4}\n"
                                   "  decode: {key: serving.decode_systems, min: 1, max: 1}\n",
                                   "requests.ttft_s.p99: 40 ms"));
  Result r = plan("serving.yaml", dir_ / "pruned");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 run(s), 0 pruned by the floor bound"));
  EXPECT_THAT(r.out, HasSubstr("floor bound: 2 prefill machines at least"));
  EXPECT_THAT(r.out, HasSubstr("the 4 of 4 requests that requests.ttft_s.p99 <= 40 ms needs take at least "
                               "0.04543829333 machine-s"));
  EXPECT_THAT(r.out, HasSubstr("1.00663296e+16 FLOP/s"));
  Result u = wse_emu("plan '" + (dir_ / "serving.yaml").string() + "' --out '" +
                         (dir_ / "unpruned").string() + "' --jobs 2 --no-prune",
                     dir_ / "io");
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_THAT(u.out, HasSubstr("[pruning off]"));
  EXPECT_THAT(u.out, ::testing::Not(HasSubstr("floor bound:")));
  EXPECT_EQ(slurp(dir_ / "unpruned" / "frontier.csv"), slurp(dir_ / "pruned" / "frontier.csv"));
  EXPECT_EQ(slurp(dir_ / "unpruned" / "plan.csv"), slurp(dir_ / "pruned" / "plan.csv"));
}

// The decode floor bound of a serving plan by hand. Llama-3.1-8B decoding on CS-3 decode
// systems of one wafer (llama8b_one_cs3.yaml), four requests at t = 0 of 16 prompt and
// 101 output tokens, decode systems 1 to 3 (one prefill instance). Decoder GEMM FLOPs per
// token G = 13,958,643,712 (TheFloorBoundOfAServingPlan...); a CS-3's peak: 762 x 1,176
// PEs x 8 fp16 FMACs x 2 x 1.1 GHz = 1.57715712e16 FLOP/s, so a decode token takes at
// least G / peak = 0.885050927 us of one system. Each request makes 100 tokens after the
// first (its first comes from the prefill): 88.505 us.
//   requests.e2e_s.p99 <= 250 us: p99 of 4 is the 4th (nearest rank): all k = 4 requests
//     end by 0 + 250 us, W_4 = 354.0204 us, so d >= ceil(354.0204 / 250) = ceil(1.416) = 2.
// The first round runs the largest deployment (1 prefill, 3 decode) alone: the probe the
// bounds come from. It misses (E2E p99 31 ms: the simulated steps are far above the
// compute floor), which implies that every smaller deployment misses: nothing more runs
// and nothing is pruned, but the bound is printed. For the bound to matter the probe must
// meet the SLO, which no cheap run of this loose a bound does; so the probe's summary.json
// E2E p99 is set to 200 us (a fixture: the plan reuses a complete point) and the same
// plan runs again into the same folder. Now the probe meets; d = 2 is at the bound and
// runs (and misses), and d = 1 is pruned: plan.csv records it with the bound and its
// figures, not run. --no-prune into a copy of that folder runs d = 1 too: it misses, as
// the bound says, with the same frontier, and plan.csv differs only in that row.
TEST_F(Plan, TheDecodeFloorBoundPrunesFewerDecodeSystemsByHandAndRunsTheOneAtTheBound) {
  std::string trace;
  for (int i = 0; i < 4; ++i) trace += "{\"timestamp\": 0, \"input_length\": 16, \"output_length\": 101}\n";
  write("four.jsonl", trace);
  write("decode.yaml", trace_plan("four.jsonl", "",
                                  "  prefill: {key: serving.prefill_instances, min: 1, max: 1}\n"
                                  "  decode: {key: serving.decode_systems, min: 1, max: 3}\n",
                                  "requests.e2e_s.p99: 250 us"));
  const fs::path out = dir_ / "pruned";
  Result first = plan("decode.yaml", out);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("1 run(s), 0 pruned by the floor bound"));
  EXPECT_THAT(first.err, HasSubstr("round 1, 1 deployment(s)"));
  EXPECT_THAT(
      first.out,
      HasSubstr("floor bound: 2 decode systems at least (decode floor: the 4 of 4 requests that "
                "requests.e2e_s.p99 <= 250 us needs take at least 0.0003540203708 system-s of decode"));
  EXPECT_THAT(first.out, HasSubstr("1.57715712e+16 FLOP/s"));
  EXPECT_THAT(first.out, HasSubstr("0.00025 s) for d < 2)"));
  ASSERT_EQ(read_csv(out / "plan.csv").rows.size(), 1u);  // the probe; the rest implied

  const fs::path probe = out / "points" / "base-rate0-p1-d3" / "summary.json";
  nlohmann::json summary = nlohmann::json::parse(slurp(probe));
  EXPECT_GT(summary["requests"]["e2e_s"]["p99"].get<double>(), 250e-6);
  summary["requests"]["e2e_s"]["p99"] = 200e-6;
  write("pruned/points/base-rate0-p1-d3/summary.json", summary.dump());
  fs::copy(out, dir_ / "unpruned", fs::copy_options::recursive);

  Result r = plan("decode.yaml", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 run(s), 1 pruned by the floor bound"));
  EXPECT_THAT(r.out, HasSubstr("floor bound: 2 decode systems at least"));
  const Csv csv = read_csv(out / "plan.csv");
  ASSERT_EQ(csv.rows.size(), 3u);  // (1,1), (1,2), (1,3)
  EXPECT_EQ(csv.at(0, "decode"), "1");
  EXPECT_EQ(csv.at(0, "status"), "pruned");
  EXPECT_EQ(csv.at(0, "point"), "");
  EXPECT_EQ(csv.at(0, "requests.e2e_s.p99"), "");
  EXPECT_THAT(
      csv.at(0, "error"),
      HasSubstr("decode floor: the 4 of 4 requests that requests.e2e_s.p99 <= 250 us needs take at least "
                "0.0003540203708 system-s of decode"));
  EXPECT_EQ(csv.at(1, "decode"), "2");  // at the bound: run
  EXPECT_EQ(csv.at(1, "status"), "missed");
  EXPECT_EQ(csv.at(1, "point"), "base-rate0-p1-d2");
  EXPECT_GT(std::stod(csv.at(1, "requests.e2e_s.p99")), 250e-6);
  EXPECT_EQ(csv.at(2, "status"), "met");
  EXPECT_EQ(csv.at(2, "requests.e2e_s.p99"), "0.0002");
  EXPECT_FALSE(fs::exists(out / "points" / "base-rate0-p1-d1"));
  const Csv front = read_csv(out / "frontier.csv");
  ASSERT_EQ(front.rows.size(), 3u);
  EXPECT_EQ(front.at(0, "fewest_prefill"), "");
  EXPECT_EQ(front.at(1, "fewest_prefill"), "");
  EXPECT_EQ(front.at(2, "fewest_prefill"), "1");

  Result u = wse_emu("plan '" + (dir_ / "decode.yaml").string() + "' --out '" + (dir_ / "unpruned").string() +
                         "' --jobs 2 --no-prune",
                     dir_ / "io");
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_THAT(u.out, HasSubstr("3 run(s), 0 pruned"));
  const Csv all = read_csv(dir_ / "unpruned" / "plan.csv");
  ASSERT_EQ(all.rows.size(), 3u);
  EXPECT_EQ(all.at(0, "status"), "missed");  // what the bound said
  EXPECT_GT(std::stod(all.at(0, "requests.e2e_s.p99")), 250e-6);
  for (std::size_t i = 1; i < 3; ++i) {
    for (const char* c : {"status", "requests.e2e_s.p99", "objective", "point"}) {
      EXPECT_EQ(all.at(i, c), csv.at(i, c)) << c;
    }
  }
  EXPECT_EQ(slurp(dir_ / "unpruned" / "frontier.csv"), slurp(out / "frontier.csv"));

  // TTFT and TPOT together set the deadlines: requests.ttft_s.p99 <= 100 us (m = 4 of 4)
  // and requests.tpot_s.p99 <= 1 us (4 of the 4 with more than one token): k = 4 + 4 - 4
  // = 4 requests meet both and end by 0 + 100 us + 100 x 1 us = 200 us: d >= ceil(354.0204
  // / 200) = ceil(1.770) = 2 (printed; the probe misses, so nothing is left to prune).
  // With p50 for both, k = 2 + 2 - 4 = 0: no request need meet both, no decode bound. (The
  // prefill floor allows 1 machine in both: 16-token prompts take G x 16 / 1.00663296e16
  // FLOP/s = 22.19 us each, 88.75 us for 4, within 1 x 100 us.)
  write("both.yaml", replaced(slurp(dir_ / "decode.yaml"), "requests.e2e_s.p99: 250 us",
                              "requests.ttft_s.p99: 100 us, requests.tpot_s.p99: 1 us"));
  Result b = plan("both.yaml", dir_ / "both");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_THAT(b.out,
              HasSubstr("floor bound: 2 decode systems at least (decode floor: the 4 of 4 requests that "
                        "requests.ttft_s.p99 <= 100 us and requests.tpot_s.p99 <= 1 us needs take at "
                        "least 0.0003540203708 system-s"));
  EXPECT_THAT(b.out, HasSubstr("0.0002 s) for d < 2)"));
  EXPECT_THAT(b.out, ::testing::Not(HasSubstr("prefill machines at least")));
  write("half.yaml", replaced(slurp(dir_ / "decode.yaml"), "requests.e2e_s.p99: 250 us",
                              "requests.ttft_s.p50: 100 us, requests.tpot_s.p50: 1 us"));
  Result h = plan("half.yaml", dir_ / "half");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_THAT(h.out, ::testing::Not(HasSubstr("floor bound:")));
}

// A decode system that cannot hold the longest request's KV can never serve it: the run's
// configuration check refuses it, and the plan records the deployment as `invalid` with
// the figures, not run (docs/plan.md, "KV capacity"). Llama-3.1-8B with 24 KiB of each
// PE's SRAM reserved (decode.reserved_sram), the decode pool sized by decode.wafers 1..2:
// one request of 20,000 prompt and 2 output tokens needs 20,002 x 131,072 B =
// 2,621,702,144 B of KV, more than one wafer's SRAM after the weights holds
// (2,180,775,936 B, the configuration's figure); two wafers hold it and run.
TEST_F(Plan, ADecodeSystemThatCannotHoldTheLongestRequestsKvIsRecordedWithTheFiguresNotRun) {
  write("long.jsonl", "{\"timestamp\": 0, \"input_length\": 20000, \"output_length\": 2}\n");
  write("kv.yaml", trace_plan("long.jsonl", ", decode.reserved_sram: 24 KiB",
                              "  prefill: {key: serving.prefill_instances, min: 1, max: 1}\n"
                              "  decode: {key: decode.wafers, min: 1, max: 2}\n",
                              "requests.ttft_s.p99: 10 s"));
  Result r = plan("kv.yaml", dir_ / "out");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 run(s)"));
  const Csv csv = read_csv(dir_ / "out" / "plan.csv");
  ASSERT_EQ(csv.rows.size(), 2u);  // (1,1), (1,2)
  EXPECT_EQ(csv.at(0, "status"), "invalid");
  EXPECT_EQ(csv.at(0, "point"), "");
  EXPECT_THAT(csv.at(0, "error"),
              HasSubstr("request 0 (20002 tokens of context) needs more KV cache (2621702144 "
                        "B) than a decode system's SRAM after the weights holds (2180775936 "
                        "B)"));
  EXPECT_EQ(csv.at(1, "status"), "met");
  EXPECT_EQ(csv.at(1, "point"), "base-rate0-p1-d2");
  const Csv front = read_csv(dir_ / "out" / "frontier.csv");
  EXPECT_EQ(front.at(0, "fewest_prefill"), "");
  EXPECT_EQ(front.at(1, "fewest_prefill"), "1");
}

}  // namespace
}  // namespace wse::testing
