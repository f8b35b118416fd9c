// The admission, output-length, preemption and KV-tier keys and --token-times through the
// wse-emu program (docs/serving.md): a bad value is one message naming file, line and
// key with the values allowed, exit 2 and no output folder; --token-times writes
// tokens.csv, whose rows agree with requests.csv.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kSrc = WSE_SOURCE_DIR;

class ServingPolicies : public ScratchDirTest {
 protected:
  // The trainium_only experiment on its first 3 requests, with `serving` lines added to
  // its serving section (line 5 of the file onwards).
  fs::path experiment(const std::string& serving) {
    return write("exp.yaml", "include:\n  - " + kSrc +
                                 "/configs/experiments/trainium_only.yaml\n"
                                 "workload: {trace: {limit: 3}}\n"
                                 "serving:\n" +
                                 serving);
  }
  Result run_bad(const fs::path& file) {
    const fs::path out = dir_ / "out";
    Result r = wse_emu("run '" + file.string() + "' --out '" + out.string() + "'", dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "bad input must not create the output directory";
    EXPECT_THAT(r.err, HasSubstr("wse-emu: error: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message: " << r.err;
    return r;
  }
};

TEST_F(ServingPolicies, BadValuesAreRefusedAtTheirLine) {
  const fs::path f = experiment("  admission: lifo\n");
  Result r = run_bad(f);
  EXPECT_THAT(r.err, HasSubstr(f.string() + ":5:14: key 'serving.admission'"));
  EXPECT_THAT(r.err, HasSubstr("serving.admission"));
  EXPECT_THAT(r.err, HasSubstr("fcfs, shortest_first, priority"));

  r = run_bad(experiment("  output_length: guess\n"));
  EXPECT_THAT(r.err, HasSubstr(":5:18:"));
  EXPECT_THAT(r.err, HasSubstr("serving.output_length"));
  EXPECT_THAT(r.err, HasSubstr("oracle, unknown"));

  r = run_bad(experiment("  output_length: unknown\n  preemption: drop\n"));
  EXPECT_THAT(r.err, HasSubstr(":6:15:"));
  EXPECT_THAT(r.err, HasSubstr("serving.preemption"));
  EXPECT_THAT(r.err, HasSubstr("recompute, swap"));

  r = run_bad(experiment("  swap_bandwidth: 0 GB/s\n"));
  EXPECT_THAT(r.err, HasSubstr(":5:19:"));
  EXPECT_THAT(r.err, HasSubstr("serving.swap_bandwidth"));
  EXPECT_THAT(r.err, HasSubstr("allowed: > 0 B/s"));

  // The host KV tier: a zero bandwidth, an unknown tier, a tier without its capacity.
  r = run_bad(experiment("  kv_tiers:\n    host_dram:\n      capacity: 1 TiB\n      bandwidth: 0 GB/s\n"));
  EXPECT_THAT(r.err, HasSubstr(":8:18:"));
  EXPECT_THAT(r.err, HasSubstr("serving.kv_tiers.host_dram.bandwidth"));
  EXPECT_THAT(r.err, HasSubstr("allowed: > 0 B/s"));

  r = run_bad(experiment("  kv_tiers:\n    nvme:\n      capacity: 1 TiB\n"));
  EXPECT_THAT(r.err, HasSubstr(":6:5:"));
  EXPECT_THAT(r.err, HasSubstr("unknown key 'nvme'"));

  r = run_bad(experiment("  kv_tiers:\n    host_dram:\n      bandwidth: 64 GB/s\n"));
  EXPECT_THAT(r.err, HasSubstr("serving.kv_tiers.host_dram.capacity"));
}

TEST_F(ServingPolicies, TokenTimesFileAgreesWithRequests) {
  const fs::path out = dir_ / "out";
  Result r = wse_emu("run '" + experiment("  admission: fcfs\n").string() + "' --out '" + out.string() +
                         "' --token-times --quiet",
                     dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string tokens = slurp(out / "tokens.csv");
  std::istringstream lines(tokens);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "request,token,time_s");
  // requests.csv: request, ..., first_token_s (column 14), last_token_s (15), tokens_out (16).
  std::istringstream reqs(slurp(out / "requests.csv"));
  std::getline(reqs, line);
  std::uint64_t rows = 0, requests = 0;
  while (std::getline(reqs, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
    ASSERT_GE(cells.size(), 16u);
    const std::uint64_t n = std::stoull(cells[15]);
    // Its tokens: 0 at the first token's time, n - 1 at the last's.
    std::string first, last;
    for (std::uint64_t k = 0; k < n; ++k) {
      ASSERT_TRUE(std::getline(lines, line));
      const std::string prefix = cells[0] + "," + std::to_string(k) + ",";
      ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
      if (k == 0) first = line.substr(prefix.size());
      last = line.substr(prefix.size());
    }
    EXPECT_EQ(first, cells[13]);
    EXPECT_EQ(last, cells[14]);
    rows += n;
    ++requests;
  }
  EXPECT_EQ(requests, 3u);
  EXPECT_FALSE(std::getline(lines, line));
  const auto s = nlohmann::json::parse(slurp(out / "summary.json"));
  // One gap per token after each request's first.
  EXPECT_EQ(s["requests"]["itl_s"]["count"].get<std::uint64_t>(), rows - requests);
  EXPECT_EQ(s["throughput"]["output_tokens"].get<std::uint64_t>(), rows);

  // Without the flag, the earlier tokens.csv goes.
  r = wse_emu("run '" + (dir_ / "exp.yaml").string() + "' --out '" + out.string() + "' --force --quiet",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out / "tokens.csv"));
}

// serving.speculative through the command (docs/serving.md, "Speculative decoding").
const std::string kDraft =
    "    draft_model:\n      include: " + kSrc +
    "/workloads/data/models/meta-llama--Meta-Llama-3.1-8B_config.json\n      name: Llama-3.1-8B\n";

// A run with k = 3 drafted tokens and acceptance 1 (`all`) against the same run without
// speculation (`plain`): every step emits k + 1 = 4 tokens, every drafted token is
// accepted, the draft and the verification both take time, and the same tokens come out.
void expect_all_of_3_accepted(const nlohmann::json& all, const nlohmann::json& plain) {
  ASSERT_TRUE(all.contains("speculative"));
  const auto& sa = all["speculative"];
  EXPECT_DOUBLE_EQ(sa["tokens_per_step"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(sa["acceptance_rate"].get<double>(), 1.0);
  EXPECT_EQ(sa["drafted_tokens"].get<std::uint64_t>(), 3 * sa["request_steps"].get<std::uint64_t>());
  EXPECT_GT(sa["draft_seconds"].get<double>(), 0.0);
  EXPECT_GT(sa["verify_seconds"].get<double>(), 0.0);
  EXPECT_EQ(all["throughput"]["output_tokens"], plain["throughput"]["output_tokens"]);
}

TEST_F(ServingPolicies, SpeculativeBadValuesAreRefusedAtTheirKey) {
  // Lines: 5 speculative, 6 tokens, 7 acceptance.
  const fs::path f = experiment("  speculative:\n    tokens: 0\n    acceptance: 0.5\n" + kDraft);
  Result r = run_bad(f);
  EXPECT_THAT(r.err, HasSubstr(f.string() + ":6:13: key 'serving.speculative.tokens'"));
  r = run_bad(experiment("  speculative:\n    tokens: 2\n    acceptance: 1.5\n" + kDraft));
  EXPECT_THAT(r.err, HasSubstr(":7:17: key 'serving.speculative.acceptance'"));
  r = run_bad(experiment("  speculative:\n    tokens: 2\n" + kDraft));
  EXPECT_THAT(r.err, HasSubstr("serving.speculative.acceptance_by_position"));
  r = run_bad(experiment("  speculative:\n    tokens: 2\n    acceptance: 0.5\n    draft: x\n" + kDraft));
  EXPECT_THAT(r.err, HasSubstr("unknown key 'draft'"));
  // A draft of another vocabulary (Qwen3-8B: 151,936 tokens against Llama's 128,256).
  r = run_bad(experiment(
      "  speculative:\n    tokens: 2\n    acceptance: 0.5\n    draft_model:\n      include: " + kSrc +
      "/workloads/data/models/Qwen--Qwen3-8B_config.json\n"));
  EXPECT_THAT(r.err, HasSubstr("serving.speculative.draft_model"));
  EXPECT_THAT(r.err, HasSubstr("vocabulary of 151936 tokens"));
}

// Llama-3.1-8B beside Llama-3.1-70B on the default decode system of four CS-3s: its
// weights (16,060,522,496 B) exceed the SRAM the 70B leaves for KV: one error at
// draft_model with the shortfall, exit 2.
TEST_F(ServingPolicies, SpeculativeDraftThatDoesNotFitTheWafersIsRefused) {
  const fs::path f =
      write("cs3.yaml", "include:\n  - " + kSrc +
                            "/configs/experiments/default.yaml\nworkload: {trace: {limit: 3}}\n"
                            "serving:\n  speculative:\n    tokens: 2\n    acceptance: 0.5\n" +
                            kDraft);
  const Result r = run_bad(f);
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("does not fit beside Llama-3.1-70B"));
  EXPECT_THAT(r.err, HasSubstr("its weights need 16060522496 B"));
  EXPECT_THAT(r.err, HasSubstr("B short"));
}

// Speculation behind a prefill split that its draft path does not model is one error at
// draft_model, exit 2: prefill replicas in trainium_only (each would decode on its own
// chips), and a context-parallel prefill in front of the CS-3s (the draft's prompt pass
// runs on one group). The same splits without speculation run (tested in
// test_trainium_serving_split.cpp).
TEST_F(ServingPolicies, SpeculativeBehindAPrefillSplitIsRefused) {
  const std::string spec = "serving:\n  speculative:\n    tokens: 2\n    acceptance: 0.5\n" + kDraft;
  Result r = run_bad(write("dp.yaml", "include:\n  - " + kSrc +
                                          "/configs/experiments/trainium_only.yaml\n"
                                          "workload: {trace: {limit: 3}}\n"
                                          "prefill: {tp_degree: 32, dp_degree: 2}\n" +
                                          spec));
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("prefill.dp_degree > 1"));
  r = run_bad(write("cp.yaml", "include:\n  - " + kSrc +
                                   "/configs/experiments/default.yaml\n"
                                   "workload: {trace: {limit: 3}}\n"
                                   "decode: {wafers: 5}\n"
                                   "prefill: {tp_degree: 32, cp_degree: 2}\n" +
                                   spec));
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("behind a split prefill"));
}

// Combinations whose draft path is not modelled, and a draft that does not fit beside the
// target on the GPUs: one error at draft_model each, exit 2.
//  - trainium_disaggregated with decode's own split (trainium_decode:): a split's step is
//    the steady state of identical steps, a speculative step alternates two models' passes;
//  - a Trainium prefill split in front of Trainium decode (the draft's prompt pass runs on
//    one group);
//  - GPU groups with pipeline stages (gpu_only, gpu_pass tp 4 x pp 2);
//  - Llama-3.1-70B drafting for itself on 2 H100s (160 GiB): 282.2 GB of weights.
TEST_F(ServingPolicies, SpeculativeRefusedWhereNotModelled) {
  const std::string spec = "serving:\n  speculative:\n    tokens: 2\n    acceptance: 0.5\n" + kDraft;
  const auto with = [&](const std::string& name, const std::string& base, const std::string& lines,
                        const std::string& serving) {
    return write(name, "include:\n  - " + kSrc + "/configs/experiments/" + base +
                           "\nworkload: {trace: {limit: 3}}\n" + lines + serving);
  };
  Result r =
      run_bad(with("split.yaml", "trainium_disaggregated.yaml", "trainium_decode: {tp_degree: 32}\n", spec));
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("trainium_decode's own split is not modelled"));
  r = run_bad(
      with("cp.yaml", "trainium_disaggregated.yaml", "prefill: {tp_degree: 32, cp_degree: 2}\n", spec));
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("behind a split prefill"));
  r = run_bad(with("pp.yaml", "gpu_only.yaml", "gpu_pass: {tp_degree: 4, pp_degree: 2}\n", spec));
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("pipeline stages (gpu_pass.pp_degree 2) is not modelled"));
  r = run_bad(with("big.yaml", "gpu_only.yaml", "gpu_pass: {tp_degree: 2}\n",
                   "serving:\n  speculative:\n    tokens: 2\n    acceptance: 0.5\n    draft_model:\n"
                   "      include: " +
                       kSrc + "/workloads/data/models/meta-llama--Meta-Llama-3.1-70B_config.json\n"));
  EXPECT_THAT(r.err, HasSubstr("key 'serving.speculative.draft_model'"));
  EXPECT_THAT(r.err, HasSubstr("do not fit beside the target's"));
  EXPECT_THAT(r.err, HasSubstr("HBM of tp_degree 2 GPU(s) (160.00 GiB)"));
}

