// Prefill on the wafer: GEMMs of many tokens as the weight-stationary Cannon GEMM
// (decode.gemm_algorithm), the pass against its floor, and the GEMV passes as the
// ablation (docs/wse_mesh.md, "Prefill as a GEMM").
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>

#include "decode_test_util.h"
#include "systemc_models/config/config.h"
#include "workloads/model/operators.h"
#include "wse_mesh/decode/simulated_kernels.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {
namespace {

using test::load_cs3;
using test::load_model;

WaferConfig cs3_tiled() {
  WaferConfig w = load_cs3();
  w.tile = 8;
  return w;
}

double stat(const stats::Group& g, const std::string& name) {
  for (const auto& s : g.stats()) {
    if (const auto* x = dynamic_cast<const stats::Scalar*>(s.get()); x && x->name() == name)
      return x->value();
  }
  return -1.0;
}

// The GEMMs of one layer of a prefill of `tokens` tokens (one microbatch), summed, with
// the given algorithm; a fused grid is timed once, as the schedule does.
std::uint64_t layer_gemm_cycles(const WaferConfig& w, const DecodeConfig& cfg, const LayerPlan& plan,
                                const workloads::TransformerModel& m, std::uint64_t tokens,
                                GemmAlgorithm algo, KernelCache& cache) {
  SimulatedKernelOptions o;
  o.placement = cfg.placement();
  o.accumulate = cfg.accumulate;
  o.gemm_algorithm = algo;
  SimulatedKernels k(w, o, cache);
  const workloads::OperatorGraph g = workloads::lower(m, {workloads::Sequence{tokens, 0, true}});
  std::set<const TensorGrid*> timed;
  std::uint64_t cycles = 0;
  for (const auto& op : g.ops) {
    if (op.kind != workloads::OpKind::gemm || op.layer != static_cast<std::int32_t>(plan.region.layer))
      continue;
    const TensorGrid* grid = plan.grid(op.name);
    if (grid != nullptr && !timed.insert(grid).second) continue;
    cycles += k.time(op, plan).cycles;
  }
  return cycles;
}

TEST(DecodePrefill, GemmsOfA4KPromptRunAsCannon) {
  // Llama-3.1-8B spread over one CS-3 (tile 8), a middle layer, one 4,096-token prompt as
  // one microbatch. The GEMV passes pay each GEMV's multicast and reduction 4,096 times;
  // the Cannon GEMM pays its FMACs (m Kt fmac(Mt) per PE) plus one fill and drain, so its
  // q/k/v, o, gate/up and down take 1.7x less time together (measured 9,046,667 against
  // 15,572,992 cycles, 2,209 against 3,802 a token: the passes add ~1,600 cycles of
  // multicast and reduction a token to FMACs that are the same either way).
  const WaferConfig w = cs3_tiled();
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  const DecodeConfig cfg;
  WaferDecoder d(w, cfg, m);
  const LayerPlan& plan = d.plans()[5];
  KernelCache cache;
  const std::uint64_t gemv = layer_gemm_cycles(w, cfg, plan, m, 4096, GemmAlgorithm::kGemv, cache);
  const std::uint64_t cannon = layer_gemm_cycles(w, cfg, plan, m, 4096, GemmAlgorithm::kAuto, cache);
  EXPECT_LT(static_cast<double>(cannon) * 1.7, static_cast<double>(gemv)) << cannon << " against " << gemv;
  // Forced Cannon is the same here (it is the faster for every matrix at 4,096 tokens).
  EXPECT_EQ(layer_gemm_cycles(w, cfg, plan, m, 4096, GemmAlgorithm::kCannon, cache), cannon);
  // One token (a decode step) keeps the GEMV: m = 1 never runs Cannon.
  EXPECT_EQ(layer_gemm_cycles(w, cfg, plan, m, 1, GemmAlgorithm::kAuto, cache),
            layer_gemm_cycles(w, cfg, plan, m, 1, GemmAlgorithm::kGemv, cache));
}

TEST(DecodePrefill, ChunkedPrefillDoesNotBeatItsFloorAndBeatsTheGemvPasses) {
  // A 1,024-token prompt in pipelined chunks of 256 on one CS-3: every GEMM runs as
  // Cannon (the statistics count the distinct kernels), the pass stays above its floor,
  // and it is faster than the same pass with the GEMV passes alone.
  const WaferConfig w = cs3_tiled();
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  DecodeConfig cfg;
  cfg.prefill_chunk_tokens = 256;
  WaferDecoder d(w, cfg, m);
  const WaferRunResult cannon = d.prefill({1024});
  EXPECT_EQ(cannon.microbatches, 4u);
  EXPECT_GT(cannon.floor.step_s, 0.0);
  EXPECT_GE(cannon.seconds, cannon.floor.step_s);
  EXPECT_GT(stat(d.stats(), "gemm_algorithm_cannon"), 0.0);
  EXPECT_GT(cannon.kernel_seconds.at("attention"), 0.0);  // the chunks' attention is on the critical path
  // Each chunk's attention took one of the two kernels (auto), counted by name.
  EXPECT_GT(std::max(stat(d.stats(), "prefill_attention_stream"), 0.0) +
                std::max(stat(d.stats(), "prefill_attention_combine"), 0.0),
            0.0);
  d.set_gemm_algorithm(GemmAlgorithm::kGemv);
  const WaferRunResult gemv = d.prefill({1024});
  EXPECT_GE(gemv.seconds, gemv.floor.step_s);
  EXPECT_DOUBLE_EQ(gemv.floor.step_s, cannon.floor.step_s);  // the same work
  EXPECT_LT(cannon.seconds, gemv.seconds);
  // The decode kernel's sub-chunks (the attention ablation) stay above the floor and are
  // not faster than auto.
  d.set_gemm_algorithm(GemmAlgorithm::kAuto);
  d.set_prefill_attention(PrefillAttention::kCombine);
  const WaferRunResult combine = d.prefill({1024});
  EXPECT_GE(combine.seconds, combine.floor.step_s);
  EXPECT_LE(cannon.seconds, combine.seconds);
}

TEST(DecodePrefill, AutoPrefillAttentionIsNeverSlowerThanCombine) {
  // Llama-3.1-8B on one CS-3, a middle layer: the attention of prefill chunks (64 tokens
  // at the start of a prompt and after 448 tokens, 8 tokens after 1,016) timed with each
  // choice. auto takes the faster of the streamed kernel and the decode kernel's
  // sub-chunks, so it is never slower than combine (the ablation) nor than stream; the
  // statistics name the kernel each chunk took. A decode step (one token) is the decode
  // kernel whatever the choice.
  const WaferConfig w = cs3_tiled();
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  const DecodeConfig cfg;
  WaferDecoder d(w, cfg, m);
  const LayerPlan& plan = d.plans()[5];
  KernelCache cache;
  const auto attention = [&](std::uint64_t tokens, std::uint64_t offset, PrefillAttention choice) {
    SimulatedKernelOptions o;
    o.placement = cfg.placement();
    o.prefill_attention = choice;
    SimulatedKernels k(w, o, cache);
    const workloads::OperatorGraph g = workloads::lower(m, {workloads::Sequence{tokens, offset, true}});
    for (const auto& op : g.ops) {
      if (op.kind == workloads::OpKind::attention &&
          op.layer == static_cast<std::int32_t>(plan.region.layer)) {
        const std::uint64_t cycles = k.time(op, plan).cycles;
        return std::make_pair(cycles, k.prefill_attention_chosen());
      }
    }
    ADD_FAILURE() << "no attention operator";
    return std::make_pair(std::uint64_t{0}, std::map<std::string, std::uint64_t>{});
  };
  for (const auto& [tokens, offset] :
       {std::pair<std::uint64_t, std::uint64_t>{64, 0}, {64, 448}, {8, 1016}}) {
    const auto [best, chosen] = attention(tokens, offset, PrefillAttention::kAuto);
    const auto [combine, none] = attention(tokens, offset, PrefillAttention::kCombine);
    const auto [stream, forced] = attention(tokens, offset, PrefillAttention::kStream);
    EXPECT_LE(best, combine) << tokens << " tokens after " << offset;
    EXPECT_LE(best, stream) << tokens << " tokens after " << offset;
    EXPECT_EQ(best, std::min(combine, stream));
    EXPECT_TRUE(none.empty());  // combine: the decode kernel, nothing to choose
    EXPECT_EQ(chosen.size(), 1u);
    EXPECT_EQ(chosen.begin()->first, stream <= combine ? "stream" : "combine");
    EXPECT_EQ(forced.count("stream"), 1u);
  }
  EXPECT_EQ(attention(1, 1000, PrefillAttention::kAuto).first,
            attention(1, 1000, PrefillAttention::kCombine).first);
  EXPECT_TRUE(attention(1, 1000, PrefillAttention::kAuto).second.empty());
}

TEST(DecodePrefill, PrefillAttentionIsReadAndShipped) {
  const auto read = [](const std::string& yaml) {
    auto doc = config::parse(yaml, "decode.yaml");
    config::Section root = doc.root();
    config::Section s = root.section("decode", "decode");
    DecodeConfig c = read_decode_config(s);
    doc.finish();
    return c;
  };
  EXPECT_EQ(DecodeConfig{}.prefill_attention, PrefillAttention::kAuto);
  EXPECT_EQ(read("decode: {}\n").prefill_attention, PrefillAttention::kAuto);
  EXPECT_EQ(read("decode:\n  prefill_attention: stream\n").prefill_attention, PrefillAttention::kStream);
  EXPECT_EQ(read("decode:\n  prefill_attention: combine\n").prefill_attention, PrefillAttention::kCombine);
  std::string m;
  try {
    read("decode:\n  prefill_attention: flash\n");
  } catch (const config::ConfigError& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("decode.yaml:2"), std::string::npos) << m;
  EXPECT_NE(m.find("decode.prefill_attention"), std::string::npos) << m;
  EXPECT_NE(m.find("auto, stream or combine"), std::string::npos) << m;
  auto doc = config::load(testing::source_path("configs/hardware/cs3_decode.yaml"));
  config::Section root = doc.root();
  config::Section s = root.section("decode", "decode");
  EXPECT_EQ(read_decode_config(s).prefill_attention, PrefillAttention::kAuto);
  doc.finish();
}

TEST(DecodePrefill, GemmAlgorithmIsReadAndShipped) {
  const auto read = [](const std::string& yaml) {
    auto doc = config::parse(yaml, "decode.yaml");
    config::Section root = doc.root();
    config::Section s = root.section("decode", "decode");
    DecodeConfig c = read_decode_config(s);
    doc.finish();
    return c;
  };
  EXPECT_EQ(read("decode: {}\n").gemm_algorithm, DecodeConfig{}.gemm_algorithm);
  EXPECT_EQ(DecodeConfig{}.gemm_algorithm, GemmAlgorithm::kAuto);
  EXPECT_EQ(read("decode:\n  gemm_algorithm: gemv\n").gemm_algorithm, GemmAlgorithm::kGemv);
  EXPECT_EQ(read("decode:\n  gemm_algorithm: cannon\n").gemm_algorithm, GemmAlgorithm::kCannon);
  std::string m;
  try {
    read("decode:\n  gemm_algorithm: systolic\n");
  } catch (const config::ConfigError& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("decode.gemm_algorithm"), std::string::npos) << m;
  EXPECT_NE(m.find("auto, gemv or cannon"), std::string::npos) << m;
  // The shipped file sets the default.
  auto doc = config::load(testing::source_path("configs/hardware/cs3_decode.yaml"));
  config::Section root = doc.root();
  config::Section s = root.section("decode", "decode");
  EXPECT_EQ(read_decode_config(s).gemm_algorithm, GemmAlgorithm::kAuto);
  doc.finish();
}

}  // namespace
}  // namespace wse::wafer
