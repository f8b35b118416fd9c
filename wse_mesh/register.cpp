#include "wse_mesh/register.h"

#include "wse_mesh/benches/benches.h"
#include "wse_mesh/benches/kernel_benches.h"

namespace wse::wafer {

void register_wse_mesh(sim::Registry& registry) {
  registry.add_bench(
      "fabric",
      sim::Bench{"wafer fabric: latency and accepted throughput vs offered load (uniform, transpose, "
                 "hotspot) on 8x8, 32x32, 64x64 per-PE meshes",
                 bench_fabric});
  registry.add_bench(
      "gemv",
      sim::Bench{"wafer GEMV and GEMM: time vs matrix size (4K-32K fp16) and PE grid on WSE-2 and WSE-3, "
                 "split into compute, multicast and reduction (chain and tree); GEMM of m = 1..128 "
                 "vectors (decode batch / prefill tokens) on 240x240 at tiled k = 8",
                 bench_gemv});
  registry.add_bench(
      "collectives",
      sim::Bench{"wafer reductions (chain, tree; row and 2-D grid) and broadcasts (row, grid) vs "
                 "size, 16 to 720 PEs a side",
                 bench_collectives});
  registry.add_bench("gemv_tiled",
                     sim::Bench{"wafer GEMV on tiled fidelity (k x k PEs per node) against per-PE, up to "
                                "720x720 grids",
                                bench_gemv_tiled});
  registry.add_bench(
      "attention",
      sim::Bench{"wafer decode attention (Llama-3.1-8B heads) vs context and tokens per PE, split "
                 "into append, query, compute and combine; RMSNorm and softmax vs line length",
                 bench_attention});
}

}  // namespace wse::wafer
