// Multi-turn sessions, closed loop (docs/serving.md, "Sessions"), with the machines of
// serving_doubles.h: prefill 1 ms + 10 us per token; every decode step 1 ms; one link of
// 1 GB/s and 10 us latency; 1000 B of KV per token, sent after the prefill. Every time
// below is derived by hand.
#define SC_INCLUDE_DYNAMIC_PROCESSES
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

ServingConfig base_config() {
  ServingConfig c = doubles::linear_config(1, KvSend::after_prefill);
  c.prefill_max_batch_tokens = 4096;  // a 1,210-token prompt in one batch
  return c;
}

class ServingSessions : public testing::SystemCTest {};

using doubles::ms;

std::vector<workloads::Request> session(std::uint32_t shared, std::vector<workloads::SessionTurn> turns,
                                        double start_s = 0) {
  std::vector<workloads::Request> out;
  EXPECT_TRUE(workloads::append_session(out, 0, start_s, shared, 7, turns));
  return out;
}

// Turn 0: 100 new tokens, 3 out. Turn 1: 50 new tokens, 2 out, after 2 ms of thought;
// its prompt is the whole context, 100 + 3 + 50 = 153 tokens. Without KV retention the
// decode side keeps nothing between turns: turn 1's whole KV crosses.
//   Turn 0 arrives at 0: prefill 1 + 1 = 2 ms (first token); its 100,000 B of KV take
//   10 us + 100 us: in place at 2.11 ms; two steps: last token at 4.11 ms.
//   Turn 1 arrives 2 ms later, 6.11 ms: prefill 1 + 1.53 = 2.53 ms, first token at
//   8.64 ms; 153,000 B: 10 + 153 us, in place at 8.803 ms; one step: 9.803 ms.
TEST_F(ServingSessions, ALaterTurnArrivesItsThinkTimeAfterThePreviousAnswer) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  const auto reqs = session(0, {{100, 3, 0}, {50, 2, 2e-3}});
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].input_tokens, 153u);
  EXPECT_EQ(reqs[1].new_tokens, 50u);
  EXPECT_EQ(reqs[1].previous, 0);
  ServingConfig c = base_config();
  c.kv_retention = false;
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_NEAR(ms(r[0].first_token_s), 2.0, 1e-9);
  EXPECT_NEAR(ms(r[0].last_token_s), 4.11, 1e-9);
  EXPECT_NEAR(ms(r[1].arrival_s), 6.11, 1e-9);
  EXPECT_NEAR(ms(r[1].first_token_s), 8.64, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_end_s), 8.803, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 9.803, 1e-9);
  EXPECT_EQ(r[1].kv_bytes, 153'000u);
  nlohmann::json s;
  summarize(sys, c, s);
  EXPECT_EQ(s["kv_transfer"]["bytes_saved"], 0);
  EXPECT_EQ(s["kv_transfer"]["retention"]["misses"], 0);
  EXPECT_EQ(s["sessions"]["sessions"], 1);
  EXPECT_EQ(s["sessions"]["completed"], 1);
  EXPECT_EQ(s["sessions"]["turns_completed"], 2);
  EXPECT_EQ(s["sessions"]["new_prompt_tokens"], 150);
  EXPECT_NEAR(ms(s["sessions"]["length_s"]["mean"].get<double>()), 9.803, 1e-9);
}

