#include "wse_mesh/benches/kernel_benches.h"

#include <cstdio>
#include <ctime>

#include "systemc_models/sim/output.h"
#include "wse_mesh/benches/benches.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/attention_tiled.h"
#include "wse_mesh/kernels/vector_kernels.h"

namespace wse::wafer {

namespace {

// The WSE-3 PE of cs3.yaml, with the PE cost keys the attention adds.
PeConfig wse3_kernel_pe() {
  PeConfig pe = wse3_pe_config();
  pe.simd_fp32_fmac = 4;  // assumption (cs3.yaml): the fp32 add width
  return pe;
}

constexpr double kClockHz = 1.1e9;  // cs3.yaml (assumption: WSE-2's clock)

}  // namespace

std::vector<std::string> bench_attention(const sim::BenchArgs& args) {
  const PeConfig pe = wse3_kernel_pe();
  const FabricConfig fc;  // per-PE, cs3.yaml fabric defaults
  std::vector<std::uint64_t> contexts = {1024, 2048, 4096, 8192, 16384, 32768};
  std::vector<std::uint32_t> tpps = {8, 16, 32, 64};
  const std::vector<Reduction> reductions = {Reduction::kTree, Reduction::kChain};
  if (args.quick) {
    contexts = {1024, 4096};
    tpps = {16};
  }
  sim::CsvWriter csv({"context",
                      "tokens_per_pe",
                      "max_grid_cols",
                      "combine",
                      "grid_rows",
                      "grid_cols",
                      "sram_bytes_per_pe",
                      "total_cycles",
                      "total_us",
                      "append_cycles",
                      "query_cycles",
                      "compute_cycles",
                      "compute_done_cycles",
                      "combine_cycles",
                      "wavelet_hops",
                      "wall_s",
                      "cpu_s",
                      "tiled8_total_cycles",
                      "tiled8_cpu_s",
                      "error"});
  // CPU seconds of one call (the process's, single-threaded here).
  const auto cpu = [](auto call) {
    const std::clock_t c0 = std::clock();
    auto r = call();
    return std::make_pair(r, static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
  };
  auto run = [&](std::uint64_t ctx, std::uint32_t tpp, std::uint32_t max_cols, Reduction red) {
    AttentionConfig a;
    a.q_heads = 32;
    a.kv_heads = 8;
    a.head_dim = 128;
    a.context = ctx;
    a.tokens_per_pe = tpp;
    a.max_grid_cols = max_cols;
    a.reduction = red;
    const auto [rows, cols] = attention_grid(a);
    try {
      const auto [r, cpu_s] = cpu([&] { return run_attention(fc, pe, a); });
      // The same kernel on tiled fidelity, nodes of 8 x 8 PEs (attention_tiled.h).
      const auto [t, tiled_cpu_s] = cpu([&] { return run_attention_tiled(fc, 8, pe, a); });
      csv.row({std::to_string(ctx),
               std::to_string(tpp),
               std::to_string(max_cols),
               reduction_name(red),
               std::to_string(r.grid_rows),
               std::to_string(r.grid_cols),
               std::to_string(r.sram_bytes_per_pe),
               std::to_string(r.total_cycles),
               sim::fmt_num(static_cast<double>(r.total_cycles) / kClockHz * 1e6),
               std::to_string(r.append_cycles),
               std::to_string(r.query_cycles),
               std::to_string(r.compute_cycles),
               std::to_string(r.compute_done_cycles),
               std::to_string(r.combine_cycles),
               std::to_string(r.wavelet_hops),
               sim::fmt_num(r.wall_seconds),
               sim::fmt_num(cpu_s),
               std::to_string(t.total_cycles),
               sim::fmt_num(tiled_cpu_s),
               ""});
      if (!args.quiet) {
        std::fprintf(
            stderr,
            "attention %s ctx %6llu tpp %2u grid %4ux%-4u total %7llu cycles (append %llu, query %llu, "
            "compute %llu, done %llu, combine %llu) %.3f s CPU; k = 8: %llu cycles, %.3f s CPU\n",
            reduction_name(red), static_cast<unsigned long long>(ctx), tpp, r.grid_rows, r.grid_cols,
            static_cast<unsigned long long>(r.total_cycles), static_cast<unsigned long long>(r.append_cycles),
            static_cast<unsigned long long>(r.query_cycles),
            static_cast<unsigned long long>(r.compute_cycles),
            static_cast<unsigned long long>(r.compute_done_cycles),
            static_cast<unsigned long long>(r.combine_cycles), cpu_s,
            static_cast<unsigned long long>(t.total_cycles), tiled_cpu_s);
      }
    } catch (const CapacityError& e) {
      csv.row({std::to_string(ctx),
               std::to_string(tpp),
               std::to_string(max_cols),
               reduction_name(red),
               std::to_string(rows),
               std::to_string(cols),
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               "",
               e.what()});
    }
  };
  for (const Reduction red : reductions) {
    for (const std::uint32_t tpp : tpps) {
      for (const std::uint64_t ctx : contexts) run(ctx, tpp, 256, red);
    }
  }
  // The grid's shape: the same 8K-token cache on fewer columns and more rows per head.
  const std::vector<std::uint32_t> shapes =
      args.quick ? std::vector<std::uint32_t>{32} : std::vector<std::uint32_t>{16, 32, 64, 128};
  for (const Reduction red : reductions) {
    for (const std::uint32_t max_cols : shapes) run(8192, 16, max_cols, red);
  }
  sim::write_file_atomic(args.out_dir / "attention.csv", csv.str());

  struct VectorCase {
    VectorOp op;
    const char* name;
    std::uint64_t elements;
  };
  const std::vector<VectorCase> cases = {{VectorOp::kRmsNorm, "rmsnorm", 4096},
                                         {VectorOp::kSoftmax, "softmax", 8192}};
  std::vector<std::uint32_t> lines = {16, 64, 256, 720};
  if (args.quick) lines = {16, 64};
  sim::CsvWriter vcsv({"kernel", "elements", "pes", "reduction", "vectors", "total_cycles", "total_us",
                       "local_cycles", "reduce_cycles", "broadcast_cycles", "wavelet_hops", "wall_s"});
  for (const VectorCase& c : cases) {
    for (const Reduction red : reductions) {
      for (const std::uint32_t pes : lines) {
        for (const std::uint32_t vectors : {1u, 8u}) {
          VectorKernelConfig v;
          v.op = c.op;
          v.elements = c.elements;
          v.pes = pes;
          v.vectors = vectors;
          v.reduction = red;
          const VectorKernelResult r = run_vector_kernel(fc, pe, v);
          vcsv.row({c.name, std::to_string(c.elements), std::to_string(pes), reduction_name(red),
                    std::to_string(vectors), std::to_string(r.total_cycles),
                    sim::fmt_num(static_cast<double>(r.total_cycles) / kClockHz * 1e6),
                    std::to_string(r.local_cycles), std::to_string(r.reduce_cycles),
                    std::to_string(r.broadcast_cycles), std::to_string(r.wavelet_hops),
                    sim::fmt_num(r.wall_seconds)});
          if (!args.quiet) {
            std::fprintf(
                stderr,
                "%s %llu on %u PEs, %s, %u vectors: %llu cycles (local %llu, reduce %llu, bcast %llu)\n",
                c.name, static_cast<unsigned long long>(c.elements), pes, reduction_name(red), vectors,
                static_cast<unsigned long long>(r.total_cycles),
                static_cast<unsigned long long>(r.local_cycles),
                static_cast<unsigned long long>(r.reduce_cycles),
                static_cast<unsigned long long>(r.broadcast_cycles));
          }
        }
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "vector_kernels.csv", vcsv.str());
  return {"attention.csv", "vector_kernels.csv"};
}

}  // namespace wse::wafer