// Speculation in the modes whose decode runs on GPUs, on Trainium behind Trainium prefill,
// and on CS-3s behind GPU prefill, on 3 requests: acceptance 1 gives k + 1 = 4 tokens a
// step, the same output tokens as without, and the summary's speculative figures. Where
// the prefill is on other machines, the draft's prompt KV crosses with the target's:
// (327,680 + 131,072) / 327,680 = 7/5 of the KV bytes sent without speculation. A GPU
// group's KV room by hand: 8 x 80 GiB of HBM less both models' weights (141,107,412,992 +
// 16,060,522,496 B) = 530,026,831,872 B, shared by both models' KV; admission counts the
// target's (gpu_only: x 327,680 / 458,752 = 378,590,594,194 B) or, when both cross from
// Trainium prefill, both (530,026,831,872 B).
TEST_F(ServingPolicies, SpeculativeInTheGpuAndDisaggregatedModes) {
  struct Mode {
    std::string file, lines;
    bool sends;
    std::uint64_t kv_room = 0;  // by hand (0: not checked here)
  };
  const std::vector<Mode> modes = {{"gpu_only.yaml", "", false, 378590594194u},
                                   {"trainium_prefill_gpu_decode.yaml", "", true, 530026831872u},
                                   {"trainium_disaggregated.yaml", "", true},
                                   {"gpu_prefill_cs3_decode.yaml", "decode: {wafers: 5}\n", true}};
  const auto run = [&](const Mode& m, const std::string& name, const std::string& serving) {
    const fs::path f = write(name + ".yaml", "include:\n  - " + kSrc + "/configs/experiments/" + m.file +
                                                 "\nworkload: {trace: {limit: 3}}\n" + m.lines + serving);
    const fs::path out = dir_ / name;
    const Result r = wse_emu("run '" + f.string() + "' --out '" + out.string() + "' --quiet", dir_ / "io");
    EXPECT_EQ(r.exit_code, 0) << m.file << ": " << r.err;
    return nlohmann::json::parse(slurp(out / "summary.json"));
  };
  for (const Mode& m : modes) {
    SCOPED_TRACE(m.file);
    const std::string stem = fs::path(m.file).stem().string();
    const auto plain = run(m, stem + "_plain", "");
    const auto all =
        run(m, stem + "_all", "serving:\n  speculative:\n    tokens: 3\n    acceptance: 1\n" + kDraft);
    expect_all_of_3_accepted(all, plain);
    if (m.kv_room > 0) {
      EXPECT_EQ(all["decode_kv_capacity_bytes"].get<std::uint64_t>(), m.kv_room);
    }
    if (m.sends) {
      EXPECT_EQ(all["kv_transfer"]["bytes"].get<std::uint64_t>() * 5,
                plain["kv_transfer"]["bytes"].get<std::uint64_t>() * 7);
    }
  }
}

