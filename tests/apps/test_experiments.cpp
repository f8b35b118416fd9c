// End-to-end runs of shipped experiments through the real command: result files,
// summary keys, a hand-derived figure, determinism, and the resolved configuration
// running to the same result.
#include <algorithm>
#include <filesystem>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The rows of a CSV text without quoted commas (row 0 is the header).
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    rows.push_back(std::move(cells));
  }
  return rows;
}

class Experiments : public ScratchDirTest {
 protected:
  nlohmann::json summary(const fs::path& out) { return nlohmann::json::parse(slurp(out / "summary.json")); }
};

TEST_F(Experiments, KvTransferRunsOverTheEfaNetwork) {
  const fs::path out = dir_ / "run";
  Result r =
      wse_emu("run configs/experiments/kv_transfer_efa.yaml --quiet --set workload.trace.limit=50 --out '" +
                  out.string() + "'",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = summary(out);
  EXPECT_EQ(s["experiment"], "kv_transfer_efa");
  EXPECT_EQ(s["requests"]["completed"], 50);
  // Every adapter of the sender and of the four receivers, every path: a utilization.
  for (const char* k : {"efa.sender0.adapter0.tx", "efa.sender0.adapter15.tx", "efa.receiver3.adapter5.rx",
                        "efa.fabric.path63.forward"}) {
    ASSERT_TRUE(s["utilization"].contains(k)) << k;
    EXPECT_GE(s["utilization"][k].get<double>(), 0.0);
    EXPECT_LE(s["utilization"][k].get<double>(), 1.0);
  }
  EXPECT_GT(s["utilization"]["efa.sender0.adapter0.tx"].get<double>(), 0.0);
  // The table groups the 288 resources into classes, busiest first.
  EXPECT_THAT(r.out, HasSubstr("utilization by resource class"));
  EXPECT_THAT(r.out, HasSubstr("efa.sender*.adapter*.tx"));
  ASSERT_TRUE(s["utilization_by_class"].contains("efa.receiver*.adapter*.rx"));
  EXPECT_EQ(s["utilization_by_class"]["efa.receiver*.adapter*.rx"]["count"], 24);  // 4 CS-3 x 6 adapters
}

TEST_F(Experiments, DefaultIsTheDisaggregatedSystem) {
  // Trainium prefill, KV over EFA into four CS-3s, wafer decode: every part reports.
  const fs::path out = dir_ / "run";
  Result r = wse_emu("run configs/experiments/default.yaml --quiet --set workload.trace.limit=20 --out '" +
                         out.string() + "'",
                     dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = summary(out);
  EXPECT_EQ(s["experiment"], "default");
  EXPECT_EQ(s["mode"], "disaggregated");
  EXPECT_EQ(s["requests"]["completed"], 20);
  // Llama-3.1-70B's 80 layers over four CS-3s (balanced by weight bytes: the first holds
  // the embedding table, the last the LM head).
  std::uint32_t layers = 0;
  for (const auto& n : s["wafer"]["layers_per_wafer"]) layers += n.get<std::uint32_t>();
  EXPECT_EQ(layers, 80u);
  EXPECT_EQ(s["wafer"]["wafers_per_decode_system"], 4);
  // Every resource class of the system has a utilization.
  for (const char* k :
       {"machines.trn_prefill*.tensor_engine", "machines.trn_prefill*.hbm", "machines.trn_prefill*.sbuf_dma",
        "machines.trn_prefill*.neuronlink", "efa.sender*.adapter*.tx", "efa.receiver*.adapter*.rx",
        "kv_path.cs3_*.io_edge", "machines.cs3_system*.pe_compute", "machines.cs3_system*.sram_ports",
        "machines.cs3_system*.fabric_links", "machines.cs3_system*.pipeline_link"}) {
    ASSERT_TRUE(s["utilization_by_class"].contains(k)) << k;
  }
  EXPECT_EQ(s["utilization_by_class"]["kv_path.cs3_*.io_edge"]["count"], 4);
  EXPECT_GT(s["utilization_by_class"]["kv_path.cs3_*.io_edge"]["max"].get<double>(), 0.0);
  // KV of every prompt crossed (327,680 B per token), and decoding starts only once it
  // is in place.
  const auto rows = csv_rows(slurp(out / "requests.csv"));
  ASSERT_EQ(rows.size(), 21u);
  std::uint64_t tokens = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    tokens += std::stoull(rows[i].at(2));
    EXPECT_GE(std::stod(rows[i].at(12)), std::stod(rows[i].at(10))) << i;
  }
  EXPECT_EQ(s["kv_transfer"]["bytes"].get<std::uint64_t>(), tokens * 327680);
  // The decode time is broken down by kernel, shares adding up to one.
  double share = 0.0;
  for (const auto& [k, v] : s["wafer"]["kernel_seconds"].items()) share += v["share"].get<double>();
  EXPECT_NEAR(share, 1.0, 1e-9);
}

TEST_F(Experiments, SharedLinkExperimentWritesEveryResultFile) {
  const fs::path out = dir_ / "run";
  Result r = wse_emu("run configs/experiments/kv_link.yaml --quiet --set workload.trace.limit=50 --out '" +
                         out.string() + "'",
                     dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("summary"));
  for (const char* f : {"summary.json", "stats.json", "config.resolved.yaml", "requests.csv"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  EXPECT_FALSE(fs::exists(out / "trace.json"));  // off by default
  const auto s = summary(out);
  EXPECT_EQ(s["experiment"], "kv_link");
  EXPECT_GT(s["simulated_time_s"].get<double>(), 0.0);
  EXPECT_FALSE(s.contains("wall_time_s"));  // the host's time is in host.json
  EXPECT_GT(nlohmann::json::parse(slurp(out / "host.json"))["wall_time_s"].get<double>(), 0.0);
  EXPECT_GT(s["events"].get<std::uint64_t>(), 0u);
  ASSERT_TRUE(s["utilization"].contains("kv_path.link"));
  const double u = s["utilization"]["kv_path.link"].get<double>();
  EXPECT_GT(u, 0.0);
  EXPECT_LE(u, 1.0);
  EXPECT_EQ(s["requests"]["completed"], 50);
  // Llama-3.1-70B KV cache: 2 x 80 layers x 8 kv heads x 128 x 2 B = 327,680 B per token.
  EXPECT_EQ(s["model"]["kv_bytes_per_token"], 327680);

  // The first request of azure2023_conv.csv has 374 context tokens and nothing ahead
  // of it, so it takes latency + bytes / bandwidth = 15 us + 374 x 327,680 B / 400 GB/s
  // = 15 us + 306.3808 us = 321.3808 us.
  const auto first = csv_rows(slurp(out / "requests.csv")).at(1);
  ASSERT_EQ(first.size(), 7u);
  EXPECT_EQ(first[2], "374");
  EXPECT_EQ(first[3], "122552320");
  EXPECT_NEAR(std::stod(first[6]), 321.3808e-6, 1e-12);

  const auto stats = nlohmann::json::parse(slurp(out / "stats.json"));
  EXPECT_EQ(stats["system"]["bytes"]["unit"], "B");
  EXPECT_FALSE(stats["system"]["bytes"]["description"].get<std::string>().empty());
}

TEST_F(Experiments, SameInputsGiveIdenticalOutputs) {
  const std::string args =
      "run configs/experiments/default.yaml --quiet --set workload.trace.limit=40 --out '";
  ASSERT_EQ(wse_emu(args + (dir_ / "a").string() + "'", dir_ / "io").exit_code, 0);
  ASSERT_EQ(wse_emu(args + (dir_ / "b").string() + "'", dir_ / "io").exit_code, 0);
  // Every file but host.json (the host's wall time and memory) byte for byte.
  for (const char* f : {"summary.json", "stats.json", "requests.csv", "config.resolved.yaml"}) {
    EXPECT_EQ(slurp(dir_ / "a" / f), slurp(dir_ / "b" / f)) << f;
  }
}

TEST_F(Experiments, ResolvedConfigurationRunsToTheSameResult) {
  ASSERT_EQ(wse_emu("run configs/experiments/default.yaml --quiet --set workload.trace.limit=30 --out '" +
                        (dir_ / "a").string() + "'",
                    dir_ / "io")
                .exit_code,
            0);
  Result r = wse_emu("run '" + (dir_ / "a" / "config.resolved.yaml").string() + "' --quiet --out '" +
                         (dir_ / "b").string() + "'",
                     dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(dir_ / "a"), summary(dir_ / "b"));
  EXPECT_EQ(slurp(dir_ / "a" / "config.resolved.yaml"), slurp(dir_ / "b" / "config.resolved.yaml"));
}

// Reads requests.csv of a kv_transfer run: (kv_bytes, transfer_time_s) per request.
std::vector<std::pair<double, double>> transfers(const std::string& text) {
  std::vector<std::pair<double, double>> out;
  const auto rows = csv_rows(text);
  for (std::size_t n = 1; n < rows.size(); ++n)
    out.emplace_back(std::stod(rows[n].at(3)), std::stod(rows[n].at(6)));
  return out;
}

TEST_F(Experiments, NoEfaTransferBeatsTheNarrowestLink) {
  // 1,000 requests over EFA: a CS-3 receives through 6 x 200 Gb/s = 150 GB/s, the
  // narrowest aggregate on the way (the sender has 16 x 200 Gb/s), and the one-way
  // small-message latency is 2 x 1.5 us (NICs) + 12 us (fastest path) = 15 us. No
  // transfer may take less than 15 us + bytes / 150 GB/s.
  const fs::path out = dir_ / "e";
  Result r = wse_emu("run configs/experiments/kv_transfer_efa.yaml --quiet --out '" + out.string() + "'",
                     dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto t = transfers(slurp(out / "requests.csv"));
  ASSERT_EQ(t.size(), 1000u);
  for (const auto& [bytes, took] : t) EXPECT_GE(took, 15e-6 + bytes / 150e9 - 2e-12) << bytes;
}

TEST_F(Experiments, NoTransferBeatsTheLink) {
  // The whole shared-link experiment (1,000 requests): no request's KV arrives faster
  // than latency + bytes / bandwidth of the link it crosses (15 us, 3.2 Tb/s = 400 GB/s).
  const fs::path out = dir_ / "d";
  Result r =
      wse_emu("run configs/experiments/kv_link.yaml --quiet --out '" + out.string() + "'", dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto t = transfers(slurp(out / "requests.csv"));
  std::size_t queued = 0;
  for (const auto& [bytes, took] : t) {
    const double bound = 15e-6 + bytes / 400e9;
    // 2 ps of slack: arrivals are rounded to the kernel's 1 ps resolution.
    EXPECT_GE(took, bound - 2e-12) << bytes;
    queued += took > bound * (1 + 1e-6) ? 1 : 0;
  }
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_GT(queued, 0u) << "some requests should have waited behind others";
}

TEST_F(Experiments, TrainiumOnlyServesTheTraceWithinPhysicalBounds) {
  const fs::path out = dir_ / "trn";
  Result r =
      wse_emu("run configs/experiments/trainium_only.yaml --quiet --set workload.trace.limit=10 --out '" +
                  out.string() + "'",
              dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = summary(out);
  EXPECT_EQ(s["requests"]["completed"], 10);
  // A decode step reads every weight: 141,107,412,992 B of Llama-3.1-70B spread over
  // 16 chips of 2.9 TB/s HBM cannot take less than 141.1e9 / 46.4e12 = 3.04 ms.
  EXPECT_GE(s["requests"]["tpot_s"]["p50"].get<double>(), 141107412992.0 / (16 * 2.9e12));
  // The first request (374 prompt tokens, alone) needs 2 x 70.55e9 x 374 FLOPs; 128
  // cores of 128 x 128 MACs at 2.4 GHz give at most 128 x 78.6 TFLOPS: >= 5.2 ms.
  const auto cells = csv_rows(slurp(out / "requests.csv")).at(1);
  // 16 timing columns, state, reason, 5 fault counters (docs/faults.md), 3 preemption
  // counters (docs/serving.md)
  ASSERT_EQ(cells.size(), 26u);
  EXPECT_EQ(cells[2], "374");
  const double ttft = std::stod(cells[13]) - std::stod(cells[1]);
  EXPECT_GE(ttft, 2 * 70553706496.0 * 374 / (128 * 128 * 128 * 2 * 2.4e9));
  EXPECT_GT(s["utilization"]["trainium.instance0.hbm"].get<double>(), 0.0);
  // The floor beside the result: no pass beats it, and the decode floor's HBM term is at
  // least the weights a step reads (all but the embedding table, of which it gathers one
  // row per sequence: 141,107,412,992 - 128,256 x 8,192 x 2 B) over 16 x 2.9 TB/s = 2.996 ms.
  for (const char* pass : {"prefill_pass", "decode_step"}) {
    const auto& f = s["trainium"]["floor"][pass];
    EXPECT_GT(f["passes"].get<double>(), 0.0) << pass;
    EXPECT_GE(f["simulated_s"].get<double>(), f["step_s"].get<double>()) << pass;
    EXPECT_GE(f["ratio"].get<double>(), 1.0) << pass;
    // Means over the passes: the mean of each pass's largest term is at least the largest mean.
    EXPECT_GE(
        f["step_s"].get<double>() * (1 + 1e-12),
        std::max({f["compute_s"].get<double>(), f["hbm_s"].get<double>(), f["collective_s"].get<double>()}))
        << pass;
  }
  EXPECT_GE(s["trainium"]["floor"]["decode_step"]["hbm_s"].get<double>(),
            (141107412992.0 - 128256.0 * 8192 * 2) / (16 * 2.9e12));
}

TEST_F(Experiments, TrainiumDisaggregatedStreamsTheKvBehindThePrefill) {
  const fs::path out = dir_ / "dis";
  Result r = wse_emu(
      "run configs/experiments/trainium_disaggregated.yaml --quiet --set workload.trace.limit=10 --out '" +
          out.string() + "'",
      dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = summary(out);
  EXPECT_EQ(s["requests"]["completed"], 10);
  // KV of every prompt crossed: sum of prompt tokens x 327,680 B.
  const auto rows = csv_rows(slurp(out / "requests.csv"));
  ASSERT_EQ(rows.size(), 11u);
  std::uint64_t tokens = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    tokens += std::stoull(rows[i].at(2));
    // No request's KV arrives before its transfer could cross the 3.2 Tb/s attachment:
    // transfer_end - transfer_start >= bytes / 400 GB/s.
    const double bytes = std::stod(rows[i].at(8));
    EXPECT_GE(std::stod(rows[i].at(10)) - std::stod(rows[i].at(9)), bytes / 400e9) << i;
    // Decode starts only after the KV is in place.
    EXPECT_GE(std::stod(rows[i].at(12)), std::stod(rows[i].at(10))) << i;
  }
  EXPECT_EQ(s["kv_transfer"]["bytes"].get<std::uint64_t>(), tokens * 327680);
  // Layer-wise sending overlaps the prefill almost entirely.
  EXPECT_GT(s["kv_transfer"]["hidden_share"].get<double>(), 0.9);
  EXPECT_GE(s["requests"]["tpot_s"]["p50"].get<double>(), 141107412992.0 / (16 * 2.9e12));
}

TEST_F(Experiments, TraceIsPerfettoJson) {
  const fs::path out = dir_ / "t";
  Result r = wse_emu(
      "run configs/experiments/kv_transfer_efa.yaml --quiet --trace --set workload.trace.limit=10 --out '" +
          out.string() + "'",
      dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto t = nlohmann::json::parse(slurp(out / "trace.json"));
  ASSERT_TRUE(t.contains("traceEvents"));
  std::size_t slices = 0;
  for (const auto& e : t["traceEvents"]) slices += e["ph"] == "X" ? 1 : 0;
  EXPECT_EQ(slices, 10u);  // one slice per transfer on the link's track
}

}  // namespace
}  // namespace wse::testing
