// Admission order, KV reserved as it grows, preemption, inter-token latency and token
// times (docs/serving.md), with machines whose timing is given by simple rules (as
// test_serving.cpp), so that every time below is derived by hand.
//
// The doubles: prefill 1 ms + 10 us per token; every decode step 1 ms; one link of
// 1 GB/s and 10 us latency; 1000 B of KV per token. KV leaves after the prefill
// (serving.kv_send: after_prefill), so a transfer of B bytes takes 10 us + B / 1 GB/s.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <algorithm>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serving/serving_doubles.h"
#include "util/systemc_test.h"
#include "workloads/serving/serving_report.h"
#include "workloads/serving/serving_system.h"

namespace wse::serving {
namespace {

using doubles::FixedDecode;
using doubles::LinearPrefill;
using doubles::LinkPath;
using doubles::req;

// Every test sets its own decode KV capacity.
ServingConfig base_config() { return doubles::linear_config(1, KvSend::after_prefill); }

class ServingAdmission : public testing::SystemCTest {};

using doubles::ms;

// r0 (arrives 0, 100 prompt + 3 output tokens: 103,000 B of KV), r1 (0, 100 + 350:
// 450,000 B), r2 (0.5 ms, 300 + 2: 302,000 B); 500,000 B of decode KV capacity, output
// lengths known (oracle).
//   Prefill batch 1 at 0: r0 + r1, 200 tokens, 0 -> 3 ms; batch 2: r2, 300 tokens, 3 -> 7 ms.
//   At 0, r0 reserves 103,000 B; r1 does not fit (553,000 B) and waits.
//   At 3 ms, r2 asks: it would fit (405,000 B), but r1 arrived first and waits: so does r2.
//   r0's KV (100,000 B) leaves at 3 ms, in place at 3.11 ms; steps 3.11 -> 4.11 -> 5.11 ms.
//   At 5.11 ms r0 ends; r1 takes 450,000 B (r2 would now need 752,000 B: it waits on).
//   r1's KV in place at 5.11 + 0.11 = 5.22 ms; 349 steps: last token at 354.22 ms.
//   At 354.22 ms r2 takes its room; its 300,000 B in place at 354.22 + 0.31 = 354.53 ms;
//   one step: last token at 355.53 ms.
TEST_F(ServingAdmission, FcfsAdmitsInArrivalOrderWithoutOvertaking) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.admission = Admission::fcfs;
  c.decode_kv_capacity_bytes = 500'000;
  ServingSystem sys("serving", c, {req(0, 100, 3), req(0, 100, 350), req(0.5e-3, 300, 2)}, {&prefill},
                    {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_NEAR(ms(r[0].kv_start_s), 3.0, 1e-9);
  EXPECT_NEAR(ms(r[0].last_token_s), 5.11, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_start_s), 5.11, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 354.22, 1e-9);
  EXPECT_NEAR(ms(r[2].first_token_s), 7.0, 1e-9);
  EXPECT_NEAR(ms(r[2].kv_start_s), 354.22, 1e-9);
  EXPECT_NEAR(ms(r[2].last_token_s), 355.53, 1e-9);
  // No overtaking: a request that arrived later joins the decode side no earlier.
  for (std::size_t a = 0; a < r.size(); ++a) {
    for (std::size_t b = a + 1; b < r.size(); ++b) EXPECT_LE(r[a].decode_start_s, r[b].decode_start_s);
  }
  EXPECT_EQ(sys.preemptions(), 0u);
}

// r0 (0, 100 + 3: 103,000 B), r1 (0, 100 + 50: 150,000 B), r2 (0.5 ms, 10 + 2:
// 12,000 B); 200,000 B of capacity.
//   Batch 1 at 0: r0 + r1, 0 -> 3 ms; batch 2: r2, 10 tokens, 3 -> 4.1 ms.
//   At 0 r0 reserves 103,000 B; r1 does not fit (253,000 B) and waits.
std::vector<RequestRecord> three_requests(Admission admission,
                                          std::vector<std::int64_t> priorities = {0, 0, 0}) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.admission = admission;
  c.decode_kv_capacity_bytes = 200'000;
  std::vector<workloads::Request> reqs{req(0, 100, 3), req(0, 100, 50), req(0.5e-3, 10, 2)};
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].priority = priorities[i];
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  sc_core::sc_start();
  return sys.records();
}

