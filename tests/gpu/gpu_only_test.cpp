// The gpu_only mode through the command: a short run reports gpu.floor as trainium.floor
// is reported, and a model whose weights do not fit the GPUs' HBM at the chosen tensor
// parallelism is one message naming the key, exit 2, nothing written.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;

class GpuOnly : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::wse::testing::temp_path(
        "wse_gpu_only_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(GpuOnly, ShortRunReportsTheFloorOfBothPhases) {
  const Result r =
      wse_emu("run configs/experiments/gpu_only.yaml --quiet --set workload.trace.limit=8 --out '" +
                  (dir_ / "run").string() + "'",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir_ / "run" / "summary.json"));
  EXPECT_EQ(s["mode"], "gpu_only");
  EXPECT_EQ(s["requests"]["completed"], 8);
  for (const char* phase : {"prefill_pass", "decode_step"}) {
    const nlohmann::json& f = s["gpu"]["floor"][phase];
    ASSERT_TRUE(f.is_object()) << phase;
    const double step = f["step_s"].get<double>();
    // The mean of each pass's largest term is at least each term's mean.
    for (const char* term : {"compute_s", "hbm_s", "collective_s"}) {
      EXPECT_GE(step, f[term].get<double>()) << phase << " " << term;
    }
    // No pass beats its floor.
    EXPECT_GE(f["ratio"].get<double>(), 1.0) << phase;
    EXPECT_GT(f["passes"].get<double>(), 0.0) << phase;
  }
  // A decode step of Llama-3.1-70B on eight H100s is bound by HBM (the weights), a
  // prefill pass of the trace's prompts by the tensor cores.
  EXPECT_GT(s["gpu"]["floor"]["decode_step"]["hbm_s"].get<double>(),
            s["gpu"]["floor"]["decode_step"]["compute_s"].get<double>());
  EXPECT_GT(s["gpu"]["floor"]["prefill_pass"]["compute_s"].get<double>(),
            s["gpu"]["floor"]["prefill_pass"]["hbm_s"].get<double>());
}

// The run's cost: one p5.48xlarge at $55.04 per hour for the simulated time; per million
// output tokens, and per million tokens with the completed requests' prompts.
TEST_F(GpuOnly, CostIsTheInstanceHourlyPriceOverTheRun) {
  const Result r =
      wse_emu("run configs/experiments/gpu_only.yaml --quiet --set workload.trace.limit=8 --out '" +
                  (dir_ / "run").string() + "'",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir_ / "run" / "summary.json"));
  const nlohmann::json& c = s["cost"];
  const double t = s["simulated_time_s"].get<double>();
  EXPECT_DOUBLE_EQ(c["fleet_usd_per_hour"].get<double>(), 55.04);
  EXPECT_EQ(c["fleet"]["gpu_instance"]["count"], 1);
  EXPECT_DOUBLE_EQ(c["usd"].get<double>(), 55.04 * t / 3600.0);
  const double out = s["throughput"]["output_tokens"].get<double>();
  EXPECT_DOUBLE_EQ(c["usd_per_million_output_tokens"].get<double>(), c["usd"].get<double>() / out * 1e6);
  EXPECT_LT(c["usd_per_million_tokens"].get<double>(), c["usd_per_million_output_tokens"].get<double>());
  // A p6-b200.48xlarge is priced at $113.9328 per hour.
  const fs::path exp = dir_ / "b200.yaml";
  std::ofstream(exp) << "include:\n  - " << WSE_SOURCE_DIR << "/configs/experiments/gpu_only.yaml\n  - "
                     << WSE_SOURCE_DIR << "/configs/hardware/p6_b200.yaml\n";
  const Result b = wse_emu("check '" + exp.string() + "' --params", dir_ / "io");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.out.find("113.9328"), std::string::npos);
}