// Tokens per step on the GPUs against the closed form for a fixed acceptance a = 0.57,
// k = 3: E = (1 - a^4) / (1 - a) = 2.080093; a request-step's tokens 1 + A with
// P(A >= i) = a^i have variance E[(1 + A)^2] - E^2, and the measured mean over the run's
// request-steps lies within 5 standard errors of E. The same seed gives the same figures.
TEST_F(ServingPolicies, SpeculativeGpuTokensPerStepIsTheClosedForm) {
  const std::string file =
      "include:\n  - " + kSrc + "/configs/experiments/speculative_gpu.yaml\nworkload: {trace: {limit: 40}}\n";
  const auto run = [&](const std::string& name) {
    const fs::path out = dir_ / name;
    const Result r = wse_emu(
        "run '" + write("g.yaml", file).string() + "' --out '" + out.string() + "' --quiet", dir_ / "io");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(slurp(out / "summary.json"));
  };
  const auto s = run("a");
  const auto& sp = s["speculative"];
  const double a = 0.57;
  const double e = (1 - a * a * a * a) / (1 - a);
  EXPECT_NEAR(sp["expected_tokens_per_step"].get<double>(), e, 1e-12);
  // P(1 + A = n): a^(n-1) (1 - a) for n <= 3, a^3 for n = 4.
  double m2 = 0.0;
  for (int n = 1; n <= 4; ++n) m2 += n * n * (n < 4 ? std::pow(a, n - 1) * (1 - a) : std::pow(a, 3));
  const double steps = sp["request_steps"].get<double>();
  ASSERT_GT(steps, 1000.0);
  const double se = std::sqrt((m2 - e * e) / steps);
  EXPECT_NEAR(sp["tokens_per_step"].get<double>(), e, 5 * se);
  const auto again = run("b");
  EXPECT_EQ(again["speculative"], sp);
  EXPECT_EQ(again["requests"], s["requests"]);
}

