#include "neuroncore/transformer/prefill_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "neuroncore/transformer/prefill.h"
#include "systemc_models/sim/output.h"
#include "workloads/model/reference_models.h"

namespace wse::neuron {

double PrefillBatchSeries::mean_wall_ms(std::size_t from, std::size_t to) const {
  to = std::min(to, wall_ms.size());
  if (from >= to) return 0.0;
  const auto b = wall_ms.begin();
  return std::accumulate(b + static_cast<std::ptrdiff_t>(from), b + static_cast<std::ptrdiff_t>(to), 0.0) /
         static_cast<double>(to - from);
}

PrefillBatchSeries time_prefill_batches(const workloads::TransformerModel& model, const ChipConfig& chip,
                                        const InstanceConfig& instance, const PrefillConfig& cfg,
                                        std::uint32_t batches, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::uint64_t> prompts(1, 3);
  std::uniform_int_distribution<std::uint64_t> length(200, 2200);
  TrainiumPrefill prefill(chip, instance, cfg);
  PrefillBatchSeries s;
  for (std::uint32_t i = 0; i < batches; ++i) {
    std::vector<std::uint64_t> chunks(prompts(rng));
    for (auto& c : chunks) c = length(rng);
    const auto w0 = std::chrono::steady_clock::now();
    const PrefillResult r = prefill.run(workloads::lower_prefill(model, chunks), model.weight_bytes());
    const auto w1 = std::chrono::steady_clock::now();
    s.tokens.push_back(std::accumulate(chunks.begin(), chunks.end(), std::uint64_t{0}));
    s.simulated_ms.push_back(r.seconds() * 1e3);
    s.wall_ms.push_back(std::chrono::duration<double>(w1 - w0).count() * 1e3);
  }
  return s;
}

std::vector<std::string> run_prefill_bench(const sim::BenchArgs& args) {
  const workloads::TransformerModel model = workloads::llama31_70b();
  const std::uint64_t tokens = args.quick ? 2000 : 10000;
  // trn2.48xlarge with the defaults of configs/hardware/trn2_48xlarge.yaml.
  const ChipConfig chip = trainium2_chip();
  const InstanceConfig instance;
  const PrefillConfig cfg;
  const auto w0 = std::chrono::steady_clock::now();
  TrainiumPrefill prefill(chip, instance, cfg);
  const PrefillResult r = prefill.run(model, {tokens});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();

  sim::CsvWriter layers({"layer", "start_us", "end_us", "reused"});
  for (const LayerTime& l : r.layers) {
    layers.row({std::to_string(l.layer), sim::fmt_num(l.start_ps * 1e-6), sim::fmt_num(l.end_ps * 1e-6),
                l.reused ? "1" : "0"});
  }
  sim::CsvWriter ops({"layer", "operator", "kind", "time_us", "tensor_busy_us", "vector_busy_us",
                      "scalar_busy_us", "dma_busy_us", "hbm_busy_us", "collective_us", "flops"});
  for (const LayerTime& l : r.layers) {
    if (l.layer > 0) continue;  // the parts outside the layers and layer 0 (the others repeat it)
    for (const OperatorTime& o : l.operators) {
      ops.row({std::to_string(l.layer), o.name, o.kind, sim::fmt_num(o.busy.elapsed_ps * 1e-6),
               sim::fmt_num(o.busy.tensor_ps * 1e-6), sim::fmt_num(o.busy.vector_ps * 1e-6),
               sim::fmt_num(o.busy.scalar_ps * 1e-6), sim::fmt_num(o.busy.dma_ps * 1e-6),
               sim::fmt_num(o.busy.hbm_ps * 1e-6), sim::fmt_num(o.busy.collective_ps * 1e-6),
               std::to_string(o.busy.flops)});
    }
  }
  sim::write_file_atomic(args.out_dir / "prefill_layers.csv", layers.str());
  sim::write_file_atomic(args.out_dir / "prefill_operators.csv", ops.str());

  // Decode steps of B sequences of 1,000 cached tokens (workloads::lower_decode), with the
  // bound of reading the weights and the KV cache once over the 16 chips' HBM, and the
  // wall time of a first step and of a next step whose contexts all grew by one (the
  // serving runs reuse one TrainiumPrefill for thousands of steps).
  sim::CsvWriter decode({"batch", "context_tokens", "step_ms", "hbm_bound_ms", "hbm_utilization",
                         "attention_us_per_layer", "layer_us", "collective_ms", "runtime_ms",
                         "floor_compute_ms", "floor_hbm_ms", "floor_collective_ms", "floor_ratio",
                         "first_step_wall_ms", "next_step_wall_ms"});
  const std::uint64_t context = 1000;
  for (const std::uint64_t batch : {std::uint64_t{1}, std::uint64_t{8}, std::uint64_t{64}}) {
    TrainiumPrefill step(chip, instance, cfg);
    const auto d0 = std::chrono::steady_clock::now();
    const auto g = workloads::lower_decode(model, std::vector<std::uint64_t>(batch, context));
    const PrefillResult d = step.run(g, model.weight_bytes());
    const auto d1 = std::chrono::steady_clock::now();
    step.run(workloads::lower_decode(model, std::vector<std::uint64_t>(batch, context + 1)),
             model.weight_bytes());
    const auto d2 = std::chrono::steady_clock::now();
    const double bound = static_cast<double>(model.weight_bytes() + g.total_kv_read_bytes()) /
                         (static_cast<double>(d.chips) * chip.hbm.peak_bandwidth().bytes_per_s);
    const LayerTime& layer0 =
        *std::find_if(d.layers.begin(), d.layers.end(), [](const LayerTime& l) { return l.layer == 0; });
    double attention_ps = 0;
    for (const OperatorTime& o : layer0.operators) {
      if (o.kind == "attention") attention_ps += static_cast<double>(o.busy.elapsed_ps);
    }
    const double layer_ps = static_cast<double>(layer0.end_ps - layer0.start_ps);
    const double ratio = d.floor.step_s > 0 ? d.seconds() / d.floor.step_s : 0.0;
    const double first_ms = std::chrono::duration<double>(d1 - d0).count() * 1e3;
    const double next_ms = std::chrono::duration<double>(d2 - d1).count() * 1e3;
    decode.row({std::to_string(batch), std::to_string(context), sim::fmt_num(d.seconds() * 1e3),
                sim::fmt_num(bound * 1e3), sim::fmt_num(d.hbm_utilization()),
                sim::fmt_num(attention_ps * 1e-6), sim::fmt_num(layer_ps * 1e-6),
                sim::fmt_num(d.busy.collective_ps * 1e-9), sim::fmt_num(d.busy.runtime_ps * 1e-9),
                sim::fmt_num(d.floor.compute_s * 1e3), sim::fmt_num(d.floor.hbm_s * 1e3),
                sim::fmt_num(d.floor.collective_s * 1e3), sim::fmt_num(ratio), sim::fmt_num(first_ms),
                sim::fmt_num(next_ms)});
    if (!args.quiet) {
      std::printf(
          "decode step, %llu x %llu cached tokens: %.3f ms simulated (HBM bound %.3f ms, HBM %.1f%%), "
          "attention %.1f us of a %.1f us layer; collectives %.3f ms, runtime %.3f ms; floor: compute "
          "%.3f ms, HBM %.3f ms, collective bandwidth %.3f ms, ratio %.2f; wall %.1f ms first step, "
          "%.2f ms next step\n",
          static_cast<unsigned long long>(batch), static_cast<unsigned long long>(context), d.seconds() * 1e3,
          bound * 1e3, 100 * d.hbm_utilization(), attention_ps * 1e-6, layer_ps * 1e-6,
          d.busy.collective_ps * 1e-9, d.busy.runtime_ps * 1e-9, d.floor.compute_s * 1e3, d.floor.hbm_s * 1e3,
          d.floor.collective_s * 1e3, ratio, first_ms, next_ms);
    }
  }
  sim::write_file_atomic(args.out_dir / "decode_steps.csv", decode.str());

  // Serving-like prefill batches (1-3 prompts of 200-2,200 tokens), token counts sampled
  // at the default grain and simulated exactly (token_grain 0): wall time of the first
  // batch and the mean of the next ones, the simulated times side by side. The sampled
  // series then goes on (the same TrainiumPrefill, as a serving run) to show the wall time
  // of a batch once the sample points of the counts have been simulated.
  const std::size_t series = args.quick ? 4 : 8;
  const std::size_t longer = args.quick ? series : 400;
  PrefillConfig exact = cfg;
  exact.token_grain = 0;
  const PrefillBatchSeries sampled =
      time_prefill_batches(model, chip, instance, cfg, static_cast<std::uint32_t>(longer), 1);
  const PrefillBatchSeries reference =
      time_prefill_batches(model, chip, instance, exact, static_cast<std::uint32_t>(series), 1);
  sim::CsvWriter bat({"batch", "tokens", "simulated_ms_sampled", "simulated_ms_exact", "error_pct",
                      "wall_ms_sampled", "wall_ms_exact"});
  double worst = 0;
  for (std::size_t i = 0; i < series; ++i) {
    const double err = 100 * (sampled.simulated_ms[i] / reference.simulated_ms[i] - 1);
    worst = std::max(worst, std::abs(err));
    bat.row({std::to_string(i), std::to_string(sampled.tokens[i]), sim::fmt_num(sampled.simulated_ms[i]),
             sim::fmt_num(reference.simulated_ms[i]), sim::fmt_num(err), sim::fmt_num(sampled.wall_ms[i]),
             sim::fmt_num(reference.wall_ms[i])});
  }
  sim::write_file_atomic(args.out_dir / "prefill_batches.csv", bat.str());
  if (!args.quiet) {
    std::printf(
        "%zu prefill batches of 1-3 prompts of 200-2,200 tokens: token_grain %llu: wall %.1f ms first, "
        "%.1f ms mean of the next; token_grain 0: %.1f ms first, %.1f ms mean of the next; largest "
        "batch error %.3f%%\n",
        series, static_cast<unsigned long long>(cfg.token_grain), sampled.first_wall_ms(),
        sampled.mean_wall_ms(1, series), reference.first_wall_ms(), reference.mean_wall_ms(1, series), worst);
    if (longer > series) {
      std::printf(
          "%zu batches with token_grain %llu: %.2f s wall in all, %.2f ms per batch over the last 100\n",
          longer, static_cast<unsigned long long>(cfg.token_grain), sampled.total_wall_ms() * 1e-3,
          sampled.mean_wall_ms(longer - 100, longer));
    }
  }
  if (!args.quiet) {
    std::printf(
        "Llama-3.1-70B, %llu tokens, trn2.48xlarge TP %u x LNC %u: %.3f ms simulated (%.2f s wall); "
        "tensor %.1f%%, vector %.1f%%, scalar %.1f%%, DMA %.1f%%, HBM %.1f%%, NeuronLink %.1f%%\n",
        static_cast<unsigned long long>(tokens), cfg.tp_degree, cfg.lnc, r.seconds() * 1e3, wall,
        100 * r.tensor_utilization(), 100 * r.vector_utilization(), 100 * r.scalar_utilization(),
        100 * r.dma_utilization(), 100 * r.hbm_utilization(), 100 * r.link_utilization());
  }
  return {"prefill_layers.csv", "prefill_operators.csv", "decode_steps.csv", "prefill_batches.csv"};
}

}  // namespace wse::neuron
