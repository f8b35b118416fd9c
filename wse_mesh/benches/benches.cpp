#include "wse_mesh/benches/benches.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "systemc_models/sim/output.h"
#include "wse_mesh/fabric/traffic.h"
#include "wse_mesh/kernels/collectives.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/gemv_tiled.h"
#include "wse_mesh/kernels/kernel_cache.h"

namespace wse::wafer {

PeConfig wse2_pe_config() { return PeConfig{}; }

PeConfig wse3_pe_config() {
  PeConfig pe;
  pe.simd_fp16_fmac = 8;       // SDK appendix: @fmach 8 on WSE-3
  pe.simd_fp16_fp32_fmac = 4;  // @fmachs 4
  pe.simd_fp32_add = 4;        // @fadds 4
  pe.simd_fp16_add = 8;        // assumption: the fp16 FMAC width
  pe.simd_fp32_fmac = 4;       // assumption: the fp32 add width (cs3.yaml)
  pe.sram_port_bits = 64;      // assumption: ports widened with the SIMD width
  return pe;
}

namespace {

struct MeshPlan {
  std::uint32_t k;
  std::uint64_t warmup, measure, drain;
  double booksim;  // BookSim 2 saturation, uniform traffic, 4 VCs (0 = none quoted)
};

}  // namespace

std::vector<std::string> bench_fabric(const sim::BenchArgs& args) {
  std::vector<MeshPlan> meshes = {
      {8, 1000, 2000, 4000, 0.40}, {32, 1000, 2000, 4000, 0.09}, {64, 500, 1000, 2000, 0.0}};
  std::vector<double> fractions = {0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2};  // of the bisection bound 4/k
  if (args.quick) {
    meshes.resize(1);
    fractions = {0.2, 0.6, 1.0};
  }
  const std::vector<TrafficPattern> patterns = {TrafficPattern::kUniform, TrafficPattern::kTranspose,
                                                TrafficPattern::kHotspot};
  sim::CsvWriter sweep({"mesh", "pattern", "offered_target", "offered", "accepted", "avg_latency_cycles",
                        "max_latency_cycles", "undelivered_packets", "cycles", "wavelet_hops", "wall_s"});
  sim::CsvWriter sat({"mesh", "pattern", "zero_load_latency_cycles", "saturation_throughput",
                      "bisection_bound", "booksim_reference", "relative_to_booksim"});
  for (const MeshPlan& m : meshes) {
    FabricConfig fc;
    fc.width = fc.height = m.k;
    const double bisection = 4.0 / m.k;
    for (TrafficPattern p : patterns) {
      double zero_load = 0.0;
      double saturation = 0.0;
      for (double f : fractions) {
        TrafficConfig tc;
        tc.pattern = p;
        tc.injection_rate = f * bisection;
        tc.warmup_cycles = m.warmup;
        tc.measure_cycles = m.measure;
        tc.drain_cycles = m.drain;
        const TrafficResult r = run_traffic(fc, tc);
        if (zero_load == 0.0) zero_load = r.avg_latency_cycles;
        saturation = std::max(saturation, r.accepted);
        const std::string mesh = std::to_string(m.k) + "x" + std::to_string(m.k);
        sweep.row({mesh, pattern_name(p), sim::fmt_num(tc.injection_rate), sim::fmt_num(r.offered),
                   sim::fmt_num(r.accepted), sim::fmt_num(r.avg_latency_cycles),
                   sim::fmt_num(r.max_latency_cycles), std::to_string(r.undelivered_packets),
                   std::to_string(r.cycles), std::to_string(r.wavelet_hops), sim::fmt_num(r.wall_seconds)});
        if (!args.quiet) {
          std::fprintf(stderr, "fabric %s %-9s offered %.4f accepted %.4f latency %.1f cycles (%.2f s)\n",
                       mesh.c_str(), pattern_name(p), r.offered, r.accepted, r.avg_latency_cycles,
                       r.wall_seconds);
          std::fflush(stderr);
        }
      }
      const bool ref = p == TrafficPattern::kUniform && m.booksim > 0.0;
      sat.row({std::to_string(m.k) + "x" + std::to_string(m.k), pattern_name(p), sim::fmt_num(zero_load),
               sim::fmt_num(saturation), sim::fmt_num(bisection), ref ? sim::fmt_num(m.booksim) : "",
               ref ? sim::fmt_num(saturation / m.booksim) : ""});
    }
  }
  sim::write_file_atomic(args.out_dir / "fabric_traffic.csv", sweep.str());
  sim::write_file_atomic(args.out_dir / "fabric_saturation.csv", sat.str());
  if (args.quick) return {"fabric_traffic.csv", "fabric_saturation.csv"};

  // How the 32 x 32 uniform saturation depends on the router assumptions (buffer depth,
  // pipeline and credit latency, allocator): the comparison with BookSim in the docs.
  struct Variant {
    const char* name;
    std::uint32_t buffer, hop, credit;
    SwitchAllocator allocator;
  };
  const std::vector<Variant> variants = {{"default", 4, 1, 1, SwitchAllocator::kSeparable},
                                         {"greedy allocator", 4, 1, 1, SwitchAllocator::kGreedy},
                                         {"2-wavelet buffers", 2, 1, 1, SwitchAllocator::kSeparable},
                                         {"3-cycle hop and credit", 4, 3, 3, SwitchAllocator::kSeparable},
                                         {"1-wavelet buffers", 1, 1, 1, SwitchAllocator::kSeparable}};
  sim::CsvWriter sens({"variant", "input_buffer_wavelets", "hop_latency_cycles", "credit_latency_cycles",
                       "allocator", "saturation_throughput", "booksim_reference"});
  for (const Variant& v : variants) {
    FabricConfig fc;
    fc.width = fc.height = 32;
    fc.input_buffer_wavelets = v.buffer;
    fc.hop_latency_cycles = v.hop;
    fc.credit_latency_cycles = v.credit;
    fc.allocator = v.allocator;
    double saturation = 0.0;
    for (double rate : {0.09, 0.10, 0.11, 0.12, 0.13}) {
      TrafficConfig tc;
      tc.injection_rate = rate;
      saturation = std::max(saturation, run_traffic(fc, tc).accepted);
    }
    sens.row({v.name, std::to_string(v.buffer), std::to_string(v.hop), std::to_string(v.credit),
              v.allocator == SwitchAllocator::kGreedy ? "greedy" : "separable", sim::fmt_num(saturation),
              "0.09"});
    if (!args.quiet) std::fprintf(stderr, "fabric 32x32 uniform, %s: saturation %.4f\n", v.name, saturation);
  }
  sim::write_file_atomic(args.out_dir / "fabric_sensitivity.csv", sens.str());
  return {"fabric_traffic.csv", "fabric_saturation.csv", "fabric_sensitivity.csv"};
}

namespace {

// Splits "a,b" and repeated options into their values.
std::vector<std::string> option_values(const sim::BenchArgs& args, const std::string& name) {
  std::vector<std::string> out;
  auto it = args.options.find(name);
  if (it == args.options.end()) return out;
  for (const std::string& v : it->second) {
    std::size_t start = 0;
    while (start <= v.size()) {
      const std::size_t comma = v.find(',', start);
      const std::string part =
          v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

std::uint64_t parse_count(const std::string& s, const char* what) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || v == 0)
    throw std::invalid_argument(std::string("bench gemv: bad ") + what + " '" + s + "'");
  return v;
}

struct GemvSweep {
  std::vector<std::uint64_t> sizes = {4096, 8192, 16384, 32768};
  std::vector<std::pair<std::uint32_t, std::uint32_t>> grids = {
      {120, 120}, {240, 240}, {480, 480}, {720, 720}};
  std::vector<Reduction> reductions = {Reduction::kChain, Reduction::kTree, Reduction::kKTree};
  std::vector<Accumulate> accumulations = {Accumulate::kFp16, Accumulate::kFp32};
  bool custom = false;  // any option given: no GEMM section
};

GemvSweep gemv_sweep(const sim::BenchArgs& args) {
  GemvSweep s;
  if (args.quick) {
    s.sizes = {4096};
    s.grids = {{60, 60}, {120, 120}};
  }
  if (auto v = option_values(args, "size"); !v.empty()) {
    s.sizes.clear();
    for (const std::string& x : v) s.sizes.push_back(parse_count(x, "--size"));
    s.custom = true;
  }
  if (auto v = option_values(args, "grid"); !v.empty()) {
    s.grids.clear();
    for (const std::string& x : v) {
      const std::size_t cross = x.find('x');
      const auto p = static_cast<std::uint32_t>(parse_count(x.substr(0, cross), "--grid"));
      const auto q = cross == std::string::npos
                         ? p
                         : static_cast<std::uint32_t>(parse_count(x.substr(cross + 1), "--grid"));
      s.grids.emplace_back(p, q);
    }
    s.custom = true;
  }
  if (auto v = option_values(args, "reduction"); !v.empty()) {
    s.reductions.clear();
    for (const std::string& x : v) {
      Reduction r = Reduction::kChain;
      if (x == "all") {
        s.reductions = {Reduction::kChain, Reduction::kTree, Reduction::kKTree};
      } else if (parse_reduction(x, r)) {
        s.reductions.push_back(r);
      } else {
        throw std::invalid_argument("bench gemv: --reduction must be chain, tree, ktree or all, not '" + x +
                                    "'");
      }
    }
    s.custom = true;
  }
  if (auto v = option_values(args, "accumulate"); !v.empty()) {
    s.accumulations.clear();
    for (const std::string& x : v) {
      if (x == "all") {
        s.accumulations = {Accumulate::kFp16, Accumulate::kFp32};
      } else if (x == "fp16") {
        s.accumulations.push_back(Accumulate::kFp16);
      } else if (x == "fp32") {
        s.accumulations.push_back(Accumulate::kFp32);
      } else {
        throw std::invalid_argument("bench gemv: --accumulate must be fp16, fp32 or all, not '" + x + "'");
      }
    }
    s.custom = true;
  }
  return s;
}

}  // namespace

std::vector<std::string> bench_gemv(const sim::BenchArgs& args) {
  struct Wafer {
    const char* name;
    PeConfig pe;
    std::uint32_t max_grid;  // the smaller fabric dimension (757 x 996, 762 x 1176)
    double clock_hz;         // 1.1 GHz (WSE-2 datasheet; assumed for WSE-3)
  };
  const std::vector<Wafer> wafers = {{"WSE-2", wse2_pe_config(), 757, 1.1e9},
                                     {"WSE-3", wse3_pe_config(), 762, 1.1e9}};
  const GemvSweep sweep = gemv_sweep(args);
  sim::CsvWriter csv({"wafer",
                      "matrix",
                      "grid",
                      "reduction",
                      "ktree_group",
                      "accumulate",
                      "vectors",
                      "fidelity",
                      "k",
                      "tile_rows",
                      "tile_cols",
                      "sram_bytes_per_pe",
                      "fits",
                      "total_cycles",
                      "floor_cycles",
                      "ratio",
                      "total_us",
                      "per_vector_us",
                      "first_vector_cycles",
                      "multicast_cycles",
                      "compute_cycles",
                      "compute_done_cycles",
                      "reduction_cycles",
                      "wavelet_hops",
                      "vectors_simulated",
                      "wall_s",
                      "note"});
  const FabricConfig fabric;  // per-PE fabric defaults (1-cycle hops and ramps)
  // One row: the GEMV (m = 1) or GEMM of m vectors, per-PE (k = 1) or tiled with nodes of k x k PEs.
  auto run_row = [&](const Wafer& w, GemvConfig gc, std::uint32_t k) {
    const char* red_name = reduction_name(gc.reduction);
    const std::string shape = std::to_string(gc.rows) + "x" + std::to_string(gc.cols);
    const std::string gs = std::to_string(gc.grid_rows) + "x" + std::to_string(gc.grid_cols);
    const std::string m = std::to_string(gc.vectors);
    const char* acc = gc.accumulate == Accumulate::kFp16 ? "fp16" : "fp32";
    const std::string fidelity = k == 1 ? "per-PE" : "tiled";
    if (gc.reduction == Reduction::kKTree && gc.ktree_group == 0) {
      // The group the kernel would pick, stated in the row (whole nodes when tiled).
      gc.ktree_group =
          ktree_auto_group(gc.grid_cols, fabric.hop_latency_cycles, fabric.ramp_latency_cycles,
                           add_cycles(w.pe, gc.accumulate, 4 / accumulator_bytes(gc.accumulate)), k);
    }
    const std::string group = gc.reduction == Reduction::kKTree ? std::to_string(gc.ktree_group) : "";
    const std::uint64_t floor = gemv_floor_cycles(fabric, w.pe, gc);
    try {
      const GemvResult r = k == 1 ? run_gemv(fabric, w.pe, gc) : run_gemv_tiled(fabric, k, w.pe, gc);
      const double us = static_cast<double>(r.total_cycles) / w.clock_hz * 1e6;
      csv.row({w.name,
               shape,
               gs,
               red_name,
               group,
               acc,
               m,
               fidelity,
               std::to_string(k),
               std::to_string(r.tile_rows),
               std::to_string(r.tile_cols),
               std::to_string(r.sram_bytes_per_pe),
               "yes",
               std::to_string(r.total_cycles),
               std::to_string(floor),
               sim::fmt_num(static_cast<double>(r.total_cycles) / static_cast<double>(floor)),
               sim::fmt_num(us),
               sim::fmt_num(us / gc.vectors),
               std::to_string(r.first_vector_cycles),
               std::to_string(r.multicast_cycles),
               std::to_string(r.compute_cycles),
               std::to_string(r.compute_done_cycles),
               std::to_string(r.reduction_cycles),
               std::to_string(r.wavelet_hops),
               std::to_string(r.vectors_simulated),
               sim::fmt_num(r.wall_seconds),
               ""});
      if (!args.quiet) {
        std::fprintf(stderr,
                     "gemv %s %s x %s on %s, %s %s, %s k %u: %llu cycles (floor %llu; %.3f us per vector; "
                     "multicast %llu, compute %llu, reduction %llu) %.2f s\n",
                     w.name, shape.c_str(), m.c_str(), gs.c_str(), red_name, acc, fidelity.c_str(), k,
                     static_cast<unsigned long long>(r.total_cycles), static_cast<unsigned long long>(floor),
                     us / gc.vectors, static_cast<unsigned long long>(r.multicast_cycles),
                     static_cast<unsigned long long>(r.compute_cycles),
                     static_cast<unsigned long long>(r.reduction_cycles), r.wall_seconds);
        std::fflush(stderr);
      }
    } catch (const CapacityError& e) {
      const std::uint64_t mt = (gc.rows + gc.grid_rows - 1) / gc.grid_rows;
      const std::uint64_t kt = (gc.cols + gc.grid_cols - 1) / gc.grid_cols;
      csv.row({w.name,
               shape,
               gs,
               red_name,
               group,
               acc,
               m,
               fidelity,
               std::to_string(k),
               std::to_string(mt),
               std::to_string(kt),
               "",
               "no",
               "",
               std::to_string(floor),
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
  // Per-PE up to 240 a side; tiled k = 8 above (within the tested node bounds, at a
  // fraction of the CPU).
  for (const Wafer& w : wafers) {
    for (std::uint64_t n : sweep.sizes) {
      for (const auto& [gp, gq] : sweep.grids) {
        if (std::min(gp, gq) > w.max_grid) continue;
        for (Accumulate acc : sweep.accumulations) {
          for (Reduction red : sweep.reductions) {
            GemvConfig gc;
            gc.rows = gc.cols = n;
            gc.grid_rows = gp;
            gc.grid_cols = gq;
            gc.accumulate = acc;
            gc.reduction = red;
            run_row(w, gc, std::max(gp, gq) > 240 ? 8 : 1);
          }
        }
      }
    }
  }
  if (sweep.custom) {
    sim::write_file_atomic(args.out_dir / "gemv.csv", csv.str());
    return {"gemv.csv"};
  }
  // GEMM: m vectors through the grid (a decode batch of m tokens, or m prompt tokens),
  // WSE-3, chain reduction, on tiled fidelity k = 8 (per-PE would take a minute per row
  // at m = 8; k = 1 equals it, and the tiled bound is tested). Shapes: square 4096 and
  // 8192 projections and the two FFN matrices of a 4096-wide model with a 14336-wide FFN
  // (up/gate: 14336 x 4096; down: 4096 x 14336).
  struct Shape {
    std::uint64_t rows, cols;
  };
  std::vector<Shape> shapes = {{4096, 4096}, {8192, 8192}, {14336, 4096}, {4096, 14336}};
  std::vector<std::uint32_t> batch = {1, 8, 32, 128};
  std::uint32_t grid = 240;
  if (args.quick) {
    shapes = {{4096, 4096}};
    batch = {1, 8};
    grid = 120;
  }
  for (const Shape& sh : shapes) {
    for (std::uint32_t m : batch) {
      GemvConfig gc;
      gc.rows = sh.rows;
      gc.cols = sh.cols;
      gc.grid_rows = gc.grid_cols = grid;
      gc.accumulate = Accumulate::kFp32;
      gc.vectors = m;
      run_row(wafers[1], gc, 8);
    }
  }
  sim::write_file_atomic(args.out_dir / "gemv.csv", csv.str());
  return {"gemv.csv"};
}

std::vector<std::string> bench_collectives(const sim::BenchArgs& args) {
  // Per-PE fabric defaults, WSE-3 PE; vectors of fp32 partial sums (1 per wavelet).
  const FabricConfig fabric;
  const PeConfig pe = wse3_pe_config();
  std::vector<std::uint32_t> sides = {16, 64, 256, 720};
  std::vector<std::uint64_t> lengths = {8, 64};
  if (args.quick) {
    sides = {16, 64};
    lengths = {8};
  }
  sim::CsvWriter csv({"kernel", "shape", "grid", "elements", "wavelets", "total_cycles", "total_us",
                      "wavelet_hops", "wall_s"});
  KernelCache cache;  // the 1 x n line and the n x 1 column are distinct kernels
  auto emit = [&](const char* kernel, const char* shape, std::uint32_t P, std::uint32_t Q, std::uint64_t n,
                  const CollectiveResult& r) {
    csv.row({kernel, shape, std::to_string(P) + "x" + std::to_string(Q), std::to_string(n),
             std::to_string(r.wavelets), std::to_string(r.total_cycles),
             sim::fmt_num(static_cast<double>(r.total_cycles) / 1.1e9 * 1e6), std::to_string(r.wavelet_hops),
             sim::fmt_num(r.wall_seconds)});
    if (!args.quiet) {
      std::fprintf(stderr, "%s %s %ux%u, %llu elements: %llu cycles, %.2f s\n", kernel, shape, P, Q,
                   static_cast<unsigned long long>(n), static_cast<unsigned long long>(r.total_cycles),
                   r.wall_seconds);
      std::fflush(stderr);
    }
  };
  for (std::uint32_t side : sides) {
    for (std::uint64_t n : lengths) {
      if (side > 256 && n > 8) continue;  // 2-D tree on 720 x 720 with 64 wavelets: minutes of CPU
      for (Reduction red : {Reduction::kChain, Reduction::kTree}) {
        const std::string name_s = std::string("reduce_") + reduction_name(red);
        const char* name = name_s.c_str();
        ReduceConfig line;
        line.elements = n;
        line.reduction = red;
        line.grid_rows = 1;
        line.grid_cols = side;
        emit(name, "row", 1, side, n, cache.reduce(fabric, pe, line));
        ReduceConfig grid = line;
        grid.grid_rows = side;
        emit(name, "grid", side, side, n, cache.reduce(fabric, pe, grid));
      }
      BroadcastConfig b;
      b.elements = n;
      b.grid_rows = 1;
      b.grid_cols = side;
      emit("broadcast", "row_from_end", 1, side, n, cache.broadcast(fabric, pe, b));
      b.grid_rows = side;
      emit("broadcast", "grid_from_corner", side, side, n, cache.broadcast(fabric, pe, b));
      b.source = {side / 2, side / 2};
      emit("broadcast", "grid_from_centre", side, side, n, cache.broadcast(fabric, pe, b));
    }
  }
  sim::write_file_atomic(args.out_dir / "collectives.csv", csv.str());
  return {"collectives.csv"};
}

std::vector<std::string> bench_gemv_tiled(const sim::BenchArgs& args) {
  // WSE-3 PE, fp32 accumulation, chain reduction, whole-wafer grids; per-PE (k = 1) where
  // it is affordable, as the reference.
  const FabricConfig fabric;
  const PeConfig pe = wse3_pe_config();
  std::vector<std::uint64_t> sizes = {4096, 8192, 16384, 32768};
  std::vector<std::uint32_t> grids = {240, 720};
  std::vector<std::uint32_t> ks = {1, 4, 8};
  if (args.quick) {
    sizes = {4096};
    grids = {120};
    ks = {1, 8};
  }
  sim::CsvWriter csv({"matrix", "grid", "k", "total_cycles", "total_us", "multicast_cycles",
                      "compute_done_cycles", "reduction_cycles", "wavelet_hops", "wall_s"});
  for (std::uint64_t n : sizes) {
    for (std::uint32_t grid : grids) {
      for (std::uint32_t k : ks) {
        if (k == 1 && grid > 240 && n != 8192) continue;  // per-PE 720 x 720: one reference run
        GemvConfig g;
        g.rows = g.cols = n;
        g.grid_rows = g.grid_cols = grid;
        g.accumulate = Accumulate::kFp32;
        const GemvResult r = run_gemv_tiled(fabric, k, pe, g);
        csv.row({std::to_string(n), std::to_string(grid) + "x" + std::to_string(grid), std::to_string(k),
                 std::to_string(r.total_cycles),
                 sim::fmt_num(static_cast<double>(r.total_cycles) / 1.1e9 * 1e6),
                 std::to_string(r.multicast_cycles), std::to_string(r.compute_done_cycles),
                 std::to_string(r.reduction_cycles), std::to_string(r.wavelet_hops),
                 sim::fmt_num(r.wall_seconds)});
        if (!args.quiet) {
          std::fprintf(stderr, "gemv tiled %llu on %ux%u, k %u: %llu cycles, %.3f s\n",
                       static_cast<unsigned long long>(n), grid, grid, k,
                       static_cast<unsigned long long>(r.total_cycles), r.wall_seconds);
          std::fflush(stderr);
        }
      }
    }
  }
  sim::write_file_atomic(args.out_dir / "gemv_tiled.csv", csv.str());
  return {"gemv_tiled.csv"};
}

}  // namespace wse::wafer
