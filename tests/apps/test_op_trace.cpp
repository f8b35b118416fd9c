// Trace-driven runs: an operator trace is generated, written, read back and executed by
// `wse-emu run` (mode op_trace); the simulated time equals executing the generated
// operator graph directly on the same Trainium model.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/prefill.h"
#include "util/cli_harness.h"
#include "util/systemc_test.h"
#include "workloads/model/op_trace.h"
#include "workloads/model/operators.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;

TEST(OpTraceMode, GenerateWriteReadRunGivesTheSameResult) {
  const fs::path dir = ::wse::testing::temp_path("wse_op_trace_mode");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string src = WSE_SOURCE_DIR;

  // The model and the hardware, read the way the experiment reads them.
  auto doc = config::parse("model:\n  include: " + src + "/configs/models/llama-3.1-8b.yaml\n" +
                               "include: " + src + "/configs/hardware/trn2_48xlarge.yaml\n",
                           "test.yaml");
  config::Section root = doc.root();
  config::Section top = root.section("model", "model");
  config::Section m = top.section("model", "model");
  const workloads::TransformerModel model = workloads::read_transformer(m);
  config::Section trn = root.section("trainium", "chip");
  const neuron::ChipConfig chip = neuron::read_chip_config(trn);
  config::Section inst = root.section("instance", "instance");
  const neuron::InstanceConfig instance = neuron::read_instance_config(inst);
  config::Section pre = root.section("prefill", "prefill");
  const neuron::PrefillConfig prefill = neuron::read_prefill_config(pre);

  // Generate: the prefill of two prompts (512 and 256 tokens) of Llama-3.1-8B.
  workloads::OpTrace generated{workloads::summarize(model), workloads::lower_prefill(model, {512, 256})};
  const fs::path file = dir / "prefill.jsonl";
  workloads::write_op_trace(file, generated);
  ASSERT_EQ(workloads::read_op_trace(file), generated);  // the file holds the graph exactly

  // Run the file through the command.
  std::ofstream(dir / "exp.yaml") << "experiment: {name: trace, mode: op_trace}\n"
                                  << "include: " << src << "/configs/hardware/trn2_48xlarge.yaml\n"
                                  << "op_trace: {path: " << file.string() << "}\n";
  Result r = wse_emu(
      "run '" + (dir / "exp.yaml").string() + "' --quiet --out '" + (dir / "out").string() + "'", dir / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(dir / "out" / "summary.json"));

  // The same graph executed directly on the same model.
  neuron::TrainiumPrefill direct(chip, instance, prefill);
  const double expected = direct.run(generated.graph, generated.model.weight_bytes).seconds();
  EXPECT_GT(expected, 0.0);
  EXPECT_DOUBLE_EQ(s["simulated_time_s"].get<double>(), expected);
  EXPECT_EQ(s["op_trace"]["operators"], generated.graph.ops.size());
  EXPECT_EQ(s["op_trace"]["flops"], generated.graph.total_flops());
  EXPECT_TRUE(fs::exists(dir / "out" / "layers.csv"));
  // Energy and cost: one trn2.48xlarge over the pass (3,680 W static, $35.76/h), the
  // pass's own counts priced at 0.532 pJ per BF16 FLOP and 31.2 pJ per HBM byte (its HBM
  // busy time per chip x the chip's peak x the chips), PUE 1.15; two prompts of 512 + 256
  // tokens, each ending in one output token.
  const neuron::PrefillResult d = direct.run(generated.graph, generated.model.weight_bytes);
  const nlohmann::json& t = s["energy"]["machines"]["trainium_instance"];
  EXPECT_EQ(t["count"], 1);
  EXPECT_DOUBLE_EQ(t["static_j"].get<double>(), 3680.0 * expected);
  EXPECT_DOUBLE_EQ(t["compute_j"].get<double>(), 0.532 * 1e-12 * static_cast<double>(d.busy.flops));
  EXPECT_GT(t["compute_j"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(t["hbm_j"].get<double>(),
                   31.2 * 1e-12 * (d.busy.hbm_ps * 1e-12 * direct.hbm_bytes_per_s() * d.chips));
  EXPECT_NEAR(s["energy"]["joules"].get<double>(), t["joules"].get<double>() * 1.15, 1e-12);
  EXPECT_NEAR(s["energy"]["tokens_per_joule"]["output"].get<double>(),
              2.0 / s["energy"]["joules"].get<double>(), 1e-12);
  EXPECT_NEAR(s["energy"]["tokens_per_joule"]["all"].get<double>(),
              770.0 / s["energy"]["joules"].get<double>(), 1e-9);
  EXPECT_DOUBLE_EQ(s["cost"]["usd"].get<double>(), 35.76 * expected / 3600.0);
  fs::remove_all(dir);
}

TEST(OpTraceMode, AMalformedTraceIsBadInput) {
  const fs::path dir = ::wse::testing::temp_path("wse_op_trace_bad");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "bad.jsonl") << "{\"format\": \"something else\"}\n";
  std::ofstream(dir / "exp.yaml") << "experiment: {name: trace, mode: op_trace}\n"
                                  << "include: " << WSE_SOURCE_DIR << "/configs/hardware/trn2_48xlarge.yaml\n"
                                  << "op_trace: {path: " << (dir / "bad.jsonl").string() << "}\n";
  Result r = wse_emu(
      "run '" + (dir / "exp.yaml").string() + "' --quiet --out '" + (dir / "out").string() + "'", dir / "io");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bad.jsonl:1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wse::testing
