// Operator-trace files: generate, write, read, equal; hand-written files; errors that
// name the file, the line and the key.
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/workloads/model_loader.h"
#include "workloads/model/op_trace.h"

namespace wse::workloads {
namespace {

using ::testing::HasSubstr;

OpTrace round_trip(const OpTrace& t) {
  std::stringstream s;
  write_op_trace(s, t);
  return read_op_trace(s, "trace.jsonl");
}

TEST(OpTrace, RoundTripEveryFamily) {
  for (const char* file : {"meta-llama--Meta-Llama-3.1-8B_config.json",
                           "mistralai--Mixtral-8x7B-v0.1_config.json", "deepseek-ai--DeepSeek-V3_config.json",
                           "openai--gpt-oss-20b_config.json", "Qwen--Qwen3-30B-A3B_config.json"}) {
    const auto m = load_model(file);
    // A mixed batch: a prefill chunk at an offset, a whole prompt and two decode steps.
    const OpTrace t{summarize(m), lower(m, {{64, 128, false}, {17, 0, true}, {1, 300, true}, {1, 5, true}})};
    const OpTrace back = round_trip(t);
    EXPECT_EQ(back, t) << file;
    EXPECT_EQ(back.graph.total_flops(), t.graph.total_flops()) << file;
  }
}

TEST(OpTrace, WritesOneHeaderAndOneLinePerOperator) {
  const auto m = load_model("meta-llama--Meta-Llama-3.1-8B_config.json");
  const OpTrace t{summarize(m), lower_decode(m, {10})};
  std::stringstream s;
  write_op_trace(s, t);
  std::string line;
  std::getline(s, line);
  EXPECT_THAT(
      line,
      HasSubstr(
          R"({"format":"wse-emu-operator-trace","version":1,"model":{"name":"model","model_type":"llama")"));
  std::size_t lines = 0;
  while (std::getline(s, line)) ++lines;
  EXPECT_EQ(lines, t.graph.ops.size());
  // Embedding, 32 x (norm, q, k, v, rope, attention, o, add, norm, gate, up, act, down,
  // add) = 14 per layer, final norm, LM head: 1 + 448 + 2 = 451.
  EXPECT_EQ(lines, 451u);
}

TEST(OpTrace, HandWrittenTraceWithDefaults) {
  std::stringstream s(
      R"({"format":"wse-emu-operator-trace","version":1,"model":{"name":"toy","model_type":"llama","layers":1,"hidden":64}}
{"kind":"gemm","name":"w","layer":0,"m":4,"k":64,"n":32,"weight_bytes":4096}

{"kind":"attention","name":"self_attn","layer":0,"q_heads":4,"kv_heads":2,"qk_head_dim":16,"v_head_dim":16,"query_len":4,"kv_len":4,"flops":1280}
)");
  const OpTrace t = read_op_trace(s, "toy.jsonl");
  ASSERT_EQ(t.graph.ops.size(), 2u);
  EXPECT_EQ(t.graph.ops[0].flops, 2u * 4u * 64u * 32u);  // left out: 2 x M x K x N
  EXPECT_EQ(t.graph.ops[0].weight_dtype, DType::bf16);
  EXPECT_EQ(t.graph.ops[1].kind, OpKind::attention);
  EXPECT_EQ(t.graph.ops[1].flops, 1280u);
  EXPECT_EQ(t.model.name, "toy");
}

// The examples of docs/trace_format.md are a valid file: its header (written over several
// lines there) followed by its operator lines.
TEST(OpTrace, DocumentationExamplesParse) {
  std::ifstream doc(testing::source_path("docs/trace_format.md"));
  ASSERT_TRUE(doc);
  std::vector<std::vector<std::string>> blocks;
  std::string line;
  bool in_json = false;
  while (std::getline(doc, line)) {
    if (line == "```json") {
      in_json = true;
      blocks.emplace_back();
    } else if (line == "```") {
      in_json = false;
    } else if (in_json) {
      blocks.back().push_back(line);
    }
  }
  ASSERT_EQ(blocks.size(), 2u);
  std::string header;
  for (const auto& l : blocks[0]) header += l;
  std::stringstream file;
  file << header << "\n";
  for (const auto& l : blocks[1]) file << l << "\n";
  // The header announces the 483 operators of the full step; the excerpt has 3.
  std::string text = file.str();
  const std::string announced = "\"operators\":483";
  text.replace(text.find(announced), announced.size(), "\"operators\":3");
  std::stringstream in(text);
  const OpTrace t = read_op_trace(in, "trace_format.md");
  ASSERT_EQ(t.graph.ops.size(), 3u);
  EXPECT_EQ(t.graph.sequences.size(), 2u);
  EXPECT_EQ(t.graph.ops[1].kv_read_bytes, 1001u * 4096u);     // 1,001 cached tokens x 4 KiB
  EXPECT_EQ(t.graph.ops[2].flops, 2u * 6u * 4096u * 14336u);  // left out: 2 x m x k x n x count
}

std::string error_of(const std::string& text) {
  std::stringstream s(text);
  try {
    read_op_trace(s, "bad.jsonl");
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

const std::string kHeader =
    R"({"format":"wse-emu-operator-trace","version":1,"model":{"name":"toy","model_type":"llama","layers":2,"hidden":64}})"
    "\n";

TEST(OpTrace, ErrorsNameFileLineAndKey) {
  EXPECT_THAT(
      error_of(kHeader + R"({"kind":"gemm","name":"w","layer":0,"m":"four","k":1,"n":1})"),
      AllOf(HasSubstr("bad.jsonl:2"), HasSubstr("key 'm': expected a non-negative integer, found \"four\"")));
  EXPECT_THAT(error_of(kHeader + "\n" + R"({"kind":"gemm","name":"w","layer":0,"m":1,"k":1,"nn":1})"),
              AllOf(HasSubstr("bad.jsonl:3"), HasSubstr("key 'n': missing")));
  EXPECT_THAT(error_of(kHeader + R"({"kind":"gemm","name":"w","layer":0,"m":1,"k":1,"n":1,"flop":3})"),
              AllOf(HasSubstr("bad.jsonl:2"), HasSubstr("key 'flop': unknown key; did you mean 'flops'?")));
  EXPECT_THAT(error_of(kHeader + R"({"kind":"conv","name":"w","layer":0})"),
              HasSubstr("key 'kind': 'conv' is not an operator kind"));
  EXPECT_THAT(error_of(kHeader + R"({"kind":"norm","name":"n","layer":7,"elements":4})"),
              HasSubstr("key 'layer': is 7 but the model has 2 layers"));
  EXPECT_THAT(
      error_of(kHeader + R"({"kind":"norm","name":"n","layer":0,"elements":4,"weight_dtype":"int3"})"),
      HasSubstr("key 'weight_dtype': 'int3' is not a dtype"));
  EXPECT_THAT(error_of(kHeader + "{\"kind\":"), AllOf(HasSubstr("bad.jsonl:2"), HasSubstr("not valid JSON")));
  EXPECT_THAT(error_of(R"({"format":"wse-emu-operator-trace","version":2,"model":{}})"),
              AllOf(HasSubstr("bad.jsonl:1"), HasSubstr("understands version 1, found 2")));
  EXPECT_THAT(error_of(""), HasSubstr("empty operator trace"));
  // A header announcing more operators than the file holds: a truncated file.
  EXPECT_THAT(
      error_of(
          R"({"format":"wse-emu-operator-trace","version":1,"operators":2,"model":{"name":"t","model_type":"llama","layers":1,"hidden":8}})"
          "\n"
          R"({"kind":"norm","name":"n","layer":0,"elements":4})"),
      HasSubstr("announces 2 operators but the file has 1"));
}

// A gemm with m = n = 2^20, k = 128 and count = 2^22 has 2^70 FLOPs: computed in 64
// bits they wrapped to 0, and the run reported `op_trace.flops: 0` with exit 0.
TEST(OpTrace, GemmFlopsBeyond64BitsAreRefusedNotWrapped) {
  EXPECT_THAT(
      error_of(kHeader +
               R"({"kind":"gemm","name":"w","layer":0,"m":1048576,"k":128,"n":1048576,"count":4194304})"),
      AllOf(HasSubstr("bad.jsonl:2:1: key 'm': 2 x m x k x n x count = 1.18059e+21 FLOPs does not fit in "
                      "64 bits")));
  // Just below 2^64: exact.
  std::stringstream ok(kHeader +
                       R"({"kind":"gemm","name":"w","layer":0,"m":1048576,"k":128,"n":1048576,"count":32767})"
                       "\n");
  const OpTrace t = read_op_trace(ok, "ok.jsonl");
  EXPECT_EQ(t.graph.ops[0].flops, 2ULL * 1048576ULL * 128ULL * 1048576ULL * 32767ULL);
  // Three operators that fit alone (2^63 - 2^48 FLOPs each) but whose sum wraps.
  const std::string big =
      R"({"kind":"gemm","name":"w","layer":0,"m":1048576,"k":128,"n":1048576,"count":32767})";
  EXPECT_THAT(
      error_of(kHeader + big + "\n" + big + "\n" + big),
      AllOf(HasSubstr("bad.jsonl:4:1: key 'flops': the operators' FLOPs up to this line add up to more "
                      "than 2^64 - 1")));
}

}  // namespace
}  // namespace wse::workloads
