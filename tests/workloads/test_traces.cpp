// Request trace readers: arrival times relative to the first request, limits, rate
// scaling, and malformed lines named by file and line.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/systemc_test.h"
#include "workloads/trace/request_trace.h"

namespace wse::workloads {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(RequestTrace, AzureConversationHead) {
  TraceOptions o;
  o.path = testing::source_path("workloads/data/traces/azure2023_conv.csv");
  o.limit = 2;
  const auto r = read_trace(o);
  ASSERT_EQ(r.size(), 2u);
  // Rows 1-2: 18:15:46.6805900 (374, 44) and 18:15:50.9951690 (396, 109).
  EXPECT_EQ(r[0].input_tokens, 374u);
  EXPECT_EQ(r[0].output_tokens, 44u);
  EXPECT_DOUBLE_EQ(r[0].arrival_s, 0.0);
  EXPECT_NEAR(r[1].arrival_s, 4.314579, 1e-6);  // 50.9951690 - 46.6805900
  o.rate_scale = 2.0;
  EXPECT_NEAR(read_trace(o)[1].arrival_s, 4.314579 / 2, 1e-6);
  o.start = 1;
  o.limit = 1;
  const auto s = read_trace(o);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].input_tokens, 396u);
  EXPECT_DOUBLE_EQ(s[0].arrival_s, 0.0);
}

TEST(RequestTrace, WholeAzureFilesAndMooncake) {
  TraceOptions o;
  o.path = testing::source_path("workloads/data/traces/azure2023_conv.csv");
  EXPECT_EQ(read_trace(o).size(), 19366u);
  o.path = testing::source_path("workloads/data/traces/azure2023_code.csv");
  EXPECT_EQ(read_trace(o).size(), 8819u);
  o.format = TraceFormat::mooncake_jsonl;
  o.path = testing::source_path("workloads/data/traces/mooncake_fast25_conversation_trace.jsonl");
  const auto m = read_trace(o);
  EXPECT_EQ(m.size(), 12031u);
  for (const auto& r : m) {
    // Each hash id names one 512-token block of the prompt.
    ASSERT_EQ(r.hash_ids.size(), (r.input_tokens + 511) / 512);
  }
}

TEST(RequestTrace, MalformedLinesNameFileAndLine) {
  const fs::path p = fs::temp_directory_path() / "wse_bad_trace.csv";
  std::ofstream(p) << "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
                      "2023-11-16 18:15:47,12\n";
  TraceOptions o;
  o.path = p;
  try {
    read_trace(o);
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("wse_bad_trace.csv:3:1"));
    EXPECT_THAT(e.what(), HasSubstr("expected 3 comma-separated columns, found 2"));
  }
  std::ofstream(p) << "time,in,out\n";
  EXPECT_THROW(read_trace(o), config::ConfigError);
  const fs::path j = fs::temp_directory_path() / "wse_bad_trace.jsonl";
  std::ofstream(j) << "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n{\"timestamp\": 1,\n";
  o.path = j;
  o.format = TraceFormat::mooncake_jsonl;
  try {
    read_trace(o);
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("wse_bad_trace.jsonl:2:1"));
  }
  fs::remove(p);
  fs::remove(j);
}

}  // namespace
}  // namespace wse::workloads
