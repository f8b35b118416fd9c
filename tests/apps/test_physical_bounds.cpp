// Physical sanity of every shipped experiment: each one in configs/experiments/ runs on
// its first requests through the real command, and no simulated time may beat what the
// hardware in its resolved configuration can do at best:
//  - a request's prefill (first chunk start to last chunk end) is no faster than its
//    GEMM FLOPs (linear FLOPs per token x prompt tokens not served from a prefix cache)
//    over the peak FLOPs of the prefill machine;
//  - a decode step (a request's time per output token) is no faster than the weight bytes
//    one token's GEMMs read over the memory bandwidth of the decode machine (HBM on
//    Trainium and on a tensor-parallel group of GPUs, the SRAM read ports of every PE on
//    the wafers);
//  - a KV transfer is no faster than its bytes over the narrowest link on its way (the
//    sender's adapters, the receivers' adapters, and on CS-3s their system I/O).
// The bounds are computed here from the resolved configuration, independently of the
// models that produced the times. Beside them, every experiment that runs Trainium gives
// trainium.floor, and no pass beats it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "systemc_models/units/units.h"
#include "util/cli_harness.h"
#include "util/shipped_files.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::map<std::string, std::string>> csv_records(const std::string& text) {
  std::vector<std::map<std::string, std::string>> out;
  std::istringstream in(text);
  std::vector<std::string> header;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    if (header.empty()) {
      header = cells;
      continue;
    }
    std::map<std::string, std::string> rec;
    for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) rec[header[i]] = cells[i];
    out.push_back(std::move(rec));
  }
  return out;
}

double num(const std::map<std::string, std::string>& r, const std::string& k) {
  const auto it = r.find(k);
  return it == r.end() || it->second.empty() ? -1.0 : std::stod(it->second);
}
double bw(const YAML::Node& n) { return parse_bandwidth(n.as<std::string>()).bytes_per_s; }
double hz(const YAML::Node& n) { return parse_frequency(n.as<std::string>()).hz; }

struct Bounds {
  double prefill_flops_per_s = 0;  // peak of one prefill machine (0: no prefill in this mode)
  double decode_bytes_per_s = 0;   // memory bandwidth of one decode machine
  double kv_bytes_per_s = 0;       // narrowest link of a KV transfer (0: no transfer)
};

// The chips that run a Trainium pass: the prefill group (tp_degree x lnc physical
// cores), at most the instance's chips (a torus [x, y], or `chips` on a switch).
double trainium_chips(const YAML::Node& c) {
  const YAML::Node i = c["instance"];
  double chips = 1;
  if (i["topology"] && i["topology"].as<std::string>() == "switch") {
    chips = i["chips"].as<double>();
  } else {
    for (const auto& d : i["torus"]) chips *= d.as<double>();
  }
  const double cores = c["prefill"]["tp_degree"].as<double>() * c["prefill"]["lnc"].as<double>();
  return std::min(chips, std::max(1.0, std::ceil(cores / c["trainium"]["cores"].as<double>())));
}
double trainium_flops(const YAML::Node& c) {
  const YAML::Node t = c["trainium"]["neuroncore"]["tensor"];
  const double moving =
      std::max(t["moving_per_cycle_bf16"].as<double>(), t["moving_per_cycle_fp8"].as<double>());
  const double per_core = t["rows"].as<double>() * t["columns"].as<double>() * 2.0 * hz(t["clock"]) * moving;
  return per_core * c["trainium"]["cores"].as<double>() * trainium_chips(c);
}
// One tensor-parallel group of GPUs (a gpu_only machine): tp_degree GPUs.
double gpu_flops(const YAML::Node& c) {
  const YAML::Node t = c["gpu"]["tensor"];
  const double per_clock =
      std::max(t["flops_per_clock_bf16"].as<double>(), t["flops_per_clock_fp8"].as<double>());
  return c["gpu"]["sms"].as<double>() * per_clock * hz(t["clock"]) * c["gpu_pass"]["tp_degree"].as<double>();
}
double gpu_hbm(const YAML::Node& c) {
  return bw(c["gpu"]["hbm"]["peak_bandwidth"]) * c["gpu_pass"]["tp_degree"].as<double>();
}
double trainium_hbm(const YAML::Node& c) {
  return bw(c["trainium"]["hbm"]["peak_bandwidth"]) * trainium_chips(c);
}
double wafers(const YAML::Node& c) { return c["decode"] ? c["decode"]["wafers"].as<double>() : 1.0; }
double wafer_pes(const YAML::Node& c) {
  return c["wafer"]["width"].as<double>() * c["wafer"]["height"].as<double>();
}
double wafer_sram_bw(const YAML::Node& c) {
  const YAML::Node pe = c["wafer"]["pe"];
  return wafer_pes(c) * pe["sram_read_ports"].as<double>() * pe["sram_port_bits"].as<double>() / 8.0 *
         hz(c["wafer"]["clock"]) * wafers(c);
}
double wafer_flops(const YAML::Node& c) {
  return wafer_pes(c) * c["wafer"]["pe"]["simd_fp16_fmac"].as<double>() * 2.0 * hz(c["wafer"]["clock"]) *
         wafers(c);
}
double efa_side(const YAML::Node& side) { return side["adapters"].as<double>() * bw(side["line_rate"]); }

