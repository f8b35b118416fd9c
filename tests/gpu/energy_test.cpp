// The energy of a run (apps/experiments/energy.h): the power model by hand, its keys read
// from the configuration, and one small gpu_only run's energy derived by hand.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/experiments/energy.h"
#include "systemc_models/config/config.h"
#include "util/cli_harness.h"

namespace wse::experiments {
namespace {

RunEnergy read_energy(const std::string& yaml, const RunCost& fleet, workloads::DType matmul) {
  config::Document doc = config::parse(yaml, "test.yaml");
  config::Section root = doc.root();
  workloads::TransformerModel model;
  model.linear_dtype = matmul;
  RunEnergy e = read_run_energy(root, fleet, model);
  doc.finish();
  return e;
}

// The default system's fleet with its shipped power models: one trn2.48xlarge (3,680 W
// static; 0.532 pJ per BF16 FLOP, 31.2 pJ per HBM byte, 60 pJ per NeuronLink byte) and
// four CS-3s (6,980 W each; 0.15 pJ per FLOP, 1.43 pJ per SRAM byte, 0.037 pJ per fabric
// byte-hop, 60 pJ per pipeline-link byte), EFA at 120 pJ per byte, PUE 1.15. Over 100 s:
//   Trainium: 3,680 x 100 = 368,000 J static; 1e15 FLOP x 0.532 pJ = 532 J; 1e12 HBM B
//     x 31.2 pJ = 31.2 J; 1e11 link B x 60 pJ = 6 J: 368,569.2 J.
//   CS-3: 4 x 6,980 x 100 = 2,792,000 J; 1e16 x 0.15 pJ = 1,500 J; 1e15 SRAM B x 1.43 pJ
//     = 1,430 J; 1e14 B-hops x 0.037 pJ = 3.7 J; 1e9 B x 60 pJ = 0.06 J: 2,794,933.76 J.
//   EFA: 1e11 B x 120 pJ = 12 J.
//   IT 3,163,514.96 J; x 1.15 = 3,638,042.204 J, 36,380.42204 W over 100 s; 100,000
//   output tokens: 0.0274873 per joule; with 900,000 prompt tokens 0.274873 per joule.
TEST(RunEnergy, DefaultFleetByHand) {
  RunCost fleet;
  fleet.fleet = {FleetPart{"trainium_instance", 1, 0.0}, FleetPart{"cs3", 4, 0.0}};
  const RunEnergy e = read_energy("{}", fleet, workloads::DType::bf16);
  std::map<std::string, Activity> a;
  a["trainium_instance"] = Activity{1e15, 1e12, 1e11, 0.0};
  a["cs3"] = Activity{1e16, 1e15, 1e9, 1e14};
  const nlohmann::json s = e.summary(100.0, a, 1e11, 100000, 900000);
  const nlohmann::json& m = s["machines"];
  EXPECT_DOUBLE_EQ(m["trainium_instance"]["static_j"].get<double>(), 368000.0);
  EXPECT_NEAR(m["trainium_instance"]["compute_j"].get<double>(), 532.0, 1e-9);
  EXPECT_NEAR(m["trainium_instance"]["hbm_j"].get<double>(), 31.2, 1e-12);
  EXPECT_NEAR(m["trainium_instance"]["neuronlink_j"].get<double>(), 6.0, 1e-12);
  EXPECT_NEAR(m["trainium_instance"]["joules"].get<double>(), 368569.2, 1e-6);
  EXPECT_EQ(m["cs3"]["count"], 4);
  EXPECT_NEAR(m["cs3"]["sram_j"].get<double>(), 1430.0, 1e-9);
  EXPECT_NEAR(m["cs3"]["fabric_j"].get<double>(), 3.7, 1e-12);
  EXPECT_NEAR(m["cs3"]["pipeline_link_j"].get<double>(), 0.06, 1e-15);
  EXPECT_NEAR(m["cs3"]["joules"].get<double>(), 2794933.76, 1e-6);
  EXPECT_NEAR(m["efa"]["joules"].get<double>(), 12.0, 1e-12);
  EXPECT_NEAR(s["it_joules"].get<double>(), 3163514.96, 1e-6);
  EXPECT_NEAR(s["joules"].get<double>(), 3638042.204, 1e-6);
  EXPECT_NEAR(s["mean_power_w"].get<double>(), 36380.42204, 1e-8);
  EXPECT_NEAR(s["tokens_per_joule"]["output"].get<double>(), 100000.0 / 3638042.204, 1e-15);
  EXPECT_NEAR(s["tokens_per_joule"]["all"].get<double>(), 1e6 / 3638042.204, 1e-14);
}

// An FP8 model's matmuls are priced at the class's 8-bit figure (p5.48xlarge: 0.260 pJ);
// the CS-3 has no 8-bit figure and prices them at its 16-bit one. Keys set in the
// configuration replace the defaults.
TEST(RunEnergy, FlopFigureFollowsTheMatmulTypeAndKeysOverrideDefaults) {
  RunCost fleet;
  fleet.fleet = {FleetPart{"gpu_instance", 2, 0.0}, FleetPart{"cs3", 1, 0.0}};
  const RunEnergy e =
      read_energy("energy:\n  pue: 1.5\n  gpu_instance:\n    static_w: 1000\n", fleet, workloads::DType::fp8);
  ASSERT_EQ(e.machines.size(), 2u);
  EXPECT_DOUBLE_EQ(e.pue, 1.5);
  const PowerModel& gpu = e.machines[0];
  EXPECT_DOUBLE_EQ(gpu.static_w, 1000.0);
  // 2 x 1,000 W x 10 s + 1e15 FP8 FLOP x 0.260 pJ = 20,000 + 260 J.
  EXPECT_NEAR(gpu.joules(10.0, Activity{1e15, 0.0, 0.0, 0.0}), 20260.0, 1e-9);
  // 6,980 W x 10 s + 1e15 FLOP x 0.15 pJ = 69,800 + 150 J.
  EXPECT_NEAR(e.machines[1].joules(10.0, Activity{1e15, 0.0, 0.0, 0.0}), 69950.0, 1e-9);
}

TEST(RunEnergy, PueBelowOneIsBadInputAtItsKey) {
  RunCost fleet;
  fleet.fleet = {FleetPart{"gpu_instance", 1, 0.0}};
  try {
    read_energy("energy:\n  pue: 0.9\n", fleet, workloads::DType::bf16);
    FAIL() << "no error";
  } catch (const config::ConfigError& err) {
    const std::string what = err.what();
    EXPECT_NE(what.find("test.yaml:2"), std::string::npos) << what;
    EXPECT_NE(what.find("energy.pue"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace wse::experiments

namespace wse::testing {
namespace {

namespace fs = std::filesystem;

// One request of the default trace on one p5.48xlarge (gpu_only, workload.trace.limit=1):
// 374 prompt tokens and 44 output tokens, tensor parallelism 8 over the instance's 8 GPUs.
// Llama-3.1-70B (hidden 8,192, 80 layers, 64 query heads of 128, 8 KV heads, MLP 28,672,
// vocabulary 128,256), by hand:
//   matrix weights per layer: q, o 8,192^2 each, k, v 8,192 x 1,024 each, gate, up, down
//   8,192 x 28,672 each = 855,638,016; 417 tokens pass the layers (374 prompt, 43 decode
//   steps): 2 x 855,638,016 x 80 x 417 = 57,088,168,427,520 FLOPs; the LM head on 44 tokens
//   (the prompt's last, 43 steps): 2 x 8,192 x 128,256 x 44 = 92,459,237,376; prefill
//   attention (QK^T and PV, causal): 4 x 8,192 x (374 x 375 / 2) x 80 = 183,828,480,000;
//   decode step k = 1..43 attends over 375 + k keys (374 + k cached and its own):
//   4 x 8,192 x (376 + ... + 418 = 17,071) x 80 = 44,750,602,240. In all
//   57,409,206,747,136 FLOPs x 0.521 pJ = 29.91020 J.
//   NVLink: two all-reduces per layer of 8,192 x 2 B per token, each GPU sending its buffer:
//   160 x 16,384 B x 417 tokens x 8 GPUs = 8,745,123,840 B x 60 pJ = 0.5247074 J.
//   Static: 3,440 W over the run's simulated time. The HBM term is set to 0 here (its
//   bytes are the kernels' traffic: weights, KV and activations).
//   joules = (static + 29.91020 + 0.5247074) x 1.15; tokens per joule 44 and 418 over it.
TEST(GpuOnlyEnergy, OneRequestByHand) {
  const fs::path dir = temp_path("wse_energy_one_request");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const Result r = wse_emu(
      "run configs/experiments/gpu_only.yaml --quiet --set workload.trace.limit=1 "
      "--set energy.gpu_instance.pj_per_hbm_byte=0 --out '" +
          (dir / "run").string() + "'",
      dir / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir / "run" / "summary.json"));
  fs::remove_all(dir);
  ASSERT_EQ(s["requests"]["completed"], 1);
  ASSERT_EQ(s["throughput"]["output_tokens"], 44);
  const nlohmann::json& e = s["energy"];
  const nlohmann::json& g = e["machines"]["gpu_instance"];
  const double t = s["simulated_time_s"].get<double>();
  EXPECT_DOUBLE_EQ(g["static_j"].get<double>(), 3440.0 * t);
  EXPECT_NEAR(g["compute_j"].get<double>(), 57409206747136.0 * 0.521e-12, 1e-9);
  EXPECT_NEAR(g["nvlink_j"].get<double>(), 0.5247074304, 1e-12);
  EXPECT_EQ(g["hbm_j"].get<double>(), 0.0);
  const double joules = (3440.0 * t + 57409206747136.0 * 0.521e-12 + 0.5247074304) * 1.15;
  EXPECT_NEAR(e["joules"].get<double>(), joules, 1e-9);
  EXPECT_NEAR(e["mean_power_w"].get<double>(), joules / t, 1e-6);
  EXPECT_NEAR(e["tokens_per_joule"]["output"].get<double>(), 44.0 / joules, 1e-15);
  EXPECT_NEAR(e["tokens_per_joule"]["all"].get<double>(), 418.0 / joules, 1e-15);
  EXPECT_FALSE(e["machines"].contains("efa"));  // no KV crosses a network in gpu_only
}

// The KV-transfer leg alone (mode kv_transfer over one shared link), one request, by hand:
// Llama-3.1-70B keeps 80 layers x 2 (K, V) x 8 KV heads x 128 x 2 B = 327,680 B per token,
// so a 1,000-token prompt's cache is 327,680,000 B. The link (kv_link.yaml: 3.2 Tb/s =
// 400 GB/s, 15 us) takes it in 327,680,000 / 4e11 = 819.2 us + 15 us: T = 834.2 us.
// The ends (kv_link.yaml: one trn2.48xlarge sending, kv_transfer.receivers = 4 CS-3s):
//   energy: static (3,680 + 4 x 6,980 = 31,600 W) x 834.2 us = 26.36072 J; the link's
//   bytes at the EFA figure, 120 pJ x 327,680,000 = 0.0393216 J; IT 26.4000416 J, x PUE
//   1.15 = 30.36004784 J; mean power 30.36004784 / 834.2e-6 = 36,394.207... W; 1,000
//   prompt tokens, no output token: 1,000 / 30.36004784 = 32.9380... tokens per joule.
//   cost: $35.76 + 4 x $95.06 = $416.00 per hour x 834.2 us / 3,600 s = $9.639644e-5,
//   $0.09639644 per million tokens.
TEST(PassEnergy, KvTransferOverOneLinkByHand) {
  const fs::path dir = temp_path("wse_energy_kv_link");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "one.csv") << "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                 << "2023-11-16 18:15:46.6805900,1000,10\n";
  const Result r = wse_emu("run configs/experiments/kv_link.yaml --quiet --set workload.trace.path='" +
                               (dir / "one.csv").string() + "' --set kv_transfer.receivers=4 --out '" +
                               (dir / "run").string() + "'",
                           dir / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir / "run" / "summary.json"));
  fs::remove_all(dir);
  ASSERT_EQ(s["kv_transfer"]["bytes"], 327680000);
  const double t = 834.2e-6;
  EXPECT_NEAR(s["simulated_time_s"].get<double>(), t, 1e-12);
  const nlohmann::json& e = s["energy"];
  EXPECT_EQ(e["machines"]["trainium_instance"]["count"], 1);
  EXPECT_EQ(e["machines"]["cs3"]["count"], 4);
  EXPECT_NEAR(e["machines"]["trainium_instance"]["static_j"].get<double>(), 3680.0 * t, 1e-9);
  EXPECT_NEAR(e["machines"]["cs3"]["static_j"].get<double>(), 4 * 6980.0 * t, 1e-9);
  EXPECT_NEAR(e["machines"]["efa"]["joules"].get<double>(), 0.0393216, 1e-12);
  EXPECT_NEAR(e["it_joules"].get<double>(), 26.4000416, 1e-9);
  EXPECT_NEAR(e["joules"].get<double>(), 30.36004784, 1e-9);
  EXPECT_NEAR(e["mean_power_w"].get<double>(), 30.36004784 / t, 1e-5);
  EXPECT_EQ(e["tokens_per_joule"]["output"].get<double>(), 0.0);
  EXPECT_NEAR(e["tokens_per_joule"]["all"].get<double>(), 1000.0 / 30.36004784, 1e-9);
  const nlohmann::json& c = s["cost"];
  EXPECT_NEAR(c["fleet_usd_per_hour"].get<double>(), 416.0, 1e-12);
  EXPECT_NEAR(c["usd"].get<double>(), 9.639644444e-5, 1e-13);
  EXPECT_NEAR(c["usd_per_million_tokens"].get<double>(), 0.09639644444, 1e-10);
}

// A decode step alone (mode trainium_decode): the instance held for the step's time, by
// hand with the dynamic terms set to 0: 3,680 W x itl_s x 1.15 joules and $35.76 x itl_s
// / 3,600; 8 sequences yield 8 output tokens and no prompt token. With the default
// figures the step's own counts add FLOP, HBM and NeuronLink energy.
TEST(PassEnergy, TrainiumDecodeStepHoldsTheInstanceForTheStep) {
  const fs::path dir = temp_path("wse_energy_trn_decode");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string exp =
      "run configs/experiments/trainium_latency/llama70b_trn2_decode.yaml --quiet "
      "--set batch.sequences=8 ";
  const Result r = wse_emu(exp +
                               "--set energy.trainium_instance.pj_per_flop_16bit=0 --set "
                               "energy.trainium_instance.pj_per_hbm_byte=0 --set "
                               "energy.trainium_instance.pj_per_neuronlink_byte=0 --out '" +
                               (dir / "static").string() + "'",
                           dir / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Result d = wse_emu(exp + "--out '" + (dir / "run").string() + "'", dir / "io");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir / "static" / "summary.json"));
  const nlohmann::json full = nlohmann::json::parse(slurp(dir / "run" / "summary.json"));
  fs::remove_all(dir);
  const double t = s["trainium_decode"]["itl_s"].get<double>();
  ASSERT_GT(t, 0.0);
  const double joules = 3680.0 * t * 1.15;
  EXPECT_NEAR(s["energy"]["joules"].get<double>(), joules, 1e-12);
  EXPECT_NEAR(s["energy"]["tokens_per_joule"]["output"].get<double>(), 8.0 / joules, 1e-9);
  EXPECT_NEAR(s["energy"]["tokens_per_joule"]["all"].get<double>(), 8.0 / joules, 1e-9);
  EXPECT_NEAR(s["cost"]["usd"].get<double>(), 35.76 * t / 3600.0, 1e-15);
  EXPECT_NEAR(s["cost"]["usd_per_million_output_tokens"].get<double>(), 35.76 * t / 3600.0 / 8.0 * 1e6, 1e-9);
  const nlohmann::json& m = full["energy"]["machines"]["trainium_instance"];
  for (const char* term : {"compute_j", "hbm_j", "neuronlink_j"})
    EXPECT_GT(m[term].get<double>(), 0.0) << term;
  EXPECT_NEAR(m["joules"].get<double>(),
              m["static_j"].get<double>() + m["compute_j"].get<double>() + m["hbm_j"].get<double>() +
                  m["neuronlink_j"].get<double>(),
              1e-9);
}

// Every single-pass mode's summary has `energy` and `cost`, and `wse-emu compare` shows
// their tokens per joule and dollars per million tokens.
TEST(PassEnergy, SinglePassModesReportEnergyAndCostAndCompareShowsThem) {
  const fs::path dir = temp_path("wse_energy_single_pass");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const Result p = wse_emu(
      "run configs/experiments/trainium_latency/llama70b_trn2_prefill.yaml --quiet --set prompt.tokens=256 "
      "--out '" +
          (dir / "prefill").string() + "'",
      dir / "io");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const Result d =
      wse_emu("run configs/experiments/trainium_latency/llama70b_trn2_decode.yaml --quiet --out '" +
                  (dir / "decode").string() + "'",
              dir / "io");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir / "prefill" / "summary.json"));
  const double ttft = s["trainium_prefill"]["ttft_s"].get<double>();
  EXPECT_DOUBLE_EQ(s["cost"]["usd"].get<double>(), 35.76 * ttft / 3600.0);
  // 256 prompt tokens and the first output token.
  const double j = s["energy"]["joules"].get<double>();
  EXPECT_GT(j, 3680.0 * ttft * 1.15);
  EXPECT_NEAR(s["energy"]["tokens_per_joule"]["all"].get<double>(), 257.0 / j, 1e-12);
  const Result c = wse_emu("compare '" + (dir / "prefill").string() + "' '" + (dir / "decode").string() +
                               "' --out '" + (dir / "cmp").string() + "'",
                           dir / "io");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string csv = slurp(dir / "cmp" / "compare.csv");
  fs::remove_all(dir);
  for (const char* row : {"tokens_per_joule_all,", "usd_per_million_tokens,", "fleet_usd_per_hour,"}) {
    const std::size_t at = csv.find(row);
    ASSERT_NE(at, std::string::npos) << row << "\n" << csv;
    const std::string line = csv.substr(at, csv.find('\n', at) - at);
    EXPECT_EQ(line.find(",-"), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace wse::testing
