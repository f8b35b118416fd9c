// Decode-system failures in the serving system (docs/faults.md), with machines whose
// timing is given by simple rules (as test_serving.cpp), so that every time below is
// derived by hand: a request re-routed with its KV resent, re-prefilled, re-prefilled
// because the prefill side no longer held its KV, and rejected when no decode system is
// left. Every request ends completed or rejected, and its tokens add up.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serving/serving_doubles.h"
#include "systemc_models/tlm/shared_resource.h"
#include "util/systemc_test.h"
#include "workloads/serving/serving_report.h"
#include "workloads/serving/serving_system.h"

namespace wse::serving {
namespace {

using doubles::FixedDecode;
using doubles::LinearPrefill;
using doubles::LinkPath;
using doubles::req;

// One request of 100 prompt tokens and 5 output tokens; 2 layers, layer-wise sending,
// 1000 B of KV per token, two decode systems.
ServingConfig base_config() { return doubles::linear_config(2, KvSend::layerwise); }

class ServingFaults : public testing::SystemCTest {};

using doubles::ms;

// Without faults (test_serving.cpp, LayerwiseKvOverlapsThePrefill): prefill 0 -> 2 ms,
// KV in place at 2.06 ms on system 0 (the first of two empty ones), decode steps end at
// 3.06 (token 2), 4.06, 5.06, 6.06 ms (token 5).
//
// System 0 fails at 3.5 ms: token 2 is out, the step 3.06 -> 4.06 ms is lost. The KV on
// system 0 covered the prompt and token 1 (100 + 1 tokens).
TEST_F(ServingFaults, ResendKvRecomputesOnlyTheGeneratedTokens) {
  LinearPrefill prefill(2);
  FixedDecode d0, d1;
  LinkPath path;
  ServingConfig c = base_config();
  c.failover = Failover::resend_kv;
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 3.5e-3, -1}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0, &d1}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  const RequestRecord& r = sys.records()[0];
  // The prefill side holds the prompt's KV: it computes the KV of 1 token at offset 100,
  // 1 ms + 10 us = 1.01 ms from 3.5 ms (layer 0 at 4.005 ms, layer 1 at 4.51 ms), and
  // sends 101 x 1000 B, 50,500 B per layer to system 1: 10 us + 50.5 us = 60.5 us each,
  // 4.005 -> 4.0655 ms and 4.51 -> 4.5705 ms. Tokens 3, 4, 5 at 5.5705, 6.5705, 7.5705 ms.
  ASSERT_EQ(prefill.batches.size(), 2u);
  EXPECT_EQ(prefill.batches[1][0].tokens, 1u);
  EXPECT_EQ(prefill.batches[1][0].context_offset, 100u);
  EXPECT_EQ(path.destinations, (std::vector<unsigned>{0, 0, 1, 1}));
  EXPECT_NEAR(ms(r.first_token_s), 2.0, 1e-9);  // the first token came from the first prefill
  EXPECT_NEAR(ms(r.kv_end_s), 4.5705, 1e-9);
  EXPECT_NEAR(ms(r.last_token_s), 7.5705, 1e-9);
  EXPECT_EQ(r.decode_system, 1);
  EXPECT_EQ(r.tokens_out, 5u);
  EXPECT_STREQ(r.state(), "completed");
  EXPECT_EQ(r.reroutes, 1u);
  EXPECT_EQ(r.kv_resends, 1u);
  EXPECT_EQ(r.reprefills, 0u);
  EXPECT_EQ(r.tokens_recomputed, 1u);
  EXPECT_EQ(r.kv_bytes, 201'000u);  // 100,000 first, 101,000 again
  EXPECT_EQ(r.kv_bytes_resent, 101'000u);
  EXPECT_EQ(d0.steps, 2);  // 2.06 -> 3.06 done, 3.06 -> 4.06 lost
  EXPECT_EQ(d1.steps, 3);
  EXPECT_EQ(sys.decode_failures(), 1u);

  nlohmann::json s, f;
  summarize(sys, c, s);
  summarize_faults(sys, f);
  EXPECT_EQ(s["requests"]["completed"], 1);
  EXPECT_EQ(s["requests"]["rejected"], 0);
  EXPECT_EQ(s["throughput"]["output_tokens"], 5);
  // E2E includes the recovery: 7.5705 ms instead of 6.06 ms.
  EXPECT_NEAR(s["requests"]["e2e_s"]["p99"].get<double>(), 7.5705e-3, 1e-12);
  EXPECT_EQ(f["reroutes"], 1);
  EXPECT_EQ(f["kv_bytes_resent"], 101000);
  EXPECT_EQ(f["tokens_recomputed"], 1);
  const std::string csv = requests_csv(sys);
  EXPECT_NE(csv.find(",5,completed,,1,0,1,101000,1,0,0,0\n"), std::string::npos) << csv;
}

// The request ends at 6.06 ms; a failure scheduled for 1 s is after the run's end. It
// used to be counted (decode_failures 1, the simulation running on to 1 s); it is now
// neither simulated nor counted. One at 3.5 ms in the same run still is.
TEST_F(ServingFaults, FailureScheduledAfterTheRunEndedIsNotCounted) {
  LinearPrefill prefill(2);
  FixedDecode d0, d1;
  LinkPath path;
  ServingConfig c = base_config();
  const std::vector<DecodeOutage> outages = {DecodeOutage{1, 1.0, -1}, DecodeOutage{0, 1.0, 2.0}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0, &d1}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  EXPECT_EQ(sys.records()[0].tokens_out, 5u);
  EXPECT_NEAR(ms(sys.end_s()), 6.06, 1e-9);
  EXPECT_EQ(sys.decode_failures(), 0u);
  EXPECT_LT(sc_core::sc_time_stamp().to_seconds(), 1.0) << "the simulation ran on to the failure";
  nlohmann::json f;
  summarize_faults(sys, f);
  EXPECT_EQ(f["decode_failures"], 0);
}

TEST_F(ServingFaults, FailureDuringTheRunIsStillCounted) {
  LinearPrefill prefill(2);
  FixedDecode d0, d1;
  LinkPath path;
  ServingConfig c = base_config();
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 3.5e-3, -1}, DecodeOutage{1, 1.0, -1}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0, &d1}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  EXPECT_STREQ(sys.records()[0].state(), "completed");
  EXPECT_EQ(sys.decode_failures(), 1u);
}