Bounds bounds_of(const YAML::Node& c) {
  const std::string mode = c["experiment"]["mode"].as<std::string>();
  Bounds b;
  if (mode == "trainium_only" || mode == "trainium_disaggregated") {
    b.prefill_flops_per_s = trainium_flops(c);
    b.decode_bytes_per_s = trainium_hbm(c);
  }
  if (mode == "gpu_only") {
    b.prefill_flops_per_s = gpu_flops(c);
    b.decode_bytes_per_s = gpu_hbm(c);
  }
  if (mode == "trainium_prefill_gpu_decode") {
    b.prefill_flops_per_s = trainium_flops(c);
    b.decode_bytes_per_s = gpu_hbm(c);
    b.kv_bytes_per_s = std::min(efa_side(c["efa"]["sender"]), efa_side(c["efa"]["receiver"]));
  }
  if (mode == "trainium_disaggregated") {
    b.kv_bytes_per_s = std::min(efa_side(c["efa"]["sender"]), efa_side(c["efa"]["receiver"]));
  }
  if (mode == "disaggregated") {
    b.prefill_flops_per_s = trainium_flops(c);
    b.decode_bytes_per_s = wafer_sram_bw(c);
    // A request's KV spreads over the decode system's wafers, each with its own
    // attachment and I/O edge.
    const double per_wafer = std::min(efa_side(c["efa"]["receiver"]), bw(c["wafer"]["io_bandwidth"]));
    b.kv_bytes_per_s = std::min(efa_side(c["efa"]["sender"]), per_wafer * wafers(c));
  }
  if (mode == "gpu_prefill_cs3_decode") {
    b.prefill_flops_per_s = gpu_flops(c);
    b.decode_bytes_per_s = wafer_sram_bw(c);
    const double per_wafer = std::min(efa_side(c["efa"]["receiver"]), bw(c["wafer"]["io_bandwidth"]));
    b.kv_bytes_per_s = std::min(efa_side(c["efa"]["sender"]), per_wafer * wafers(c));
  }
  if (mode == "wafer_only") {
    b.prefill_flops_per_s = wafer_flops(c);
    b.decode_bytes_per_s = wafer_sram_bw(c);
  }
  if (mode == "kv_transfer") {
    b.kv_bytes_per_s = c["kv_transfer"]["network"].as<std::string>() == "efa"
                           ? std::min(efa_side(c["efa"]["sender"]), efa_side(c["efa"]["receiver"]))
                           : bw(c["kv_transfer"]["link"]["bandwidth"]);
  }
  return b;
}

class PhysicalBounds : public ::testing::TestWithParam<std::string> {};