TEST_F(GpuOnly, ModelBeyondTheHbmAtTheChosenTpIsOneMessage) {
  // Llama-3.1-70B's 131.42 GiB of bf16 weights on one 80 GiB H100.
  const fs::path out = dir_ / "run";
  const Result r =
      wse_emu("run configs/experiments/gpu_only.yaml --set gpu_pass.tp_degree=1 --out '" + out.string() + "'",
              dir_ / "io");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("gpu_pass.tp_degree"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("do not fit the HBM of tp_degree 1 GPU(s) (80.00 GiB each)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("at least 2"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(GpuOnly, TpDegreeMustDivideTheInstance) {
  const Result r = wse_emu("check configs/experiments/gpu_only.yaml --set gpu_pass.tp_degree=3", dir_ / "io");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("gpu_pass.tp_degree"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("must divide the instance's 8 GPUs"), std::string::npos) << r.err;
}

// Llama-3.1-405B over two p5.48xlarge, both mappings: tp 8 x pp 2 (the default, a stage
// per instance) and tp 16 (gpu_only_405b_tp16.yaml). One model copy of two instances;
// both floors carry an EFA term, and no pass beats its floor.
TEST_F(GpuOnly, ModelOverTwoInstancesRunsBothMappings) {
  for (const char* file : {"gpu_only_405b", "gpu_only_405b_tp16"}) {
    const fs::path out = dir_ / file;
    const Result r = wse_emu("run configs/experiments/" + std::string(file) +
                                 ".yaml --quiet --set workload.trace.limit=4 --out '" + out.string() + "'",
                             dir_ / "io");
    ASSERT_EQ(r.exit_code, 0) << file << ": " << r.err;
    const nlohmann::json s = nlohmann::json::parse(slurp(out / "summary.json"));
    EXPECT_EQ(s["requests"]["completed"], 4) << file;
    EXPECT_EQ(s["gpu"]["tp_groups"], 1) << file;
    EXPECT_EQ(s["cost"]["fleet"]["gpu_instance"]["count"], 2) << file;
    for (const char* phase : {"prefill_pass", "decode_step"}) {
      const nlohmann::json& f = s["gpu"]["floor"][phase];
      ASSERT_TRUE(f.contains("efa_s")) << file << " " << phase;
      EXPECT_GT(f["efa_s"].get<double>(), 0.0) << file << " " << phase;
      EXPECT_GE(f["step_s"].get<double>(), f["efa_s"].get<double>()) << file << " " << phase;
      EXPECT_GE(f["ratio"].get<double>(), 1.0) << file << " " << phase;
    }
  }
}

// Splits that cannot be built are refused at their key, exit 2.
TEST_F(GpuOnly, ImpossibleMultiInstanceSplitsAreOneMessageAtTheirKey) {
  const std::string exp = "configs/experiments/gpu_only_405b.yaml";
  const Result tp =
      wse_emu("check " + exp + " --set gpu_pass.tp_degree=12 --set gpu_pass.pp_degree=1", dir_ / "io");
  EXPECT_EQ(tp.exit_code, 2);
  EXPECT_NE(tp.err.find("gpu_pass.tp_degree"), std::string::npos) << tp.err;
  EXPECT_NE(tp.err.find("or be a multiple of them"), std::string::npos) << tp.err;
  // 405B's 755 GiB on one instance's 8 x 80 GiB.
  const Result fit = wse_emu("check " + exp + " --set gpu_pass.pp_degree=1", dir_ / "io");
  EXPECT_EQ(fit.exit_code, 2);
  EXPECT_NE(fit.err.find("gpu_pass.tp_degree"), std::string::npos) << fit.err;
  EXPECT_NE(fit.err.find("raise gpu_pass.pp_degree"), std::string::npos) << fit.err;
  EXPECT_EQ(std::count(fit.err.begin(), fit.err.end(), '\n'), 1) << fit.err;
  const Result inst = wse_emu("check " + exp + " --set serving.instances=3", dir_ / "io");
  EXPECT_EQ(inst.exit_code, 2);
  EXPECT_NE(inst.err.find("serving.instances"), std::string::npos) << inst.err;
  EXPECT_NE(inst.err.find("use a multiple of 2"), std::string::npos) << inst.err;
  const Result stages = wse_emu("check " + exp + " --set gpu_pass.tp_degree=16", dir_ / "io");
  EXPECT_EQ(stages.exit_code, 2);
  EXPECT_NE(stages.err.find("gpu_pass.pp_degree"), std::string::npos) << stages.err;
  // The disaggregated modes take a group over several instances (whole ones: the pool's
  // instances a multiple of the span), without pipeline stages.
  const Result dis = wse_emu(
      "check configs/experiments/trainium_prefill_gpu_decode.yaml --set gpu_pass.tp_degree=16", dir_ / "io");
  EXPECT_EQ(dis.exit_code, 2);
  EXPECT_NE(dis.err.find("serving.decode_instances"), std::string::npos) << dis.err;
  EXPECT_NE(dis.err.find("use a multiple of 2"), std::string::npos) << dis.err;
  const Result dis_prefill = wse_emu(
      "check configs/experiments/gpu_prefill_cs3_decode.yaml --set gpu_pass.tp_degree=16", dir_ / "io");
  EXPECT_EQ(dis_prefill.exit_code, 2);
  EXPECT_NE(dis_prefill.err.find("serving.prefill_instances"), std::string::npos) << dis_prefill.err;
  EXPECT_NE(dis_prefill.err.find("use a multiple of 2"), std::string::npos) << dis_prefill.err;
  const Result dis_pp = wse_emu(
      "check configs/experiments/trainium_prefill_gpu_decode.yaml --set "
      "gpu_pass.tp_degree=4 --set gpu_pass.pp_degree=2",
      dir_ / "io");
  EXPECT_EQ(dis_pp.exit_code, 2);
  EXPECT_NE(dis_pp.err.find("gpu_pass.pp_degree"), std::string::npos) << dis_pp.err;
  EXPECT_NE(dis_pp.err.find("mode gpu_only only"), std::string::npos) << dis_pp.err;
}

TEST_F(GpuOnly, EveryGpuInstanceFileRunsTheTrace) {
  // The H200 and B200 instances in place of the p5.48xlarge: same trace, faster steps
  // with more HBM bandwidth.
  double tpot_h100 = 0;
  for (const char* inst : {"p5_48xlarge", "p5en_48xlarge", "p6_b200"}) {
    const fs::path exp = dir_ / (std::string(inst) + ".yaml");
    std::ofstream(exp) << "include:\n  - " << WSE_SOURCE_DIR << "/configs/experiments/gpu_only.yaml\n  - "
                       << WSE_SOURCE_DIR << "/configs/hardware/" << inst << ".yaml\n";
    const Result r = wse_emu("run '" + exp.string() + "' --quiet --set workload.trace.limit=8 --out '" +
                                 (dir_ / inst).string() + "'",
                             dir_ / "io");
    ASSERT_EQ(r.exit_code, 0) << inst << ": " << r.err;
    const nlohmann::json s = nlohmann::json::parse(slurp(dir_ / inst / "summary.json"));
    const double tpot = s["requests"]["tpot_s"]["p50"].get<double>();
    if (std::string(inst) == "p5_48xlarge") {
      tpot_h100 = tpot;
    } else {
      EXPECT_LT(tpot, tpot_h100) << inst;
    }
  }
}

// Trainium prefill, EFA, GPU decode: both machines' floors, the KV transfer, and a fleet
// of one trn2.48xlarge ($35.76/h) and one p5.48xlarge ($55.04/h) = $90.80 per hour.
TEST_F(GpuOnly, TrainiumPrefillGpuDecodeRuns) {
  const Result r = wse_emu(
      "run configs/experiments/trainium_prefill_gpu_decode.yaml --quiet --set workload.trace.limit=8 "
      "--out '" +
          (dir_ / "run").string() + "'",
      dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir_ / "run" / "summary.json"));
  EXPECT_EQ(s["mode"], "trainium_prefill_gpu_decode");
  EXPECT_EQ(s["requests"]["completed"], 8);
  EXPECT_TRUE(s["trainium"]["floor"]["prefill_pass"].is_object());
  EXPECT_FALSE(s["trainium"]["floor"].contains("decode_step"));
  EXPECT_TRUE(s["gpu"]["floor"]["decode_step"].is_object());
  EXPECT_FALSE(s["gpu"]["floor"].contains("prefill_pass"));
  EXPECT_GT(s["kv_transfer"]["bytes"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(s["cost"]["fleet_usd_per_hour"].get<double>(), 35.76 + 55.04);
  // The EFA receivers are the GPU groups, derived: tp 4 makes two per p5.48xlarge. Typed
  // as well and disagreeing, they are refused, naming both keys.
  const Result derived = wse_emu(
      "check configs/experiments/trainium_prefill_gpu_decode.yaml --set gpu_pass.tp_degree=4", dir_ / "io");
  EXPECT_EQ(derived.exit_code, 0) << derived.err;
  EXPECT_NE(derived.out.find("receivers: 2"), std::string::npos) << derived.out;
  const Result bad = wse_emu(
      "check configs/experiments/trainium_prefill_gpu_decode.yaml --set gpu_pass.tp_degree=4 --set "
      "efa.receivers=1",
      dir_ / "io");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("efa.receivers"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("serving.decode_instances"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("gives 2 receivers"), std::string::npos) << bad.err;
}

// GPU prefill, EFA, CS-3 decode: the GPU prefill floor, the wafers' decode floor, the KV
// transfer, and a fleet of one p5.48xlarge ($55.04/h) and four CS-3s (4 x $95.06/h) =
// $435.28 per hour.
TEST_F(GpuOnly, GpuPrefillCs3DecodeRuns) {
  const Result r = wse_emu(
      "run configs/experiments/gpu_prefill_cs3_decode.yaml --quiet --set workload.trace.limit=8 --out '" +
          (dir_ / "run").string() + "'",
      dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json s = nlohmann::json::parse(slurp(dir_ / "run" / "summary.json"));
  EXPECT_EQ(s["mode"], "gpu_prefill_cs3_decode");
  EXPECT_EQ(s["requests"]["completed"], 8);
  EXPECT_TRUE(s["gpu"]["floor"]["prefill_pass"].is_object());
  EXPECT_FALSE(s["gpu"]["floor"].contains("decode_step"));
  EXPECT_TRUE(s["wafer"]["floor"]["decode_step"].is_object());
  EXPECT_FALSE(s.contains("trainium"));
  EXPECT_GT(s["kv_transfer"]["bytes"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(s["cost"]["fleet_usd_per_hour"].get<double>(), 55.04 + 4 * 95.06);
  // The EFA senders are the GPU groups, derived: tp 4 makes two per p5.48xlarge. Typed as
  // well and disagreeing, they are refused, naming both keys.
  const Result derived = wse_emu(
      "check configs/experiments/gpu_prefill_cs3_decode.yaml --set gpu_pass.tp_degree=4", dir_ / "io");
  EXPECT_EQ(derived.exit_code, 0) << derived.err;
  EXPECT_NE(derived.out.find("senders: 2"), std::string::npos) << derived.out;
  const Result bad = wse_emu(
      "check configs/experiments/gpu_prefill_cs3_decode.yaml --set gpu_pass.tp_degree=4 --set efa.senders=1",
      dir_ / "io");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("efa.senders"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("serving.prefill_instances"), std::string::npos) << bad.err;
}

// Resource paths of summary.json `utilization` containing `part` and ending in `leaf`
// that were busy.
int busy_paths(const nlohmann::json& s, const std::string& part, const std::string& leaf) {
  int n = 0;
  for (const auto& [k, v] : s["utilization"].items()) {
    if (k.find(part) != std::string::npos && k.size() >= leaf.size() &&
        k.compare(k.size() - leaf.size(), leaf.size(), leaf) == 0 && v.get<double>() > 0.0) {
      ++n;
    }
  }
  return n;
}

// A tensor-parallel group over two instances as either pool of a disaggregated system:
// Llama-3.1-8B at tp 16 on two p5.48xlarge (8 GPUs each), one request (374 prompt
// tokens, 44 output tokens). Its passes are gpu_only's multi-node passes: the same
// request in gpu_only on the same two instances runs the same 43 decode steps (contexts
// 374 .. 416, one sequence) and the same prefill pass (374 tokens), so the means per pass
// are equal. The KV network has one endpoint per instance: decode on two instances, two
// EFA receivers, each taking half of every message; prefill on two, two senders.
TEST_F(GpuOnly, TensorParallelGroupOverTwoInstancesInTheDisaggregatedModes) {
  const std::string src = WSE_SOURCE_DIR;
  const std::string common = "  - " + src + "/configs/models/llama-3.1-8b.yaml\n  - " + src +
                             "/configs/workloads/azure_conv_1000.yaml\n  - " + src +
                             "/configs/hardware/p5_48xlarge.yaml\n";
  std::ofstream(dir_ / "gpu_only.yaml") << "experiment: {name: g, mode: gpu_only, seed: 1}\ninclude:\n"
                                        << common << "serving: {instances: 2}\ngpu_pass: {tp_degree: 16}\n";
  std::ofstream(dir_ / "trn_gpu.yaml")
      << "experiment: {name: t, mode: trainium_prefill_gpu_decode, seed: 1}\ninclude:\n"
      << common << "  - " << src << "/configs/hardware/trn2_48xlarge.yaml\n  - " << src
      << "/configs/hardware/efa_trn2_48xlarge.yaml\n  - " << src << "/configs/hardware/efa_p5_receiver.yaml\n"
      << "serving: {prefill_instances: 1, decode_instances: 2, kv_send: layerwise, kv_layers_per_message: "
         "8}\n"
      << "gpu_pass: {tp_degree: 16}\nefa: {srd: {grain: burst}}\n";
  std::ofstream(dir_ / "gpu_cs3.yaml")
      << "experiment: {name: c, mode: gpu_prefill_cs3_decode, seed: 1}\ninclude:\n"
      << common << "  - " << src << "/configs/hardware/cs3.yaml\n  - " << src
      << "/configs/hardware/cs3_decode.yaml\n  - " << src << "/configs/hardware/efa_trn2_48xlarge.yaml\n  - "
      << src << "/configs/hardware/efa_p5_sender.yaml\n  - " << src
      << "/configs/hardware/efa_cs3_receiver.yaml\n"
      << "wafer: {fabric: {tile: 8}}\ndecode: {wafers: 1}\n"
      << "serving: {prefill_instances: 2, decode_systems: 1, kv_send: layerwise, kv_layers_per_message: 8}\n"
      << "gpu_pass: {tp_degree: 16}\nefa: {srd: {grain: burst}}\n";
  std::map<std::string, nlohmann::json> s;
  for (const char* name : {"gpu_only", "trn_gpu", "gpu_cs3"}) {
    const Result r =
        wse_emu("run '" + (dir_ / (std::string(name) + ".yaml")).string() +
                    "' --quiet --set workload.trace.limit=1 --out '" + (dir_ / name).string() + "'",
                dir_ / "io");
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    s[name] = nlohmann::json::parse(slurp(dir_ / name / "summary.json"));
    EXPECT_EQ(s[name]["requests"]["completed"], 1) << name;
  }
  const nlohmann::json& only = s["gpu_only"]["gpu"]["floor"];
  // Decode on the two instances, behind Trainium prefill.
  const nlohmann::json& dec = s["trn_gpu"]["gpu"]["floor"]["decode_step"];
  EXPECT_EQ(s["trn_gpu"]["gpu"]["tp_groups"], 1);
  EXPECT_EQ(dec["passes"], 43);
  EXPECT_EQ(dec["passes"], only["decode_step"]["passes"]);
  EXPECT_DOUBLE_EQ(dec["simulated_s"].get<double>(), only["decode_step"]["simulated_s"].get<double>());
  EXPECT_GT(dec["efa_s"].get<double>(), 0.0);  // the all-reduces cross the instances
  EXPECT_EQ(s["trn_gpu"]["cost"]["fleet"]["gpu_instance"]["count"], 2);
  EXPECT_GT(busy_paths(s["trn_gpu"], ".receiver0.", ".rx"), 0);
  EXPECT_GT(busy_paths(s["trn_gpu"], ".receiver1.", ".rx"), 0);
  EXPECT_EQ(busy_paths(s["trn_gpu"], ".receiver2.", ".rx"), 0);
  // Prefill on the two instances, in front of a CS-3.
  const nlohmann::json& pre = s["gpu_cs3"]["gpu"]["floor"]["prefill_pass"];
  EXPECT_EQ(pre["passes"], 1);
  EXPECT_DOUBLE_EQ(pre["simulated_s"].get<double>(), only["prefill_pass"]["simulated_s"].get<double>());
  EXPECT_EQ(s["gpu_cs3"]["cost"]["fleet"]["gpu_instance"]["count"], 2);
  EXPECT_GT(busy_paths(s["gpu_cs3"], ".sender0.", ".tx"), 0);
  EXPECT_GT(busy_paths(s["gpu_cs3"], ".sender1.", ".tx"), 0);
  EXPECT_EQ(busy_paths(s["gpu_cs3"], ".sender2.", ".tx"), 0);
  // The KV bytes are the request's, split over the endpoints, not doubled.
  EXPECT_EQ(s["trn_gpu"]["kv_transfer"]["bytes"], s["gpu_cs3"]["kv_transfer"]["bytes"]);
}

TEST_F(GpuOnly, BenchesWriteTheirCsv) {
  const Result g =
      wse_emu("bench gpu-gemm --quick --quiet --out '" + (dir_ / "g").string() + "'", dir_ / "io");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  const std::string gemm = slurp(dir_ / "g" / "gpu_gemm.csv");
  // qkv at M = 8,192 is not in the quick sweep; M = 2,048 is: 64 x 128 tiles, 320 CTAs in
  // 3 waves (tests/gpu/gemm_test.cpp derives the same loss for 128 x 256 tiles at M 8,192).
  EXPECT_NE(gemm.find("qkv,bf16,2048,8192,1280,64,128,64,1,320,3,"), std::string::npos)
      << gemm.substr(0, 400);
  const Result a =
      wse_emu("bench gpu-allreduce --quick --quiet --out '" + (dir_ / "a").string() + "'", dir_ / "io");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(slurp(dir_ / "a" / "gpu_allreduce.csv").find("8,1048576,"), std::string::npos);
  // 2 x 8 GPUs, 1 MiB: 25.719716 us (GpuNode.HierarchicalAllReduceOverTwoNodesByHand).
  EXPECT_NE(slurp(dir_ / "a" / "gpu_allreduce_nodes.csv").find("2,16,1048576,"), std::string::npos);
}

}  // namespace
}  // namespace wse::testing
