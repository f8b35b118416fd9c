// The serving system with machines whose timing is given by simple rules (test
// doubles), so that every time below can be derived by hand: batching, chunked
// prefill, layer-wise versus after-prefill KV sending over a shared link, KV-capacity
// admission, colocated machines, and prefix reuse.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <filesystem>
#include <fstream>
#include <memory>

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

ServingConfig base_config() { return doubles::linear_config(2); }

class Serving : public testing::SystemCTest {};

using doubles::ms;

TEST_F(Serving, LayerwiseKvOverlapsThePrefill) {
  LinearPrefill prefill(2);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.kv_send = KvSend::layerwise;
  ServingSystem sys("serving", c, {req(0, 100, 3)}, {&prefill}, {&decode}, &path);
  run_to_end();
  const RequestRecord& r = sys.records()[0];
  // Prefill of 100 tokens: 1 ms + 100 x 10 us = 2 ms; layer 0 done at 1 ms, layer 1 at 2 ms.
  EXPECT_DOUBLE_EQ(ms(r.first_token_s), 2.0);
  // KV 100 x 1000 B = 100,000 B, half per layer. Layer 0 leaves at 1 ms:
  // 10 us + 50,000 B / 1 GB/s = 60 us -> 1.06 ms. Layer 1 leaves at 2 ms -> 2.06 ms.
  EXPECT_NEAR(ms(r.kv_start_s), 1.0, 1e-9);
  EXPECT_NEAR(ms(r.kv_end_s), 2.06, 1e-9);
  // Decode from 2.06 ms: token 2 at 3.06 ms, token 3 at 4.06 ms.
  EXPECT_NEAR(ms(r.decode_start_s), 2.06, 1e-9);
  EXPECT_NEAR(ms(r.last_token_s), 4.06, 1e-9);
  EXPECT_EQ(r.tokens_out, 3u);
  EXPECT_EQ(r.kv_bytes, 100000u);
  EXPECT_EQ(sys.completed(), 1u);

  // The transfer [1, 2.06] ms overlaps the prefill [0, 2] ms for 1 of its 1.06 ms.
  EXPECT_NEAR(hidden_share(r), 1.0 / 1.06, 1e-9);
  c.ttft_slo_s = 2.5e-3;  // met (2 ms)
  c.tpot_slo_s = 1e-3;    // missed: (4.06 - 2) / 2 = 1.03 ms per token
  nlohmann::json s;
  summarize(sys, c, s);
  EXPECT_EQ(s["requests"]["completed"], 1);
  EXPECT_NEAR(s["requests"]["ttft_s"]["p50"].get<double>(), 2e-3, 1e-12);
  EXPECT_NEAR(s["requests"]["tpot_s"]["mean"].get<double>(), 1.03e-3, 1e-12);
  EXPECT_NEAR(s["requests"]["e2e_s"]["p99"].get<double>(), 4.06e-3, 1e-12);
  EXPECT_NEAR(s["throughput"]["output_tokens_per_s"].get<double>(), 3 / 4.06e-3, 1e-6);
  EXPECT_EQ(s["kv_transfer"]["bytes"], 100000);
  EXPECT_EQ(s["goodput"]["requests"], 0);
  const std::string csv = requests_csv(sys);
  EXPECT_NE(csv.find("0,0,100,3,0,0,0,0.002,100000,0.001,0.00206,0,0.00206,0.002,0.00406,3"),
            std::string::npos)
      << csv;
}

TEST_F(Serving, TraceFollowsEachRequestFromPrefillToItsLastToken) {
  const std::string path = (::wse::testing::temp_path("wse_serving_trace.json")).string();
  {
    trace::Writer writer(path);
    LinearPrefill prefill(2);
    FixedDecode decode;
    LinkPath path_model;
    ServingConfig c = base_config();
    // r0: 3 tokens (prefill + 2 decode steps); r1: 1 token (no decode, no arrow).
    ServingSystem sys("serving", c, {req(0, 100, 3), req(0, 100, 1)}, {&prefill}, {&decode}, &path_model,
                      &writer);
    run_to_end();
    writer.finish();
  }
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in);
  std::vector<std::string> phases;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "s" || e["ph"] == "t" || e["ph"] == "f") {
      EXPECT_EQ(e["id"], 0);
      phases.push_back(e["ph"]);
    }
  }
  // Start at the prefill batch (0 ms), a step at the first decode step (2.06 ms), the
  // end at the last decode step (3.06 ms).
  EXPECT_EQ(phases, (std::vector<std::string>{"s", "t", "f"}));
  std::filesystem::remove(path);
}

TEST_F(Serving, AfterPrefillKvIsSerialized) {
  LinearPrefill prefill(2);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.kv_send = KvSend::after_prefill;
  ServingSystem sys("serving", c, {req(0, 100, 3)}, {&prefill}, {&decode}, &path);
  run_to_end();
  const RequestRecord& r = sys.records()[0];
  // All 100,000 B leave at 2 ms: 10 us + 100 us -> 2.11 ms; tokens at 3.11 and 4.11 ms.
  EXPECT_NEAR(ms(r.kv_start_s), 2.0, 1e-9);
  EXPECT_NEAR(ms(r.kv_end_s), 2.11, 1e-9);
  EXPECT_NEAR(ms(r.last_token_s), 4.11, 1e-9);
}

