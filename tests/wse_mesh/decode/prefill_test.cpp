// Prefill on the wafer: GEMMs of many tokens as the weight-stationary Cannon GEMM
// (decode.gemm_algorithm), the pass against its floor, and the GEMV passes as the
// ablation (docs/wse_mesh.md, "Prefill as a GEMM").
#include <gtest/gtest.h>

#include <set>
#include <string>

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
  d.set_gemm_algorithm(GemmAlgorithm::kGemv);
  const WaferRunResult gemv = d.prefill({1024});
  EXPECT_GE(gemv.seconds, gemv.floor.step_s);
  EXPECT_DOUBLE_EQ(gemv.floor.step_s, cannon.floor.step_s);  // the same work
  EXPECT_LT(cannon.seconds, gemv.seconds);
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
