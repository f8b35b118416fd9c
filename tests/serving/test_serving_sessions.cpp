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
// its prompt is the whole context, 100 + 3 + 50 = 153 tokens.
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
  ServingSystem sys("serving", base_config(), reqs, {&prefill}, {&decode}, &path);
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
  summarize(sys, base_config(), s);
  EXPECT_EQ(s["sessions"]["sessions"], 1);
  EXPECT_EQ(s["sessions"]["completed"], 1);
  EXPECT_EQ(s["sessions"]["turns_completed"], 2);
  EXPECT_EQ(s["sessions"]["new_prompt_tokens"], 150);
  EXPECT_NEAR(ms(s["sessions"]["length_s"]["mean"].get<double>()), 9.803, 1e-9);
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