TEST_F(Serving, WholePromptsWaitChunksFillTheBatch) {
  {
    LinearPrefill prefill(1);
    FixedDecode decode;
    LinkPath path;
    ServingConfig c = base_config();
    // Two 600-token prompts, budget 1000, whole prompts: the second does not fit with
    // the first. Batch 1 = r0: 1 + 6 = 7 ms; batch 2 = r1: 7 -> 14 ms.
    ServingSystem sys("serving", c, {req(0, 600, 1), req(0, 600, 1)}, {&prefill}, {&decode}, &path);
    run_to_end();
    EXPECT_NEAR(ms(sys.records()[0].first_token_s), 7.0, 1e-9);
    EXPECT_NEAR(ms(sys.records()[1].first_token_s), 14.0, 1e-9);
    ASSERT_EQ(prefill.batches.size(), 2u);
  }
}

TEST_F(Serving, ChunkedPrefill) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.prefill_chunk_tokens = 500;
  // Chunks of 500: batch 1 = r0[0,500) + r1[0,500) = 1000 tokens: 11 ms;
  // batch 2 = r0[500,600) + r1[500,600) = 200 tokens: 3 ms -> both first tokens at 14 ms.
  ServingSystem sys("serving", c, {req(0, 600, 1), req(0, 600, 1)}, {&prefill}, {&decode}, &path);
  run_to_end();
  ASSERT_EQ(prefill.batches.size(), 2u);
  EXPECT_EQ(prefill.batches[1][0].context_offset, 500u);
  EXPECT_EQ(prefill.batches[1][0].tokens, 100u);
  EXPECT_NEAR(ms(sys.records()[0].first_token_s), 14.0, 1e-9);
  EXPECT_NEAR(ms(sys.records()[1].first_token_s), 14.0, 1e-9);
}

// Colocated: both prompts (100 tokens each) prefill together, 1 + 2 = 3 ms; each
// needs (100 + 2) x 1000 = 102,000 B of KV to decode. Returns the two last-token times.
std::pair<double, double> colocated_last_tokens(std::uint64_t capacity) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  ServingConfig c = base_config();
  c.placement = Placement::colocated;
  c.decode_kv_capacity_bytes = capacity;
  ServingSystem sys("serving", c, {req(0, 100, 2), req(0, 100, 2)}, {&prefill}, {&decode}, nullptr);
  sc_core::sc_start();
  EXPECT_NEAR(ms(sys.records()[0].first_token_s), 3.0, 1e-9);
  return {ms(sys.records()[0].last_token_s), ms(sys.records()[1].last_token_s)};
}

TEST_F(Serving, ColocatedDecodeHoldsWhatFits) {
  // 300,000 B holds both: one decode step 3 -> 4 ms.
  const auto [a, b] = colocated_last_tokens(300'000);
  EXPECT_NEAR(a, 4.0, 1e-9);
  EXPECT_NEAR(b, 4.0, 1e-9);
}

TEST_F(Serving, ColocatedDecodeWaitsForKvCapacity) {
  // 150,000 B holds one: r1 waits for r0's step (3 -> 4 ms) and runs 4 -> 5 ms.
  const auto [a, b] = colocated_last_tokens(150'000);
  EXPECT_NEAR(a, 4.0, 1e-9);
  EXPECT_NEAR(b, 5.0, 1e-9);
}

TEST_F(Serving, DisaggregatedDecodeWaitsForRoom) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.kv_send = KvSend::after_prefill;
  c.decode_kv_capacity_bytes = 150'000;
  ServingSystem sys("serving", c, {req(0, 100, 2), req(0, 100, 2)}, {&prefill}, {&decode}, &path);
  run_to_end();
  // One batch of 200 tokens: 3 ms. r0 reserves 102,000 B and sends 100,000 B:
  // 3 ms + 110 us = 3.11 ms, decodes 3.11 -> 4.11 ms and frees its room. Only then r1
  // reserves and sends: 4.11 + 0.11 = 4.22 ms, decodes to 5.22 ms.
  EXPECT_NEAR(ms(sys.records()[0].last_token_s), 4.11, 1e-9);
  EXPECT_NEAR(ms(sys.records()[1].kv_start_s), 4.11, 1e-9);
  EXPECT_NEAR(ms(sys.records()[1].last_token_s), 5.22, 1e-9);
}

TEST_F(Serving, PrefixReuseSkipsCachedBlocks) {
  LinearPrefill prefill(1);
  FixedDecode decode;
  LinkPath path;
  ServingConfig c = base_config();
  c.prefix_reuse = true;
  c.prefix_cache_blocks = 16;
  c.prefill_max_batch_tokens = 4096;
  // Two 1024-token prompts with the same two 512-token blocks, 100 ms apart. The second
  // finds both blocks cached; its last token is still computed: 1 token, 1.01 ms.
  ServingSystem sys("serving", c, {req(0, 1024, 1, {7, 8}), req(0.1, 1024, 1, {7, 8})}, {&prefill}, {&decode},
                    &path);
  run_to_end();
  EXPECT_EQ(sys.records()[1].prefix_hit_tokens, 1023u);
  EXPECT_NEAR(ms(sys.records()[0].first_token_s), 1.0 + 10.24, 1e-9);
  EXPECT_NEAR(ms(sys.records()[1].first_token_s - sys.records()[1].arrival_s), 1.01, 1e-9);
}

}  // namespace
}  // namespace wse::serving
