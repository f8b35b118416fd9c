// Speed of the workload front end: lowering a decode step or a prefill batch to
// operators (what a serving simulation does once per scheduled batch) and writing /
// reading operator-trace files. Reports operators per wall second.
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <systemc>

#include "workloads/model/op_trace.h"
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"

namespace {

using namespace wse::workloads;

TransformerModel load(const std::string& file) {
  auto doc = wse::config::parse(std::string("model:\n  include: ") + WSE_SOURCE_DIR +
                                "/workloads/data/models/" + file + "\n");
  wse::config::Section root = doc.root();
  wse::config::Section m = root.section("model", "model");
  TransformerModel t = read_transformer(m);
  doc.finish();
  return t;
}

const TransformerModel& llama70b() {
  static const TransformerModel m = load("meta-llama--Meta-Llama-3.1-70B_config.json");
  return m;
}
const TransformerModel& deepseek() {
  static const TransformerModel m = load("deepseek-ai--DeepSeek-V3_config.json");
  return m;
}

// One decode step of `batch` running requests (contexts 1,000..1,000+batch).
void BM_LowerDecodeLlama70B(benchmark::State& state) {
  std::vector<std::uint64_t> ctx;
  for (std::int64_t i = 0; i < state.range(0); ++i) ctx.push_back(1000 + static_cast<std::uint64_t>(i));
  std::size_t ops = 0;
  for (auto _ : state) {
    const auto g = lower_decode(llama70b(), ctx);
    ops += g.ops.size();
    benchmark::DoNotOptimize(g.ops.data());
  }
  state.counters["operators/s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
  state.counters["operators/step"] = static_cast<double>(ops) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_LowerDecodeLlama70B)->Arg(1)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);

void BM_LowerDecodeDeepSeekV3(benchmark::State& state) {
  std::vector<std::uint64_t> ctx(static_cast<std::size_t>(state.range(0)), 4096);
  std::size_t ops = 0;
  for (auto _ : state) {
    const auto g = lower_decode(deepseek(), ctx);
    ops += g.ops.size();
    benchmark::DoNotOptimize(g.ops.data());
  }
  state.counters["operators/s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LowerDecodeDeepSeekV3)->Arg(64)->Unit(benchmark::kMicrosecond);

// Prefill of 8 prompts of 2,048 tokens.
void BM_LowerPrefillLlama70B(benchmark::State& state) {
  const std::vector<std::uint64_t> prompts(8, 2048);
  for (auto _ : state) {
    const auto g = lower_prefill(llama70b(), prompts);
    benchmark::DoNotOptimize(g.ops.data());
  }
}
BENCHMARK(BM_LowerPrefillLlama70B)->Unit(benchmark::kMicrosecond);

void BM_OpTraceWriteRead(benchmark::State& state) {
  std::vector<std::uint64_t> ctx(64, 2000);
  const OpTrace t{summarize(llama70b()), lower_decode(llama70b(), ctx)};
  std::size_t ops = 0;
  for (auto _ : state) {
    std::stringstream s;
    write_op_trace(s, t);
    const OpTrace back = read_op_trace(s, "bench.jsonl");
    ops += back.graph.ops.size();
  }
  state.counters["operators/s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_OpTraceWriteRead)->Unit(benchmark::kMillisecond);

}  // namespace