TEST_P(PhysicalBounds, NoSimulatedTimeBeatsTheHardware) {
  const fs::path exp = fs::path(WSE_SOURCE_DIR) / "configs/experiments" / GetParam();
  const fs::path scratch = ::wse::testing::temp_path("wse_bounds_" + exp.stem().string());
  fs::remove_all(scratch);
  const fs::path out = scratch / "run";
  const Result r =
      wse_emu("run '" + exp.string() + "' --quiet --set workload.trace.limit=12 --out '" + out.string() + "'",
              scratch);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const YAML::Node c = YAML::LoadFile((out / "config.resolved.yaml").string());
  const nlohmann::json s = nlohmann::json::parse(slurp(out / "summary.json"));
  const Bounds b = bounds_of(c);
  const double flops_per_token = s["model"].value("linear_flops_per_token", 0.0);
  const double token_bytes = s["model"].value("token_weight_bytes", 0.0);
  // Speculative decoding (serving.speculative): a step emits up to tokens + 1 tokens per
  // request while its target pass reads the weights once, so the bound per token is the
  // step's over that many.
  const YAML::Node spec = c["serving"] ? c["serving"]["speculative"] : YAML::Node();
  const double tokens_per_step = spec && spec["tokens"] ? spec["tokens"].as<double>() + 1 : 1.0;
  const auto recs = csv_records(slurp(out / "requests.csv"));
  ASSERT_FALSE(recs.empty());
  int checked = 0;
  for (const auto& rec : recs) {
    const std::string id = "request " + rec.at("request");
    if (b.prefill_flops_per_s > 0 && num(rec, "prefill_end_s") >= 0) {
      const double tokens = num(rec, "input_tokens") - std::max(0.0, num(rec, "prefix_hit_tokens"));
      const double bound = flops_per_token * tokens / b.prefill_flops_per_s;
      EXPECT_GE(num(rec, "prefill_end_s") - num(rec, "prefill_start_s"), bound * (1 - 1e-9))
          << id << " prefill";
      ++checked;
    }
    if (b.decode_bytes_per_s > 0 && num(rec, "tokens_out") >= 2) {
      const double tpot =
          (num(rec, "last_token_s") - num(rec, "first_token_s")) / (num(rec, "tokens_out") - 1);
      EXPECT_GE(tpot, token_bytes / b.decode_bytes_per_s / tokens_per_step * (1 - 1e-9))
          << id << " decode step";
      ++checked;
    }
    if (b.kv_bytes_per_s > 0 && num(rec, "kv_bytes") > 0) {
      const double t = num(rec, "transfer_end_s") - num(rec, "transfer_start_s");
      EXPECT_GE(t, num(rec, "kv_bytes") / b.kv_bytes_per_s * (1 - 1e-9)) << id << " KV transfer";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0) << "no bound applies to " << GetParam();
  // Every experiment that runs Trainium machines gives their floor beside the result, and
  // no pass beats it (each pass's simulated time is at least its floor, so the means are).
  if (c["trainium"]) {
    const nlohmann::json& floor = s["trainium"]["floor"];
    ASSERT_TRUE(floor.is_object() && !floor.empty()) << GetParam() << ": no trainium.floor";
    for (const auto& [pass, f] : floor.items()) {
      EXPECT_GT(f["passes"].get<double>(), 0.0) << pass;
      EXPECT_GE(f["simulated_s"].get<double>(), f["step_s"].get<double>()) << pass;
      EXPECT_GE(f["ratio"].get<double>(), 1.0) << pass;
    }
  }
  fs::remove_all(scratch);
}

std::vector<std::string> shipped_experiments() {
  std::vector<std::string> names;
  for (const std::string& name : shipped_yaml_files("configs/experiments")) {
    // op_trace runs an operator file, not a request trace: it has no requests to bound.
    const YAML::Node c = YAML::LoadFile((fs::path(WSE_SOURCE_DIR) / "configs/experiments" / name).string());
    if (c["experiment"] && c["experiment"]["mode"] && c["experiment"]["mode"].as<std::string>() == "op_trace")
      continue;
    names.push_back(name);
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Shipped, PhysicalBounds, ::testing::ValuesIn(shipped_experiments()),
                         file_param_name);

}  // namespace
}  // namespace wse::testing
