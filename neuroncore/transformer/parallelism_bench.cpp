#include "neuroncore/transformer/parallelism_bench.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "neuroncore/transformer/pipeline_op.h"
#include "systemc_models/sim/output.h"
#include "workloads/model/reference_models.h"

namespace wse::neuron {

namespace {

struct Scheme {
  std::uint32_t tp;
  std::uint32_t pp;
  std::uint32_t dp;
  std::uint32_t cp = 1;
};

}  // namespace

std::vector<std::string> run_parallelism_bench(const sim::BenchArgs& args) {
  const workloads::TransformerModel model = workloads::llama31_70b();
  // trn2.48xlarge with the defaults of configs/hardware/trn2_48xlarge.yaml (LNC 2: 8
  // logical cores = 2 chips per TP 8), every split using all 16 chips; a pipeline of pp
  // stages runs pp microbatches.
  const ChipConfig chip = trainium2_chip();
  const InstanceConfig instance;
  const std::vector<Scheme> schemes = {{64, 1, 1}, {32, 2, 1}, {16, 4, 1},    {8, 8, 1},   {32, 1, 2},
                                       {16, 2, 2}, {16, 1, 4}, {16, 1, 1, 4}, {8, 1, 1, 8}};
  const std::vector<std::uint64_t> prompts =
      args.quick ? std::vector<std::uint64_t>{1024} : std::vector<std::uint64_t>{1024, 4096, 16384};
  struct Row {
    std::uint64_t prompt;
    Scheme s;
    PipelineResult r;
  };
  std::vector<Row> rows;
  for (std::uint64_t prompt : prompts) {
    for (const Scheme& s : schemes) {
      PrefillConfig cfg;
      cfg.tp_degree = s.tp;
      cfg.cp_degree = s.cp;
      TrainiumPipeline p(chip, instance, cfg, s.pp, s.dp, s.pp);
      rows.push_back(Row{prompt, s, p.run(model, prompt)});
      if (!args.quiet) {
        std::printf("prompt %llu tokens, tp %u x pp %u x cp %u x dp %u: TTFT %.2f ms, %.2f prompts/s\n",
                    static_cast<unsigned long long>(prompt), s.tp, s.pp, s.cp, s.dp,
                    rows.back().r.seconds() * 1e3, rows.back().r.prompts_per_s());
      }
    }
  }
  sim::CsvWriter csv({"prompt_tokens", "tp", "lnc", "pp", "cp", "dp", "microbatches", "chips", "ttft_ms",
                      "bottleneck_stage_ms", "prompts_per_s", "best_ttft", "best_prompts_per_s"});
  for (const Row& row : rows) {
    std::uint64_t best_t = UINT64_MAX;
    double best_x = 0.0;
    for (const Row& o : rows) {
      if (o.prompt != row.prompt) continue;
      best_t = std::min(best_t, o.r.total_ps);
      best_x = std::max(best_x, o.r.prompts_per_s());
    }
    csv.row({std::to_string(row.prompt), std::to_string(row.s.tp), "2", std::to_string(row.s.pp),
             std::to_string(row.s.cp), std::to_string(row.s.dp), std::to_string(row.s.pp),
             std::to_string(row.r.chips), sim::fmt_num(row.r.seconds() * 1e3),
             sim::fmt_num(static_cast<double>(row.r.bottleneck_ps) * 1e-9),
             sim::fmt_num(row.r.prompts_per_s()), row.r.total_ps == best_t ? "1" : "0",
             row.r.prompts_per_s() == best_x ? "1" : "0"});
  }
  sim::write_file_atomic(args.out_dir / "parallelism.csv", csv.str());
  return {"parallelism.csv"};
}

}  // namespace wse::neuron