// The same failure with reprefill: the prefill side recomputes 101 tokens from offset 0,
// 1 ms + 1.01 ms = 2.01 ms from 3.5 ms (layer 0 at 4.505 ms, layer 1 at 5.51 ms); the
// two 50,500 B messages land at 4.5655 and 5.5705 ms; tokens 3, 4, 5 at 6.5705, 7.5705,
// 8.5705 ms.
TEST_F(ServingFaults, ReprefillRecomputesPromptAndGeneratedTokens) {
  LinearPrefill prefill(2);
  FixedDecode d0, d1;
  LinkPath path;
  ServingConfig c = base_config();
  c.failover = Failover::reprefill;
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 3.5e-3, -1}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0, &d1}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  const RequestRecord& r = sys.records()[0];
  ASSERT_EQ(prefill.batches.size(), 2u);
  EXPECT_EQ(prefill.batches[1][0].tokens, 101u);
  EXPECT_EQ(prefill.batches[1][0].context_offset, 0u);
  EXPECT_NEAR(ms(r.kv_end_s), 5.5705, 1e-9);
  EXPECT_NEAR(ms(r.last_token_s), 8.5705, 1e-9);
  EXPECT_EQ(r.tokens_out, 5u);
  EXPECT_EQ(r.reprefills, 1u);
  EXPECT_EQ(r.kv_resends, 0u);
  EXPECT_EQ(r.tokens_recomputed, 101u);
}

// resend_kv, but the prefill side keeps the KV only 1 ms after the prefill (ended at
// 2 ms): at 3.5 ms it is gone, so the request is re-prefilled, exactly as above.
TEST_F(ServingFaults, ResendFallsBackToReprefillWhenTheKvIsNoLongerHeld) {
  LinearPrefill prefill(2);
  FixedDecode d0, d1;
  LinkPath path;
  ServingConfig c = base_config();
  c.failover = Failover::resend_kv;
  c.prefill_kv_hold_s = 1e-3;
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 3.5e-3, -1}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0, &d1}, &path, nullptr, outages);
  run_to_end();
  const RequestRecord& r = sys.records()[0];
  EXPECT_NEAR(ms(r.last_token_s), 8.5705, 1e-9);
  EXPECT_EQ(r.reprefills, 1u);
  EXPECT_EQ(r.kv_resends, 0u);
}