// The fused Trainium path on 3 requests: acceptance 1 gives k + 1 = 4 tokens a step,
// acceptance 0 gives 1 at the cost of the drafts (TPOT above the plain run's), and the
// summary's figures add up.
TEST_F(ServingPolicies, SpeculativeTrainiumTokensPerStep) {
  const auto run = [&](const std::string& name, const std::string& serving) {
    const fs::path out = dir_ / name;
    const Result r = wse_emu(
        "run '" + experiment(serving).string() + "' --out '" + out.string() + "' --quiet", dir_ / "io");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(slurp(out / "summary.json"));
  };
  const auto plain = run("plain", "  admission: fcfs\n");
  EXPECT_FALSE(plain.contains("speculative"));
  const auto all = run("all", "  speculative:\n    tokens: 3\n    acceptance: 1\n" + kDraft);
  expect_all_of_3_accepted(all, plain);
  const auto none = run("none", "  speculative:\n    tokens: 3\n    acceptance: 0\n" + kDraft);
  EXPECT_DOUBLE_EQ(none["speculative"]["tokens_per_step"].get<double>(), 1.0);
  EXPECT_GT(none["requests"]["tpot_s"]["p50"].get<double>(),
            plain["requests"]["tpot_s"]["p50"].get<double>());
  EXPECT_LT(all["requests"]["tpot_s"]["p50"].get<double>(), none["requests"]["tpot_s"]["p50"].get<double>());
}

}  // namespace
}  // namespace wse::testing
