// Speculative decoding in the serving loop (serving.speculative, docs/serving.md
// "Speculative decoding"), with machines whose timing is given by simple rules so that
// every time below is derived by hand, and the reader of its keys.
//
// The doubles: prefill 1 ms + 10 us per token; one link of 1 GB/s and 10 us latency;
// 1000 B of KV per token; KV leaves after the prefill (kv_send after_prefill), so a
// transfer of B bytes takes 10 us + B / 1 GB/s. The decode machine: a plain step 1 ms;
// a speculative step of k drafts: each draft pass 0.1 ms, the verification 1.2 ms.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serving/serving_doubles.h"
#include "systemc_models/config/config.h"
#include "util/systemc_test.h"
#include "workloads/serving/serving_report.h"
#include "workloads/serving/serving_system.h"

namespace wse::serving {
namespace {

using doubles::LinearPrefill;
using doubles::LinkPath;
using doubles::ms;
using doubles::req;

class SpecDecode : public DecodeBackend {
 public:
  double step(const std::vector<std::uint32_t>& /*contexts*/) override {
    ++plain_steps;
    return 1e-3;
  }
  SpeculativeTiming speculative_step(const std::vector<std::uint32_t>& contexts,
                                     std::uint32_t draft_tokens) override {
    contexts_seen.push_back(contexts);
    drafts_seen.push_back(draft_tokens);
    return {0.1e-3 * draft_tokens, 1.2e-3};
  }
  int plain_steps = 0;
  std::vector<std::vector<std::uint32_t>> contexts_seen;
  std::vector<std::uint32_t> drafts_seen;
};

Speculative fixed(std::uint32_t k, double alpha, std::uint64_t seed = 1) {
  Speculative s;
  s.tokens = k;
  s.acceptance.assign(k, alpha);
  s.seed = seed;
  return s;
}

ServingConfig spec_config(const Speculative& s) {
  ServingConfig c = doubles::linear_config(1, KvSend::after_prefill);
  c.speculative = s;
  return c;
}

class ServingSpeculative : public testing::SystemCTest {};

TEST(SpeculativeClosedForm, ExpectedTokensPerStep) {
  // Fixed alpha: (1 - a^(k+1)) / (1 - a). a = 0.6, k = 4: (1 - 0.07776) / 0.4 = 2.3056.
  EXPECT_NEAR(fixed(4, 0.6).expected_tokens_per_step(), 2.3056, 1e-12);
  EXPECT_DOUBLE_EQ(fixed(4, 1.0).expected_tokens_per_step(), 5.0);  // every draft accepted: k + 1
  EXPECT_DOUBLE_EQ(fixed(4, 0.0).expected_tokens_per_step(), 1.0);  // none: the target's token only
  // Per position: 1 + 0.8 + 0.8 x 0.5 + 0.8 x 0.5 x 0.25 = 2.3.
  Speculative p;
  p.tokens = 3;
  p.acceptance = {0.8, 0.5, 0.25};
  EXPECT_NEAR(p.expected_tokens_per_step(), 2.3, 1e-12);
}

// One request, 100 prompt + 11 output tokens, k = 4, acceptance 1: every step emits 5.
//   Prefill 0 -> 2 ms (first token); KV 100,000 B in place at 2 + 0.11 = 2.11 ms.
//   Step = 4 x 0.1 + 1.2 = 1.6 ms. Steps 2.11 -> 3.71 (tokens 2-6) -> 5.31 (7-11).
//   Contexts verified: 101 (prompt + first token), then 106.
TEST_F(ServingSpeculative, AcceptanceOneGivesKPlusOneTokensPerStep) {
  LinearPrefill prefill(1);
  SpecDecode decode;
  LinkPath path;
  ServingSystem sys("serving", spec_config(fixed(4, 1.0)), {req(0, 100, 11)}, {&prefill}, {&decode}, &path);
  sys.record_token_times(true);
  run_to_end();
  const RequestRecord& r = sys.records()[0];
  EXPECT_EQ(r.tokens_out, 11u);
  EXPECT_NEAR(ms(r.last_token_s), 5.31, 1e-9);
  ASSERT_EQ(decode.contexts_seen.size(), 2u);
  EXPECT_EQ(decode.contexts_seen[0], std::vector<std::uint32_t>{101});
  EXPECT_EQ(decode.contexts_seen[1], std::vector<std::uint32_t>{106});
  EXPECT_EQ(decode.drafts_seen[0], 4u);
  EXPECT_EQ(decode.plain_steps, 0);
  const SpeculativeCounts& c = sys.speculative();
  EXPECT_EQ(c.steps, 2u);
  EXPECT_EQ(c.verified, 2u);
  EXPECT_EQ(c.drafted, 8u);
  EXPECT_EQ(c.accepted, 8u);
  EXPECT_EQ(c.emitted_tokens, 10u);
  EXPECT_NEAR(c.draft_s, 0.8e-3, 1e-12);
  EXPECT_NEAR(c.verify_s, 2.4e-3, 1e-12);
  // Tokens 1-5 of a step are emitted together at its end.
  const std::vector<double>& t = sys.token_times()[0];
  ASSERT_EQ(t.size(), 11u);
  EXPECT_NEAR(ms(t[0]), 2.0, 1e-9);
  for (int i = 1; i <= 5; ++i) EXPECT_NEAR(ms(t[i]), 3.71, 1e-9) << i;
  for (int i = 6; i <= 10; ++i) EXPECT_NEAR(ms(t[i]), 5.31, 1e-9) << i;
  // ITL: 10 gaps, two of 1.71 ms (2 -> 3.71) and 1.6 ms, eight of 0.
  EXPECT_EQ(sys.itl().count(), 10u);
  EXPECT_NEAR(sys.itl().mean(), (1.71e-3 + 1.6e-3) / 10, 1e-12);
  nlohmann::json s;
  summarize(sys, spec_config(fixed(4, 1.0)), s);
  EXPECT_DOUBLE_EQ(s["speculative"]["acceptance_rate"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(s["speculative"]["tokens_per_step"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(s["speculative"]["expected_tokens_per_step"].get<double>(), 5.0);
  // TPOT: (5.31 - 2) / 10 = 0.331 ms.
  EXPECT_NEAR(s["requests"]["tpot_s"]["mean"].get<double>(), 0.331e-3, 1e-12);
}

// The last step is clipped to the output length: 12 outputs need 11 after the first:
// 5, 5, then 1 of the 5 the third step verified. Steps end at 3.71, 5.31, 6.91 ms.
TEST_F(ServingSpeculative, TheLastStepIsClippedToTheOutputLength) {
  LinearPrefill prefill(1);
  SpecDecode decode;
  LinkPath path;
  ServingSystem sys("serving", spec_config(fixed(4, 1.0)), {req(0, 100, 12)}, {&prefill}, {&decode}, &path);
  run_to_end();
  EXPECT_EQ(sys.records()[0].tokens_out, 12u);
  EXPECT_NEAR(ms(sys.records()[0].last_token_s), 6.91, 1e-9);
  EXPECT_EQ(sys.speculative().verified, 3u);
  EXPECT_EQ(sys.speculative().accepted, 12u);        // what the target accepted (tokens_per_step: 5)
  EXPECT_EQ(sys.speculative().emitted_tokens, 11u);  // what the request took
}

// Acceptance 0: every step emits the target's own token only, at the cost of the drafts.
// 100 + 4 outputs: 3 steps of 1.6 ms from 2.11 ms: last token at 6.91 ms (without
// speculation, 3 steps of 1 ms: 5.11 ms).
TEST_F(ServingSpeculative, AcceptanceZeroGivesOneTokenPerStep) {
  LinearPrefill prefill(1);
  SpecDecode decode;
  LinkPath path;
  ServingSystem sys("serving", spec_config(fixed(4, 0.0)), {req(0, 100, 4)}, {&prefill}, {&decode}, &path);
  run_to_end();
  EXPECT_NEAR(ms(sys.records()[0].last_token_s), 6.91, 1e-9);
  EXPECT_EQ(sys.speculative().verified, 3u);
  EXPECT_EQ(sys.speculative().accepted, 0u);
  EXPECT_EQ(sys.speculative().drafted, 12u);
  nlohmann::json s;
  summarize(sys, spec_config(fixed(4, 0.0)), s);
  EXPECT_DOUBLE_EQ(s["speculative"]["acceptance_rate"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(s["speculative"]["tokens_per_step"].get<double>(), 1.0);
}

// Per-position acceptance [1, 0, 1]: position 1 always accepted, position 2 never, so
// every step emits exactly 2 tokens whatever the draws. 100 + 7 outputs: 3 steps of
// 3 x 0.1 + 1.2 = 1.5 ms from 2.11 ms: last token at 6.61 ms.
TEST_F(ServingSpeculative, PerPositionAcceptance) {
  LinearPrefill prefill(1);
  SpecDecode decode;
  LinkPath path;
  Speculative p;
  p.tokens = 3;
  p.acceptance = {1.0, 0.0, 1.0};
  ServingSystem sys("serving", spec_config(p), {req(0, 100, 7)}, {&prefill}, {&decode}, &path);
  run_to_end();
  EXPECT_NEAR(ms(sys.records()[0].last_token_s), 6.61, 1e-9);
  EXPECT_EQ(sys.speculative().verified, 3u);
  EXPECT_EQ(sys.speculative().accepted, 3u);
}

// A long seeded run against the closed form. 8 requests of 100 + 2,001 tokens in one
// batch, k = 4, alpha = 0.6. Tokens per request-step X = 1 + A, with P(A >= i) = a^i
// (i <= k): E[X] = 2.3056; E[A^2] = sum (2i - 1) a^i = 0.6 + 1.08 + 1.08 + 0.9072 +
// 0.69984 = 4.36704, Var[X] = 4.36704 - 1.3056^2 = 2.6625, sd 1.632. About
// 8 x 2000 / 2.3 = 6,940 request-steps: the mean's standard error is 1.632 / sqrt(6940)
// = 0.0196; the test allows 5 of them (0.098; a false failure has odds below 1e-6).
// The acceptance rate (accepted / drafted) has expectation E[A] / k = 0.3264; its
// standard error is at most sd(A) / k / sqrt(n) = 0.0049: allowed 0.025.
TEST_F(ServingSpeculative, LongRunMatchesTheClosedFormAndReproduces) {
  std::vector<workloads::Request> reqs;
  for (int i = 0; i < 8; ++i) reqs.push_back(req(0, 100, 2001));
  const auto run = [&](std::uint64_t seed) {
    LinearPrefill prefill(1);
    SpecDecode decode;
    LinkPath path;
    auto sys = std::make_unique<ServingSystem>("serving", spec_config(fixed(4, 0.6, seed)), reqs,
                                               std::vector<PrefillBackend*>{&prefill},
                                               std::vector<DecodeBackend*>{&decode}, &path);
    run_to_end();
    for (const RequestRecord& r : sys->records()) EXPECT_EQ(r.tokens_out, 2001u);
    return std::make_pair(sys->speculative(), sys->records()[7].last_token_s);
  };
  const auto [a, end_a] = run(7);
  const double per_step = static_cast<double>(a.accepted + a.verified) / static_cast<double>(a.verified);
  EXPECT_GT(a.verified, 6000u);
  EXPECT_NEAR(per_step, 2.3056, 0.098);
  EXPECT_NEAR(static_cast<double>(a.accepted) / static_cast<double>(a.drafted), 0.3264, 0.025);
  // The same seed: the same draws, to the token and the picosecond.
  SetUp();
  const auto [b, end_b] = run(7);
  EXPECT_EQ(b.accepted, a.accepted);
  EXPECT_EQ(b.verified, a.verified);
  EXPECT_EQ(end_b, end_a);
  // Another seed draws otherwise.
  SetUp();
  const auto [c, end_c] = run(8);
  EXPECT_NE(c.accepted, a.accepted);
}

// Under output_length unknown a speculative step reserves the KV of k + 1 more tokens
// per request (what its verification writes), capped at the request's final context.
// Colocated (both join the first step together): r0 (100 + 10 tokens) and r1 (100 + 3),
// k = 2, acceptance 1, 206,000 B of room. The prefill batch of both ends at 3 ms; both
// are admitted with 101,000 B (202,000 B).
//   Speculative: before the first step r0 grows to 100 + 1 + 3 = 104 tokens (206,000 B
//   with r1's), r1 to min(104, 103) = 103 (208,000 B): it does not fit, and r1, last in
//   admission order, is preempted.
//   Plain: each step grows each by one token: 204,000 B, then 206,000 B at the second
//   step, after which r1 (3 tokens) is done: r0 alone never exceeds 110,000 B. No
//   preemption.
TEST_F(ServingSpeculative, UnknownOutputLengthReservesTheVerifiedTokens) {
  const auto preemptions = [&](bool speculative) {
    LinearPrefill prefill(1);
    SpecDecode decode;
    ServingConfig c = spec_config(fixed(2, 1.0));
    if (!speculative) c.speculative.reset();
    c.output_length = OutputLength::unknown;
    c.decode_kv_capacity_bytes = 206'000;
    c.placement = Placement::colocated;
    ServingSystem sys("serving", c, {req(0, 100, 10), req(0, 100, 3)}, {&prefill}, {&decode}, nullptr);
    run_to_end();
    EXPECT_EQ(sys.completed(), 2u);
    return sys.preemptions();
  };
  EXPECT_GE(preemptions(true), 1u);
  SetUp();
  EXPECT_EQ(preemptions(false), 0u);
}

// The cap: 100 + 3 tokens, k = 2, room for 103 tokens. The step would write 104 tokens'
// KV, but the request never holds more than its final context (103): it runs, one step
// of 2 x 0.1 + 1.2 = 1.4 ms from 2.11 ms (3 tokens verified, 2 taken): done at 3.51 ms.
TEST_F(ServingSpeculative, TheReservationIsCappedAtTheFinalContext) {
  LinearPrefill prefill(1);
  SpecDecode decode;
  LinkPath path;
  ServingConfig c = spec_config(fixed(2, 1.0));
  c.output_length = OutputLength::unknown;
  c.decode_kv_capacity_bytes = 103'000;
  ServingSystem sys("serving", c, {req(0, 100, 3)}, {&prefill}, {&decode}, &path);
  run_to_end();
  EXPECT_NEAR(ms(sys.records()[0].last_token_s), 3.51, 1e-9);
  EXPECT_EQ(sys.preemptions(), 0u);
}

// The reader: tokens and acceptance at their keys.
config::ConfigError read_error(const std::string& yaml) {
  config::Document doc = config::parse("serving:\n  speculative:\n" + yaml, "exp.yaml");
  config::Section root = doc.root();
  config::Section sv = root.section("serving", "serving");
  try {
    (void)read_serving_config(sv);
  } catch (const config::ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return config::ConfigError({}, "", "");
}

TEST(SpeculativeReader, ReadsFixedAndPerPositionAcceptance) {
  config::Document doc = config::parse(
      "serving:\n  speculative:\n    tokens: 3\n    acceptance_by_position: [0.8, 0.6, 0.5]\n", "exp.yaml");
  config::Section root = doc.root();
  config::Section sv = root.section("serving", "serving");
  const ServingConfig c = read_serving_config(sv);
  ASSERT_TRUE(c.speculative);
  EXPECT_EQ(c.speculative->tokens, 3u);
  EXPECT_EQ(c.speculative->acceptance, (std::vector<double>{0.8, 0.6, 0.5}));
  config::Document d2 =
      config::parse("serving:\n  speculative:\n    tokens: 2\n    acceptance: 0.7\n", "e.yaml");
  config::Section r2 = d2.root();
  config::Section s2 = r2.section("serving", "serving");
  EXPECT_EQ(read_serving_config(s2).speculative->acceptance, (std::vector<double>{0.7, 0.7}));
  config::Document d3 = config::parse("serving: {}\n", "e.yaml");
  config::Section r3 = d3.root();
  config::Section s3 = r3.section("serving", "serving");
  EXPECT_FALSE(read_serving_config(s3).speculative);
}

TEST(SpeculativeReader, BadValuesFailAtTheirKey) {
  config::ConfigError e = read_error("    tokens: 0\n    acceptance: 0.5\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.tokens");
  EXPECT_EQ(e.source().line, 3);
  e = read_error("    tokens: 2\n    acceptance: 1.5\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.acceptance");
  EXPECT_EQ(e.source().line, 4);
  e = read_error("    tokens: 2\n    acceptance: -0.1\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.acceptance");
  e = read_error("    tokens: 2\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.acceptance_by_position");
  EXPECT_NE(std::string(e.what()).find("assumption"), std::string::npos) << e.what();
  e = read_error("    tokens: 2\n    acceptance: 0.5\n    acceptance_by_position: [0.5, 0.5]\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.acceptance");
  e = read_error("    tokens: 3\n    acceptance_by_position: [0.5, 0.5]\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.acceptance_by_position");
  EXPECT_NE(std::string(e.what()).find("has 2 entries but tokens is 3"), std::string::npos) << e.what();
  e = read_error("    tokens: 2\n    acceptance_by_position: [0.5, 2]\n");
  EXPECT_EQ(e.key_path(), "serving.speculative.acceptance_by_position");
  EXPECT_NE(std::string(e.what()).find("'2'"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace wse::serving
