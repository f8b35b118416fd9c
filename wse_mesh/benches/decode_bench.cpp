#include "wse_mesh/benches/decode_bench.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string_view>

#include "systemc_models/sim/output.h"
#include "workloads/model/reference_models.h"
#include "wse_mesh/benches/benches.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {

namespace {

// A CS-3 as configs/hardware/cs3.yaml describes it, GEMVs at tiled fidelity k = 8.
WaferConfig cs3_tiled() {
  WaferConfig w;  // 762 x 1176, 1.1 GHz, 1.2 Tb/s: the WSE-3 defaults
  w.pe = wse3_pe_config();
  w.fabric.width = w.width;
  w.fabric.height = w.height;
  w.tile = 8;
  return w;
}

// A WSE-2 as configs/hardware/wse2.yaml describes it (757 x 996), tile 8.
WaferConfig wse2_tiled() {
  WaferConfig w = cs3_tiled();
  w.name = "WSE-2";
  w.width = 757;
  w.height = 996;
  w.pe = wse2_pe_config();
  w.fabric.width = w.width;
  w.fabric.height = w.height;
  return w;
}

struct Case {
  workloads::TransformerModel (*model)();
  std::uint32_t wafers;
  Mapping mapping;
  bool wse2 = false;
  GridShape region;  // 0 x 0: the whole wafer
};

// Kernel kinds reported as columns (anything else goes to "other").
constexpr std::string_view kKinds[] = {
    "gemm.qkv", "gemm.o",     "gemm.gate_up", "gemm.down", "gemm.lm_head",    "attention", "norm",
    "rope",     "activation", "residual_add", "embedding", "activation_move", "link"};

}  // namespace