TEST_F(ServingAdmission, ShortestFirstAdmitsTheShortWaiterFirst) {
  const auto r = three_requests(Admission::shortest_first);
  // At 3 ms r2 (12 tokens of context) comes before the waiting r1 (150) and fits
  // (115,000 B): its 10,000 B leave at 4.1 ms, in place at 4.12 ms. r0's KV is in place
  // at 3.11 ms, its steps 3.11 -> 4.11 -> 5.11 ms; r2 joins at 5.11 ms, one step: 6.11 ms.
  // At 5.11 ms r0 frees its room and r1 takes 150,000 B (162,000 B in all): KV in place
  // at 5.22 ms; it joins when r2's step ends, 6.11 ms; 49 steps: 55.11 ms.
  EXPECT_NEAR(ms(r[2].kv_start_s), 4.1, 1e-9);
  EXPECT_NEAR(ms(r[2].kv_end_s), 4.12, 1e-9);
  EXPECT_NEAR(ms(r[2].decode_start_s), 5.11, 1e-9);
  EXPECT_NEAR(ms(r[2].last_token_s), 6.11, 1e-9);
  EXPECT_NEAR(ms(r[0].last_token_s), 5.11, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_start_s), 5.11, 1e-9);
  EXPECT_NEAR(ms(r[1].decode_start_s), 6.11, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 55.11, 1e-9);
}

TEST_F(ServingAdmission, FcfsKeepsTheShortWaiterBehind) {
  const auto r = three_requests(Admission::fcfs);
  // r2 waits behind r1 although it fits at 3 ms: both are admitted when r0 ends, 5.11 ms.
  EXPECT_NEAR(ms(r[1].kv_start_s), 5.11, 1e-9);
  EXPECT_NEAR(ms(r[2].kv_start_s), 5.11, 1e-9);
  EXPECT_GE(r[2].decode_start_s, r[1].decode_start_s);
}

TEST_F(ServingAdmission, PriorityAdmitsTheLowestValueFirst) {
  // r2 has priority -1, the others 0: r2 comes before the waiting r1 as under
  // shortest_first, with the same times.
  const auto r = three_requests(Admission::priority, {0, 0, -1});
  EXPECT_NEAR(ms(r[2].kv_start_s), 4.1, 1e-9);
  EXPECT_NEAR(ms(r[2].last_token_s), 6.11, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 55.11, 1e-9);
}

// Output lengths unknown: r0 (0, 100 + 6), r1 (0.5 ms, 50 + 4); 159,000 B of capacity.
// A request reserves the KV of prompt + first token when admitted and, before each step,
// that of the token the step adds (prompt + tokens after the step).
//   Batch 1: r0, 100 tokens, 0 -> 2 ms; batch 2: r1, 50 tokens, 2 -> 3.5 ms.
//   r0 reserves 101,000 B at 0; r1 51,000 B at 2 ms (152,000 B).
//   r0's KV in place at 2.11 ms; steps from 2.11 ms, 1 ms each: r0 grows to 102,000 and
//   103,000 B (154,000 B in all), its tokens 2 and 3 at 3.11 and 4.11 ms.
//   r1's KV (50,000 B) in place at 3.5 + 0.06 = 3.56 ms; it joins at 4.11 ms.
//   4.11 ms: r0 -> 104,000 B, r1 -> 52,000 B (156,000 B); tokens r0 4, r1 2 at 5.11 ms.
//   5.11 ms: r0 -> 105,000 B, r1 -> 53,000 B (158,000 B); r0 5, r1 3 at 6.11 ms.
//   6.11 ms: r0 -> 106,000 B (159,000 B); r1 -> 54,000 B would make 160,000 B: r1, last
//   in arrival order, is preempted, its 53,000 B freed. r0's last token at 7.11 ms.
void run_preemption(Preemption policy, std::vector<RequestRecord>& out, nlohmann::json& summary,
                    std::string* tokens = nullptr) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.output_length = OutputLength::unknown;
  c.preemption = policy;
  c.swap_bandwidth_Bps = 1e9;
  c.decode_kv_capacity_bytes = 159'000;
  std::vector<workloads::Request> reqs{req(0, 100, 6), req(0.5e-3, 50, 4)};
  reqs[1].id = 1;
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  sys.record_token_times(tokens != nullptr);
  sc_core::sc_start();
  out = sys.records();
  summarize(sys, c, summary);
  if (tokens) *tokens = tokens_csv(sys);
}