// The only decode system fails at 0.5 ms, during the prefill, and does not come back;
// requests are rejected 3 ms after they asked for a decode system with none up.
// The KV was bound for system 0 (reserved at 0 ms); layer 0's message, due at 1 ms, is
// not sent. At the end of the prefill (2 ms, token 1) the request is sent back to the
// prefill side, which holds its KV and asks for a decode system at 2 ms: none is up, so
// it is rejected at 2 + 3 = 5 ms.
TEST_F(ServingFaults, RejectedAfterTheTimeoutWhenNoDecodeSystemIsLeft) {
  LinearPrefill prefill(2);
  FixedDecode d0;
  LinkPath path;
  ServingConfig c = base_config();
  c.reject_after_s = 3e-3;
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 0.5e-3, -1}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  const RequestRecord& r = sys.records()[0];
  EXPECT_STREQ(r.state(), "rejected");
  EXPECT_NEAR(ms(r.rejected_s), 5.0, 1e-9);
  EXPECT_EQ(r.reason, "no decode system up within serving.reject_after");
  EXPECT_TRUE(path.destinations.empty());
  EXPECT_EQ(r.kv_bytes, 0u);
  EXPECT_EQ(r.tokens_out, 1u);
  EXPECT_EQ(sys.completed(), 0u);
  EXPECT_EQ(sys.rejected(), 1u);
  nlohmann::json s, f;
  summarize(sys, c, s);
  summarize_faults(sys, f);
  EXPECT_EQ(s["requests"]["completed"], 0);
  EXPECT_EQ(s["requests"]["rejected"], 1);
  EXPECT_EQ(f["rejected_reasons"]["no decode system up within serving.reject_after"], 1);
}

// Without a timeout the request waits; the system comes back at 10 ms (empty) and the
// request, which asked again at 2 ms, gets it: its prompt KV (100,000 B, 50,000 B per
// layer, both layers ready) leaves at 10 ms: 60 us per message, in place at 10.12 ms;
// tokens 2..5 at 11.12, 12.12, 13.12, 14.12 ms.
TEST_F(ServingFaults, WaitsForADecodeSystemToComeBack) {
  LinearPrefill prefill(2);
  FixedDecode d0;
  LinkPath path;
  ServingConfig c = base_config();
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 0.5e-3, 10e-3}};
  ServingSystem sys("serving", c, {req(0, 100, 5)}, {&prefill}, {&d0}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  const RequestRecord& r = sys.records()[0];
  EXPECT_STREQ(r.state(), "completed");
  EXPECT_NEAR(ms(r.kv_start_s), 10.0, 1e-9);
  EXPECT_NEAR(ms(r.last_token_s), 14.12, 1e-9);
  EXPECT_EQ(r.kv_resends, 1u);
  EXPECT_EQ(r.tokens_recomputed, 0u);
}

// A system that never comes back and no timeout: the run ends with the request still
// waiting, and close_run() rejects it with that reason (never dropped silently).
TEST_F(ServingFaults, StillWaitingAtTheEndIsRejectedWithAReason) {
  LinearPrefill prefill(2);
  FixedDecode d0;
  LinkPath path;
  ServingConfig c = base_config();
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 0.5e-3, -1}};
  ServingSystem sys("serving", c, {req(0, 100, 5), req(0, 100, 1)}, {&prefill}, {&d0}, &path, nullptr,
                    outages);
  sc_core::sc_start();
  sys.close_run();
  EXPECT_STREQ(sys.records()[0].state(), "rejected");
  EXPECT_EQ(sys.records()[0].reason, "no decode system up when the run ended");
  // A request of one output token needs no decode system: completed by its prefill.
  EXPECT_STREQ(sys.records()[1].state(), "completed");
  EXPECT_EQ(sys.completed() + sys.rejected(), 2u);
}

}  // namespace
}  // namespace wse::serving