std::vector<std::string> bench_decode(const sim::BenchArgs& args) {
  // Spread (the default) beside packed (the ablation) for Llama-3.1-8B on one CS-3 and
  // 70B on four; 8B on WSE-2 sub-regions of 300^2 to 660^2 and the whole wafer.
  std::vector<Case> cases = {
      {workloads::llama31_8b, 1, Mapping::kSpread, false, {}},
      {workloads::llama31_8b, 1, Mapping::kPacked, false, {}},
      {workloads::llama31_70b, 4, Mapping::kSpread, false, {}},
      {workloads::llama31_70b, 4, Mapping::kPacked, false, {}},
      {workloads::qwen3_32b, 2, Mapping::kSpread, false, {}},
      {workloads::llama31_405b, 0, Mapping::kSpread, false, {}}};  // 0: the fewest that hold it
  for (std::uint32_t side : {300u, 420u, 540u, 660u}) {
    cases.push_back({workloads::llama31_8b, 1, Mapping::kSpread, true, GridShape{side, side}});
  }
  cases.push_back({workloads::llama31_8b, 1, Mapping::kSpread, true, {}});
  std::vector<std::uint32_t> batches = {1, 8, 32};
  std::vector<std::uint64_t> contexts = {1024, 4096};
  if (args.quick) {
    cases.resize(2);
    batches = {1, 8};
    contexts = {1024};
  }
  std::vector<std::string> header = {"model",
                                     "wafer",
                                     "region",
                                     "mapping",
                                     "wafers",
                                     "tile",
                                     "batch",
                                     "context",
                                     "microbatch",
                                     "step_us",
                                     "floor_us",
                                     "ratio",
                                     "floor_compute_us",
                                     "floor_sram_us",
                                     "floor_latency_us",
                                     "tokens_per_s_per_sequence",
                                     "tokens_per_s"};
  for (std::string_view k : kKinds) header.push_back(std::string(k) + "_us");
  for (const char* c :
       {"other_us", "fabric_link_busy", "sram_port_busy", "pe_busy", "link_busy", "weight_GB_read",
        "kv_GB_read", "kv_capacity_GB", "kernels_simulated", "kernels_reused", "wall_s"}) {
    header.emplace_back(c);
  }
  sim::CsvWriter csv(header);
  for (const Case& c : cases) {
    const WaferConfig wafer = c.wse2 ? wse2_tiled() : cs3_tiled();
    const workloads::TransformerModel model = c.model();
    DecodeConfig cfg;  // the defaults of configs/hardware/cs3_decode.yaml
    cfg.wafers = c.wafers;
    cfg.mapping = c.mapping;
    cfg.region = c.region;
    const char* mapping = c.mapping == Mapping::kSpread ? "spread" : "packed";
    const std::string region =
        c.region.is_auto() ? "all" : std::to_string(c.region.rows) + "x" + std::to_string(c.region.cols);
    std::unique_ptr<WaferDecoder> placed;
    try {
      if (c.wafers == 0) {
        // The fewest wafers: from the weights over the wafer's SRAM up, one more at a time
        // (up to four times that many).
        const double sram = static_cast<double>(wafer.pe.sram_bytes) * wafer.width * wafer.height;
        const auto least =
            static_cast<std::uint32_t>(std::ceil(static_cast<double>(model.weight_bytes()) / sram));
        for (cfg.wafers = least;; ++cfg.wafers) {
          try {
            placed = std::make_unique<WaferDecoder>(wafer, cfg, model);
            break;
          } catch (const CapacityError&) {
            if (cfg.wafers >= 4 * least) throw;
          }
        }
      } else {
        placed =
            std::make_unique<WaferDecoder>(wafer, cfg, model);  // one decoder per case: kernel results shared
      }
    } catch (const CapacityError& e) {
      if (!args.quiet)
        std::printf("decode: %s on %u x %s region %s: does not fit: %s\n", model.name.c_str(), cfg.wafers,
                    wafer.name.c_str(), region.c_str(), e.what());
      continue;
    }
    WaferDecoder& decoder = *placed;
    if (!args.quiet) {
      std::printf("decode: %s on %u x %s (tile %u, %s, region %s): KV capacity %.2f GB (%llu tokens)\n",
                  model.name.c_str(), cfg.wafers, wafer.name.c_str(), wafer.tile, mapping, region.c_str(),
                  static_cast<double>(decoder.kv_capacity_bytes()) / 1e9,
                  static_cast<unsigned long long>(decoder.kv_capacity_tokens()));
    }
    std::uint64_t simulated_before = 0, reused_before = 0;
    for (std::uint64_t context : contexts) {
      for (std::uint32_t batch : batches) {
        if (batch * (context + 1) > decoder.kv_capacity_tokens()) {
          if (!args.quiet) {
            std::printf("decode: %s batch %u context %llu: KV cache exceeds the capacity, skipped\n",
                        model.name.c_str(), batch, static_cast<unsigned long long>(context));
          }
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        decoder.reset_kv_layout();  // each row a steady step of its own batch
        const WaferRunResult r = decoder.decode_step(std::vector<std::uint64_t>(batch, context));
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::uint64_t simulated = 0, reused = 0;
        for (const auto& s : decoder.stats().stats()) {
          if (const auto* k = dynamic_cast<const stats::Counter*>(s.get())) {
            if (k->name() == "kernels_simulated") simulated = k->value();
            if (k->name() == "kernels_reused") reused = k->value();
          }
        }
        std::vector<std::string> row = {model.name,
                                        wafer.name,
                                        region,
                                        mapping,
                                        std::to_string(cfg.wafers),
                                        std::to_string(wafer.tile),
                                        std::to_string(batch),
                                        std::to_string(context),
                                        std::to_string(cfg.microbatch),
                                        sim::fmt_num(r.seconds * 1e6),
                                        sim::fmt_num(r.floor.step_s * 1e6),
                                        sim::fmt_num(r.floor_ratio),
                                        sim::fmt_num(r.floor.compute_s * 1e6),
                                        sim::fmt_num(r.floor.sram_s * 1e6),
                                        sim::fmt_num(r.floor.latency_s * 1e6),
                                        sim::fmt_num(1.0 / r.seconds),
                                        sim::fmt_num(batch / r.seconds)};
        double other = r.seconds;
        for (std::string_view k : kKinds) {
          const auto it = r.kernel_seconds.find(std::string(k));
          const double s = it == r.kernel_seconds.end() ? 0.0 : it->second;
          other -= s;
          row.push_back(sim::fmt_num(s * 1e6));
        }
        row.push_back(sim::fmt_num(std::max(0.0, other) * 1e6));
        for (double v : {r.fabric_link_busy, r.sram_port_busy, r.pe_busy, r.link_busy})
          row.push_back(sim::fmt_num(v));
        row.push_back(sim::fmt_num(static_cast<double>(r.weight_bytes_read) / 1e9));
        row.push_back(sim::fmt_num(static_cast<double>(r.kv_bytes_read) / 1e9));
        row.push_back(sim::fmt_num(static_cast<double>(decoder.kv_capacity_bytes()) / 1e9));
        const std::uint64_t new_simulated = simulated - simulated_before, new_reused = reused - reused_before;
        simulated_before = simulated;
        reused_before = reused;
        row.push_back(std::to_string(new_simulated));
        row.push_back(std::to_string(new_reused));
        row.push_back(sim::fmt_num(wall));
        csv.row(row);
        if (!args.quiet) {
          std::printf(
              "decode: %s %s batch %u context %llu: step %.1f us (%.0f tokens/s per sequence), floor %.1f "
              "us (ratio %.1f), wall %.2f s (%llu kernels simulated, %llu reused)\n",
              model.name.c_str(), mapping, batch, static_cast<unsigned long long>(context), r.seconds * 1e6,
              1.0 / r.seconds, r.floor.step_s * 1e6, r.floor_ratio, wall,
              static_cast<unsigned long long>(new_simulated), static_cast<unsigned long long>(new_reused));
          std::fflush(stdout);
        }
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "decode.csv", csv.str());
  return {"decode.csv"};
}

std::vector<std::string> bench_prefill_wafer(const sim::BenchArgs& args) {
  // Llama-3.1-8B, one 4,096-token prompt: one CS-3 and the WSE-2 sub-regions of the
  // decode bench. The prompt runs as pipelined chunks (decode.prefill_chunk_tokens); each
  // chunk's GEMMs are the faster of the GEMV passes and the Cannon GEMM (auto) and its
  // attention the faster of the streamed kernel and the decode kernel's sub-chunks (auto);
  // then the same passes with the decode kernel's sub-chunks alone (attention combine: the
  // ablation) and with the GEMV passes alone (gemv: the ablation), every kernel result
  // reused from the first pass but the ones that differ.
  struct Region {
    bool wse2;
    GridShape region;
  };
  std::vector<Region> regions = {{false, {}}};
  for (std::uint32_t side : {300u, 420u, 540u, 660u}) regions.push_back({true, GridShape{side, side}});
  regions.push_back({true, {}});
  std::uint64_t prompt = 4096;
  std::vector<std::uint32_t> chunks = {64, 128, 512};
  if (args.quick) {
    regions.resize(1);
    prompt = 1024;
    chunks = {256};
  }
  const std::vector<std::string> header = {
      "model",    "wafer",        "region",           "tile",          "prompt",
      "chunk",    "gemm",         "attention",        "prefill_ms",    "tokens_per_s",
      "floor_ms", "ratio",        "floor_compute_ms", "floor_sram_ms", "floor_latency_ms",
      "gemm_ms",  "attention_ms", "attention_share",  "other_ms",      "pe_busy",
      "wall_s"};
  sim::CsvWriter csv(header);
  const workloads::TransformerModel model = workloads::llama31_8b();
  for (const Region& c : regions) {
    const WaferConfig wafer = c.wse2 ? wse2_tiled() : cs3_tiled();
    const std::string region =
        c.region.is_auto() ? "all" : std::to_string(c.region.rows) + "x" + std::to_string(c.region.cols);
    DecodeConfig cfg;  // the defaults of configs/hardware/cs3_decode.yaml
    cfg.region = c.region;
    std::unique_ptr<WaferDecoder> placed;
    try {
      placed = std::make_unique<WaferDecoder>(wafer, cfg, model);
    } catch (const CapacityError& e) {
      if (!args.quiet) {
        std::printf("prefill-wafer: %s on %s region %s: does not fit: %s\n", model.name.c_str(),
                    wafer.name.c_str(), region.c_str(), e.what());
      }
      std::vector<std::string> row(header.size(), "");
      row[0] = model.name;
      row[1] = wafer.name;
      row[2] = region;
      row[3] = std::to_string(wafer.tile);
      row[4] = std::to_string(prompt);
      row[8] = "does not fit";
      csv.row(row);
      continue;
    }
    WaferDecoder& decoder = *placed;
    if (prompt + 1 > decoder.kv_capacity_tokens()) {
      if (!args.quiet)
        std::printf("prefill-wafer: %s region %s: the prompt's KV exceeds the capacity\n", model.name.c_str(),
                    region.c_str());
      continue;
    }
    for (std::uint32_t chunk : chunks) {
      decoder.set_prefill_chunk_tokens(chunk);
      const std::vector<std::pair<GemmAlgorithm, PrefillAttention>> passes = {
          {GemmAlgorithm::kAuto, PrefillAttention::kAuto},
          {GemmAlgorithm::kAuto, PrefillAttention::kCombine},
          {GemmAlgorithm::kGemv, PrefillAttention::kAuto}};
      for (const auto& [algo, att] : passes) {
        decoder.set_gemm_algorithm(algo);
        decoder.set_prefill_attention(att);
        const auto t0 = std::chrono::steady_clock::now();
        const WaferRunResult r = decoder.prefill({prompt});
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double gemm = 0.0, attention = 0.0;
        for (const auto& [kind, sec] : r.kernel_seconds) {
          if (kind.rfind("gemm.", 0) == 0) gemm += sec;
          if (kind == "attention") attention = sec;
        }
        const char* name = algo == GemmAlgorithm::kAuto ? "auto" : "gemv";
        const char* att_name = prefill_attention_name(att);
        csv.row({model.name,
                 wafer.name,
                 region,
                 std::to_string(wafer.tile),
                 std::to_string(prompt),
                 std::to_string(chunk),
                 name,
                 att_name,
                 sim::fmt_num(r.seconds * 1e3),
                 sim::fmt_num(static_cast<double>(prompt) / r.seconds),
                 sim::fmt_num(r.floor.step_s * 1e3),
                 sim::fmt_num(r.floor_ratio),
                 sim::fmt_num(r.floor.compute_s * 1e3),
                 sim::fmt_num(r.floor.sram_s * 1e3),
                 sim::fmt_num(r.floor.latency_s * 1e3),
                 sim::fmt_num(gemm * 1e3),
                 sim::fmt_num(attention * 1e3),
                 sim::fmt_num(attention / r.seconds),
                 sim::fmt_num((r.seconds - gemm - attention) * 1e3),
                 sim::fmt_num(r.pe_busy),
                 sim::fmt_num(wall)});
        if (!args.quiet) {
          std::printf(
              "prefill-wafer: %s on %s region %s, %llu-token prompt in chunks of %u, GEMMs %s, attention %s: "
              "%.2f ms "
              "(%.0f tokens/s), floor %.2f ms (ratio %.1f); GEMMs %.2f ms, attention %.2f ms (%.0f%%) on the "
              "critical path; wall %.1f s\n",
              model.name.c_str(), wafer.name.c_str(), region.c_str(), static_cast<unsigned long long>(prompt),
              chunk, name, att_name, r.seconds * 1e3, static_cast<double>(prompt) / r.seconds,
              r.floor.step_s * 1e3, r.floor_ratio, gemm * 1e3, attention * 1e3, 100.0 * attention / r.seconds,
              wall);
          std::fflush(stdout);
        }
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "prefill_wafer.csv", csv.str());
  return {"prefill_wafer.csv"};
}

}  // namespace wse::wafer