TEST_F(ServingAdmission, PreemptionByRecompute) {
  std::vector<RequestRecord> r;
  nlohmann::json s;
  run_preemption(Preemption::recompute, r, s);
  // r1 had 3 tokens: its KV covered 50 + 2 tokens. The prefill side recomputes those 52
  // tokens, 6.11 -> 6.11 + 1 + 0.52 = 7.63 ms; r1 is admitted again at 6.11 ms with
  // 50 + 3 tokens, 53,000 B (159,000 B in all). The 52,000 B leave at 7.63 ms, in place at
  // 7.63 + 0.062 = 7.692 ms; r0 has ended (7.11 ms); one step, r1 -> 54,000 B: last token
  // at 8.692 ms.
  EXPECT_NEAR(ms(r[0].last_token_s), 7.11, 1e-9);
  EXPECT_EQ(r[0].preemptions, 0u);
  EXPECT_EQ(r[1].preemptions, 1u);
  EXPECT_EQ(r[1].swaps, 0u);
  EXPECT_EQ(r[1].preempt_tokens_recomputed, 52u);
  EXPECT_EQ(r[1].tokens_out, 4u);
  EXPECT_EQ(r[1].kv_bytes, 50'000u + 52'000u);
  EXPECT_NEAR(ms(r[1].first_token_s), 3.5, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_end_s), 7.692, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 8.692, 1e-9);
  EXPECT_EQ(s["preemption"]["preemptions"], 1);
  EXPECT_EQ(s["preemption"]["requests_preempted"], 1);
  EXPECT_EQ(s["preemption"]["by_recompute"], 1);
  EXPECT_EQ(s["preemption"]["tokens_recomputed"], 52);
  EXPECT_EQ(s["preemption"]["swap_bytes"], 0);
  // Inter-token gaps: r0 at 2 (first), 3.11, 4.11, 5.11, 6.11, 7.11 ms: 1.11, 1, 1, 1, 1;
  // r1 at 3.5 (first), 5.11, 6.11, 8.692 ms: 1.61, 1, 2.582. Sorted: 1, 1, 1, 1, 1,
  // 1.11, 1.61, 2.582 ms. Nearest rank of 8: p50 the 4th (1 ms), p90 and p99 the 8th.
  EXPECT_EQ(s["requests"]["itl_s"]["count"], 8);
  EXPECT_NEAR(ms(s["requests"]["itl_s"]["p50"].get<double>()), 1.0, 1e-9);
  EXPECT_NEAR(ms(s["requests"]["itl_s"]["p90"].get<double>()), 2.582, 1e-9);
  EXPECT_NEAR(ms(s["requests"]["itl_s"]["p99"].get<double>()), 2.582, 1e-9);
  EXPECT_NEAR(ms(s["requests"]["itl_s"]["mean"].get<double>()), (1.11 + 4 + 1.61 + 1 + 2.582) / 8, 1e-9);
}