// The same session with KV retention (the default): after turn 0 the decode system keeps
// the KV of its prompt and every answer token but the last (which no step fed): 100 + 3
// - 1 = 102 tokens, 102,000 B. Turn 1 (153 tokens) is admitted there and sends only the
// rest: 153 - 102 = 51 tokens (its 50 new ones and turn 0's last answer token), 51,000 B.
//   Turn 0 as above: last token at 4.11 ms. Turn 1 arrives at 6.11 ms, first token at
//   8.64 ms (the prefill side computes as before); 51,000 B: 10 + 51 us, in place at
//   8.701 ms; one step: last token at 9.701 ms (0.102 ms sooner).
TEST_F(ServingSessions, ASecondTurnSendsOnlyTheKvTheDecodeSideLacks) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  const auto reqs = session(0, {{100, 3, 0}, {50, 2, 2e-3}});
  const ServingConfig c = base_config();
  ASSERT_TRUE(c.kv_retention);
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_NEAR(ms(r[0].last_token_s), 4.11, 1e-9);
  EXPECT_EQ(r[0].kv_bytes, 100'000u);
  EXPECT_EQ(r[0].kv_bytes_saved, 0u);
  EXPECT_NEAR(ms(r[1].arrival_s), 6.11, 1e-9);
  EXPECT_NEAR(ms(r[1].first_token_s), 8.64, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_start_s), 8.64, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_end_s), 8.701, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 9.701, 1e-9);
  EXPECT_EQ(r[1].kv_retained_tokens, 102u);
  EXPECT_EQ(r[1].kv_bytes, 51'000u);
  EXPECT_EQ(r[1].kv_bytes_saved, 102'000u);
  nlohmann::json s;
  summarize(sys, c, s);
  EXPECT_EQ(s["kv_transfer"]["bytes"], 151'000);
  EXPECT_EQ(s["kv_transfer"]["bytes_saved"], 102'000);
  EXPECT_EQ(s["kv_transfer"]["retention"]["hits"], 1);
  EXPECT_EQ(s["kv_transfer"]["retention"]["misses"], 0);
  EXPECT_EQ(s["kv_transfer"]["retention"]["evictions"], 0);
}

// Eviction under capacity pressure, least recently used first. 400,000 B of decode KV
// room; sessions A (0), B (1), C (2), one request at a time:
//   A0 (100 in, 2 out) at 0: prefill 2 ms, KV in place at 2.11, one step to 3.11; A's
//     101 tokens stay: 101,000 B retained.
//   B0 (100 in, 2 out) at 4 ms: the same 2.11 ms later, ends at 7.11; retained [B, A]:
//     202,000 B.
//   C0 (200 in, 2 out) at 8 ms reserves 202,000 B: 202,000 + 202,000 > 400,000, so the
//     least recently used, A, is evicted (no host tier: dropped). Prefill 3 ms to 11;
//     200,000 B in place at 11.21; ends at 12.21; retained [C 201,000, B 101,000].
//   B1 (112 in: 100 + 2 + 10 new; 2 out) at 7.11 + 6 = 13.11 ms: a hit; reserves
//     114,000 B (B's 101,000 among them; 114,000 + 201,000 fits). Prefill 1 + 1.12 ms
//     to 15.23; it sends 112 - 101 = 11 tokens, 11,000 B: in place at 15.251; ends at
//     16.251; retained [B 113,000, C 201,000].
//   A1 (112 in) at 3.11 + 20 = 23.11 ms: a miss (A was evicted); 114,000 + 314,000 >
//     400,000 evicts the least recently used, C. Prefill to 25.23; its whole 112,000 B
//     in place at 25.352; ends at 26.352.
TEST_F(ServingSessions, RetainedKvIsEvictedLeastRecentlyUsedFirst) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.decode_kv_capacity_bytes = 400'000;
  std::vector<workloads::Request> reqs;
  ASSERT_TRUE(workloads::append_session(reqs, 0, 0, 0, 0, {{100, 2, 0}, {10, 2, 20e-3}}));
  ASSERT_TRUE(workloads::append_session(reqs, 1, 4e-3, 0, 1, {{100, 2, 0}, {10, 2, 6e-3}}));
  ASSERT_TRUE(workloads::append_session(reqs, 2, 8e-3, 0, 2, {{200, 2, 0}}));
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();  // A0, A1, B0, B1, C0
  ASSERT_EQ(r.size(), 5u);
  EXPECT_NEAR(ms(r[2].last_token_s), 7.11, 1e-9);
  EXPECT_NEAR(ms(r[4].kv_end_s), 11.21, 1e-9);
  EXPECT_NEAR(ms(r[4].last_token_s), 12.21, 1e-9);
  EXPECT_NEAR(ms(r[3].arrival_s), 13.11, 1e-9);
  EXPECT_EQ(r[3].kv_retained_tokens, 101u);
  EXPECT_EQ(r[3].kv_bytes, 11'000u);
  EXPECT_NEAR(ms(r[3].kv_end_s), 15.251, 1e-9);
  EXPECT_NEAR(ms(r[3].last_token_s), 16.251, 1e-9);
  EXPECT_NEAR(ms(r[1].arrival_s), 23.11, 1e-9);
  EXPECT_EQ(r[1].kv_retained_tokens, 0u);
  EXPECT_EQ(r[1].kv_bytes, 112'000u);
  EXPECT_NEAR(ms(r[1].kv_end_s), 25.352, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 26.352, 1e-9);
  EXPECT_EQ(sys.evicted_sessions(), (std::vector<std::int64_t>{0, 2}));
  const RetentionCounts& k = sys.retention();
  EXPECT_EQ(k.hits, 1u);
  EXPECT_EQ(k.misses, 1u);
  EXPECT_EQ(k.evictions, 2u);
  EXPECT_EQ(k.evicted_to_host, 0u);
  EXPECT_EQ(k.bytes_saved, 101'000u);
  nlohmann::json s;
  summarize(sys, c, s);
  EXPECT_EQ(s["kv_transfer"]["bytes"], 523'000);  // 100,000 + 100,000 + 200,000 + 11,000 + 112,000
}

// Session affinity over two decode systems (each 1 GB of room).
//   A0 (session 0: 100 in, 2 out) at 0: both systems empty, system 0 (the first of
//     the least loaded); KV in place at 2.11, one step to 3.11; A's 101 tokens stay on 0.
//   X0 (session 1: 100 in, 50 out) at 4 ms: both empty again, system 0; prefill to 6,
//     KV in place at 6.11, steps every 1 ms from 6.11 to 55.11.
//   A1 (112 in, 2 out) at 3.11 + 5 = 8.11 ms: system 0 holds X's 150,000 B, system 1
//     nothing. With retention it goes to system 0, which holds A's KV: prefill to
//     10.23, 11,000 B in place at 10.251; it joins the step that starts at 11.11 and
//     ends at 12.11. Without, to the least loaded, system 1: its 112,000 B in place at
//     10.352, one step to 11.352.
std::vector<workloads::Request> affinity_sessions() {
  std::vector<workloads::Request> reqs;
  EXPECT_TRUE(workloads::append_session(reqs, 0, 0, 0, 0, {{100, 2, 0}, {10, 2, 5e-3}}));
  EXPECT_TRUE(workloads::append_session(reqs, 1, 4e-3, 0, 1, {{100, 50, 0}}));
  return reqs;  // A0, A1, X0
}

TEST_F(ServingSessions, ALaterTurnGoesToTheDecodeSystemHoldingItsSession) {
  LinearPrefill prefill(1);
  FixedDecode d0, d1;
  LinkPath path;
  ServingSystem sys("serving", base_config(), affinity_sessions(), {&prefill}, {&d0, &d1}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_EQ(r[0].decode_system, 0);
  EXPECT_EQ(r[2].decode_system, 0);
  EXPECT_NEAR(ms(r[2].last_token_s), 55.11, 1e-9);
  EXPECT_NEAR(ms(r[1].arrival_s), 8.11, 1e-9);
  EXPECT_EQ(r[1].decode_system, 0);
  EXPECT_EQ(r[1].kv_bytes, 11'000u);
  EXPECT_NEAR(ms(r[1].kv_end_s), 10.251, 1e-9);
  EXPECT_NEAR(ms(r[1].decode_start_s), 11.11, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 12.11, 1e-9);
  EXPECT_EQ(sys.retention().hits, 1u);
}

TEST_F(ServingSessions, WithoutRetentionALaterTurnGoesToTheLeastLoadedDecodeSystem) {
  LinearPrefill prefill(1);
  FixedDecode d0, d1;
  LinkPath path;
  ServingConfig c = base_config();
  c.kv_retention = false;
  ServingSystem sys("serving", c, affinity_sessions(), {&prefill}, {&d0, &d1}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_EQ(r[1].decode_system, 1);
  EXPECT_EQ(r[1].kv_bytes, 112'000u);
  EXPECT_NEAR(ms(r[1].kv_end_s), 10.352, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 11.352, 1e-9);
}

// Output length unknown: a running request's growing KV evicts retained KV before any
// request is preempted. 250,000 B of room. A0 (100 in, 2 out) ends at 3.11 ms and
// leaves 101,000 B retained. B0 (100 in, 50 out) at 4 ms reserves its 101 tokens
// (101,000 B: with A's, 202,000) and one more token's before each step; its 49th step
// (at 54.11 ms) needs 150,000 B, and 150,000 + 101,000 > 250,000: A's KV is evicted,
// nothing is preempted, and B's last token comes at 6.11 + 49 = 55.11 ms.
TEST_F(ServingSessions, GrowingKvEvictsRetainedKvBeforePreempting) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.decode_kv_capacity_bytes = 250'000;
  c.output_length = OutputLength::unknown;
  std::vector<workloads::Request> reqs;
  ASSERT_TRUE(workloads::append_session(reqs, 0, 0, 0, 0, {{100, 2, 0}}));
  ASSERT_TRUE(workloads::append_session(reqs, 1, 4e-3, 0, 1, {{100, 50, 0}}));
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_NEAR(ms(r[0].last_token_s), 3.11, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 55.11, 1e-9);
  EXPECT_EQ(sys.preemptions(), 0u);
  EXPECT_EQ(sys.evicted_sessions(), (std::vector<std::int64_t>{0}));
}

// A decode system that fails loses the KV it retained: A0 ends at 3.11 ms on the only
// system, which is down from 4 to 5 ms; A1 (112 in) at 8.11 ms is a miss and sends all
// its 112,000 B: prefill to 10.23, in place at 10.352, last token at 11.352.
TEST_F(ServingSessions, AFailedDecodeSystemLosesItsRetainedKv) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 4e-3, 5e-3}};
  ServingSystem sys("serving", c, session(0, {{100, 2, 0}, {10, 2, 5e-3}}), {&prefill}, {&decode}, &path,
                    nullptr, outages);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_EQ(sys.decode_failures(), 1u);
  EXPECT_EQ(r[1].kv_retained_tokens, 0u);
  EXPECT_EQ(r[1].kv_bytes, 112'000u);
  EXPECT_NEAR(ms(r[1].kv_end_s), 10.352, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 11.352, 1e-9);
  EXPECT_EQ(sys.retention().misses, 1u);
  EXPECT_EQ(sys.retention().evictions, 0u);
}

// The host tier: 250,000 B of decode KV room, a host DRAM tier of 1 MB at 50 MB/s each
// way (1 us per 50 B).
//   A0 (200 in, 2 out) at 0: prefill 3 ms, 200,000 B in place at 3.21, ends at 4.21;
//     201,000 B retained.
//   B0 (50 in, 2 out) at 5 ms reserves 52,000 B: with A's 201,000 that is 253,000 >
//     250,000, so A goes to the host tier: 201,000 B / 50 MB/s = 4.02 ms, out at 9.02.
//     B's prefill ends at 6.5, its 50,000 B are in place at 6.56, but the room is free
//     only at 9.02: it joins then and ends at 10.02; its 51,000 B retained.
//   A1 (212 in: 200 + 2 + 10 new; 2 out) at 4.21 + 10 = 14.21 ms: a host hit. It
//     reserves 214,000 B; with B's 51,000 that is over 250,000, so B goes to the host
//     (1.02 ms, out at 15.23). A's 201,000 B reload: 4.02 ms, 14.21 to 18.23. Prefill
//     1 + 2.12 ms to 17.33; it sends 212 - 201 = 11 tokens, 11,000 B, in place at
//     17.351; it joins when the reload ends, 18.23, and ends at 19.23.
TEST_F(ServingSessions, EvictedKvGoesToTheHostTierAndReloadsAtItsBandwidth) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.decode_kv_capacity_bytes = 250'000;
  c.host_tier = KvTier{1'000'000, 50e6};
  std::vector<workloads::Request> reqs;
  ASSERT_TRUE(workloads::append_session(reqs, 0, 0, 0, 0, {{200, 2, 0}, {10, 2, 10e-3}}));
  ASSERT_TRUE(workloads::append_session(reqs, 1, 5e-3, 0, 1, {{50, 2, 0}}));
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();  // A0, A1, B0
  ASSERT_EQ(r.size(), 3u);
  EXPECT_NEAR(ms(r[0].last_token_s), 4.21, 1e-9);
  EXPECT_NEAR(ms(r[2].kv_end_s), 6.56, 1e-9);
  EXPECT_NEAR(ms(r[2].decode_start_s), 9.02, 1e-9);
  EXPECT_NEAR(ms(r[2].last_token_s), 10.02, 1e-9);
  EXPECT_NEAR(ms(r[1].arrival_s), 14.21, 1e-9);
  EXPECT_EQ(r[1].kv_retained_tokens, 201u);
  EXPECT_EQ(r[1].kv_bytes, 11'000u);
  EXPECT_EQ(r[1].kv_bytes_saved, 201'000u);
  EXPECT_NEAR(ms(r[1].kv_reload_s), 4.02, 1e-9);
  EXPECT_NEAR(ms(r[1].kv_end_s), 17.351, 1e-9);
  EXPECT_NEAR(ms(r[1].decode_start_s), 18.23, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 19.23, 1e-9);
  EXPECT_EQ(sys.evicted_sessions(), (std::vector<std::int64_t>{0, 1}));
  const RetentionCounts& k = sys.retention();
  EXPECT_EQ(k.hits, 0u);
  EXPECT_EQ(k.host_hits, 1u);
  EXPECT_EQ(k.misses, 0u);
  EXPECT_EQ(k.evictions, 2u);
  EXPECT_EQ(k.evicted_to_host, 2u);
  EXPECT_EQ(k.host_write_bytes, 252'000u);
  EXPECT_EQ(k.host_reload_bytes, 201'000u);
  nlohmann::json s;
  summarize(sys, c, s);
  EXPECT_EQ(s["kv_transfer"]["retention"]["host_reloads"], 1);
  EXPECT_EQ(s["kv_transfer"]["bytes_saved"], 201'000);
}

// Colocated (one machine prefills and decodes; no KV crosses): the machine keeps turn
// 0's 102 tokens of KV, and turn 1's prefill computes only the 153 - 102 = 51 tokens it
// lacks, starting at position 102.
//   Turn 0 at 0: prefill 2 ms, first token at 2; two steps: last token at 4 ms.
//   Turn 1 at 4 + 2 = 6 ms: prefill 1 + 0.51 = 1.51 ms, first token at 7.51 (without
//   retention its 153 tokens take 2.53 ms, to 8.53); one step: last token at 8.51.
struct ColocatedRun {
  LinearPrefill prefill{1};
  FixedDecode decode;
  std::unique_ptr<ServingSystem> sys;
  nlohmann::json summary;
};

void run_colocated(ColocatedRun& run, bool retention) {
  ServingConfig c = base_config();
  c.placement = Placement::colocated;
  c.kv_retention = retention;
  run.sys = std::make_unique<ServingSystem>("serving", c, session(0, {{100, 3, 0}, {50, 2, 2e-3}}),
                                            std::vector<PrefillBackend*>{&run.prefill},
                                            std::vector<DecodeBackend*>{&run.decode}, nullptr);
}

TEST_F(ServingSessions, ColocatedTheSecondTurnPrefillsOnlyWhatTheMachineLacks) {
  ColocatedRun run;
  run_colocated(run, true);
  run_to_end();
  const auto& r = run.sys->records();
  EXPECT_NEAR(ms(r[0].last_token_s), 4.0, 1e-9);
  EXPECT_NEAR(ms(r[1].arrival_s), 6.0, 1e-9);
  ASSERT_EQ(run.prefill.batches.size(), 2u);
  EXPECT_EQ(run.prefill.batches[1][0].tokens, 51u);
  EXPECT_EQ(run.prefill.batches[1][0].context_offset, 102u);
  EXPECT_EQ(r[1].kv_retained_tokens, 102u);
  EXPECT_NEAR(ms(r[1].first_token_s), 7.51, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 8.51, 1e-9);
  ServingConfig c = base_config();
  c.placement = Placement::colocated;
  nlohmann::json s;
  summarize(*run.sys, c, s);
  EXPECT_EQ(s["sessions"]["kv_retention"]["hits"], 1);
  EXPECT_EQ(s["sessions"]["kv_retention"]["prefill_tokens_skipped"], 102);
}

TEST_F(ServingSessions, ColocatedWithoutRetentionTheSecondTurnPrefillsItsWholePrompt) {
  ColocatedRun run;
  run_colocated(run, false);
  run_to_end();
  const auto& r = run.sys->records();
  ASSERT_EQ(run.prefill.batches.size(), 2u);
  EXPECT_EQ(run.prefill.batches[1][0].tokens, 153u);
  EXPECT_EQ(r[1].kv_retained_tokens, 0u);
  EXPECT_NEAR(ms(r[1].first_token_s), 8.53, 1e-9);
  EXPECT_NEAR(ms(r[1].last_token_s), 9.53, 1e-9);
}

// Turn 0: 1100 tokens (two full 512-token blocks and 76 more), 10 out; turn 1: 100
// new tokens after 1 ms: 1210 tokens, whose first two blocks are turn 0's. With the
// prefill instance's prefix cache on, turn 1 computes 1210 - 1024 = 186 tokens.
//   Turn 0: prefill 1 + 11 = 12 ms; 1,100,000 B: 10 + 1100 us, in place at 13.11 ms;
//   9 steps: last token at 22.11 ms. Turn 1 arrives at 23.11 ms: prefill 1 + 1.86 ms,
//   first token at 25.97 ms.
TEST_F(ServingSessions, ALaterTurnReusesTheBlocksOfItsPreviousPromptFromThePrefixCache) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.prefix_reuse = true;
  c.prefix_cache_blocks = 64;
  const auto reqs = session(0, {{1100, 10, 0}, {100, 10, 1e-3}});
  ASSERT_EQ(reqs[0].hash_ids.size(), 3u);
  ASSERT_EQ(reqs[1].hash_ids.size(), 3u);
  EXPECT_EQ(reqs[1].hash_ids[0], reqs[0].hash_ids[0]);
  EXPECT_EQ(reqs[1].hash_ids[1], reqs[0].hash_ids[1]);
  EXPECT_NE(reqs[1].hash_ids[2], reqs[0].hash_ids[2]);  // partial blocks of different fill
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path);
  run_to_end();
  const auto& r = sys.records();
  EXPECT_EQ(r[0].prefix_hit_tokens, 0u);
  EXPECT_EQ(r[1].prefix_hit_tokens, 1024u);
  EXPECT_NEAR(ms(r[0].last_token_s), 22.11, 1e-9);
  EXPECT_NEAR(ms(r[1].arrival_s), 23.11, 1e-9);
  EXPECT_NEAR(ms(r[1].first_token_s), 25.97, 1e-9);
}

// A session's shared prefix is named by its key: two sessions with the same key share
// the prefix's full blocks, and only those.
TEST_F(ServingSessions, SessionsWithTheSameSharedPrefixShareItsBlocks) {
  std::vector<workloads::Request> a, b;
  ASSERT_TRUE(workloads::append_session(a, 0, 0, 1500, 3, {{200, 1, 0}}));
  ASSERT_TRUE(workloads::append_session(b, 1, 0, 1500, 3, {{200, 1, 0}}));
  // 1700 tokens: blocks 0 and 1 inside the prefix (shared), block 2 (1024..1536)
  // crosses its end (the session's own), block 3 partial.
  ASSERT_EQ(a[0].hash_ids.size(), 4u);
  EXPECT_EQ(a[0].hash_ids[0], b[0].hash_ids[0]);
  EXPECT_EQ(a[0].hash_ids[1], b[0].hash_ids[1]);
  EXPECT_NE(a[0].hash_ids[2], b[0].hash_ids[2]);
  EXPECT_NE(a[0].hash_ids[3], b[0].hash_ids[3]);
}

// A turn whose previous turn is rejected never arrives: it ends rejected with the reason,
// and so does the rest of its session. The only decode system is down from 0 to the
// end, and serving.reject_after is 1 ms.
TEST_F(ServingSessions, TheTurnsAfterARejectedTurnAreRejected) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.reject_after_s = 1e-3;
  const std::vector<DecodeOutage> outages = {DecodeOutage{0, 0.0, 1.0}};
  const auto reqs = session(0, {{100, 3, 0}, {50, 2, 1e-3}, {50, 2, 1e-3}});
  ServingSystem sys("serving", c, reqs, {&prefill}, {&decode}, &path, nullptr, outages);
  run_to_end();
  sys.close_run();
  const auto& r = sys.records();
  ASSERT_TRUE(r[0].rejected());
  EXPECT_TRUE(r[1].rejected());
  EXPECT_TRUE(r[2].rejected());
  EXPECT_EQ(r[1].reason, "an earlier turn of its session was rejected");
  EXPECT_LT(r[1].arrival_s, 0);  // never arrived
  EXPECT_EQ(sys.rejected(), 3u);
}

}  // namespace
}  // namespace wse::serving