TEST_F(ServingAdmission, PreemptionBySwap) {
  std::vector<RequestRecord> r;
  nlohmann::json s;
  run_preemption(Preemption::swap, r, s);
  // At 6.11 ms r1's 52,000 B go to host memory at 1 GB/s: 52 us before the step, which
  // runs 6.11 -> 7.162 ms (r0's last token). r1 is admitted again at once with
  // 53,000 B (159,000 B in all); its KV comes back (52 us) before the next step:
  // 7.162 -> 8.214 ms, its last token.
  EXPECT_NEAR(ms(r[0].last_token_s), 7.162, 1e-9);
  EXPECT_EQ(r[1].preemptions, 1u);
  EXPECT_EQ(r[1].swaps, 1u);
  EXPECT_EQ(r[1].preempt_tokens_recomputed, 0u);
  EXPECT_EQ(r[1].swap_bytes, 104'000u);
  EXPECT_EQ(r[1].kv_bytes, 50'000u);  // nothing crosses from the prefill side again
  EXPECT_NEAR(ms(r[1].last_token_s), 8.214, 1e-9);
  EXPECT_EQ(s["preemption"]["by_swap"], 1);
  EXPECT_EQ(s["preemption"]["swap_bytes"], 104000);
}

TEST_F(ServingAdmission, OracleNeverPreempts) {
  // The same two requests with output lengths known: r0 reserves 106,000 B at 0; r1's
  // 54,000 B would make 160,000 B, so r1 waits until r0 ends. r0's steps from 2.11 ms:
  // last token at 7.11 ms. r1 (batch end 3.5 ms) is admitted at 7.11 ms; its 50,000 B in
  // place at 7.17 ms; 3 steps: 10.17 ms.
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.decode_kv_capacity_bytes = 159'000;
  ServingSystem sys("serving", c, {req(0, 100, 6), req(0.5e-3, 50, 4)}, {&prefill}, {&decode}, &path);
  run_to_end();
  EXPECT_NEAR(ms(sys.records()[0].last_token_s), 7.11, 1e-9);
  EXPECT_NEAR(ms(sys.records()[1].kv_start_s), 7.11, 1e-9);
  EXPECT_NEAR(ms(sys.records()[1].last_token_s), 10.17, 1e-9);
  EXPECT_EQ(sys.preemptions(), 0u);
}

TEST_F(ServingAdmission, ColocatedPreemptionByRecompute) {
  // Colocated, one machine, output lengths unknown, 205,000 B: r0 and r1 (0, 100 + 3
  // each) prefill together, 0 -> 3 ms, and reserve 101,000 B each (202,000 B). Step 1 at
  // 3 ms: r0 -> 102,000 B (203,000 B), r1 -> 102,000 B (204,000 B): both fit; tokens 2 at
  // 4 ms. Step 2: r0 -> 103,000 B (205,000 B); r1 -> 103,000 B would make 206,000 B: r1
  // is preempted, and r0's step runs alone, 4 -> 5 ms (its last token). The machine
  // then prefills r1's prompt and first token again, 101 tokens: 5 -> 5 + 1 + 1.01 =
  // 7.01 ms; r1 is admitted again with 102,000 B, grows to 103,000 B and runs one step,
  // 7.01 -> 8.01 ms (its last token).
  LinearPrefill prefill(1);
  FixedDecode decode;
  ServingConfig c = base_config();
  c.placement = Placement::colocated;
  c.output_length = OutputLength::unknown;
  c.decode_kv_capacity_bytes = 205'000;
  ServingSystem sys("serving", c, {req(0, 100, 3), req(0, 100, 3)}, {&prefill}, {&decode}, nullptr);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_EQ(r[1].preemptions, 1u);
  EXPECT_EQ(r[1].preempt_tokens_recomputed, 101u);
  EXPECT_NEAR(ms(r[0].last_token_s), 5.0, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 8.01, 1e-9);
}

TEST_F(ServingAdmission, TokenTimes) {
  std::vector<RequestRecord> r;
  nlohmann::json s;
  std::string csv;
  run_preemption(Preemption::recompute, r, s, &csv);
  // Every token of each request, its first (from the prefill) as token 0; the times of
  // PreemptionByRecompute.
  EXPECT_EQ(csv,
            "request,token,time_s\n"
            "0,0,0.002\n0,1,0.00311\n0,2,0.00411\n0,3,0.00511\n0,4,0.00611\n0,5,0.00711\n"
            "1,0,0.0035\n1,1,0.00511\n1,2,0.00611\n1,3,0.008692\n");
}

}  // namespace
}  // namespace wse::serving
