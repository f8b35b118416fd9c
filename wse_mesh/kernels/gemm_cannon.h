// GEMM Y = W X of m tokens on a P x Q PE grid with W stationary: a weight-stationary
// Cannon algorithm (docs/wse_mesh.md, "Prefill as a GEMM"), for a prefill chunk's
// projections, where the GEMV of gemv.h would stream the tokens one pass after another.
//
// Mapping (the weights lie where the placement put them, as for the GEMV):
//  - W (M rows x K columns, fp16) is tiled as in gemv.h: PE (column c, row i) holds a
//    block of about M/P rows (Mt_i) by K/Q columns (Kt_c), the first M mod P rows and K
//    mod Q columns one more.
//  - The m tokens are cut into R rounds of Q token blocks (block t of a round has about
//    m / (R Q) tokens, b at most). Each grid row is a ring of its Q PEs along which the
//    partial-sum blocks (b x Mt_i values at the accumulator precision) move; X's blocks
//    (b x Kt_c fp16) are broadcast down the columns.
//  - The ring is folded (interleaved) onto the mesh, which has no wrap-around links:
//    ring position l sits on PE column 2l for l < ceil(Q/2) and 2(Q - 1 - l) + 1 after, so
//    ring neighbours are at most 2 hops apart (1 at the two turns) and every link
//    direction carries one ring edge (WaferLLM's interleaved placement).
//  - Step s of a round: the PE at ring position l multiplies its tile by token block
//    t = (l + s) mod Q of its column's X into the partial sums of block t of its row,
//    which it received from ring position l + 1 (where they were at step s - 1; at s = 0
//    they start at zero), then sends them on to position l - 1. After Q steps every
//    block has met every K block; its sums are final at ring position t + 1 and leave
//    the PE through its ramp (the drain) to where the next kernel reads them.
//  - Compute: one FMAC instruction per (token, weight column) over the Mt accumulators:
//    a token costs C1 = Kt_c fmac_cycles(Mt_i) (pe.h, the GEMV's instruction and SIMD
//    width / SRAM-port rule), a block b C1.
//  - Shifts: a token's sums leave as soon as its FMACs are done, as one message of
//    w1 = ceil(Mt_i acc / 4) wavelets over the ring edge's h hops (fabric rule: complete
//    h H + w1 + 2R cycles after it starts; the edge's link carries one wavelet a cycle,
//    so a token's message starts no earlier than the previous one's last wavelet); the
//    next PE starts a token's FMACs once its sums have arrived (token-granular
//    pipelining, so a step costs max(b C1, C1 + shift) rather than their sum).
//  - Activations: column c's block for step s is broadcast down the column from one end
//    (D = (P - 1) H + 2R latency, ceil(b Kt_c / 2) wavelets on the column's links, one a
//    cycle, blocks back to back), into the second of two activation buffers, once every PE
//    of the column has finished the step that used that buffer (double buffering). The
//    first block entering the column is the fill.
//  - Split-K (groups G > 1, G dividing Q): G rings of Q / G consecutive PE columns, each
//    the above over its columns' share of K, then each block's partial sums chained east
//    across the groups (q = Q / G hops a stage) and added token by token (add_cycles);
//    for m < Q, where one ring of Q takes Q steps whatever m.
// SRAM (the fullest PE, tile Mt_0 x Kt_0): the weight tile, two activation blocks (fp16),
// two partial-sum blocks (accumulator precision) and the output blocks it keeps until the
// next kernel reads them (R blocks of b x Mt fp16); R grows (more, smaller blocks) until
// they fit, and CapacityError names the shortfall when even one-token blocks do not.
//
// Two fidelities: run_gemm_cannon (per-PE: every PE's own tile, token by token) and
// run_gemm_cannon_tiled (nodes of k x k PEs: the k PE rows of a node row run as its
// largest, its broadcast crosses node hops of k H, each PE column runs as its node
// column's largest, a block per step in closed form). Bound (tested on uneven tiles too):
// tiled = per-PE for k = 1, and per-PE - (k - 1) H <= tiled <= per-PE.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

// How a decoder times a GEMM of m > 1 tokens on a weight grid: kAuto takes the faster of
// the GEMV passes (gemv.h, `gemm_vectors` tokens a pass) and this kernel, as tuned
// software would; kGemv the passes only (the ablation); kCannon this kernel whenever its
// buffers fit.
enum class GemmAlgorithm : std::uint8_t { kAuto, kGemv, kCannon };
// "auto", "gemv", "cannon".
const char* gemm_algorithm_name(GemmAlgorithm a);
// Parses one of gemm_algorithm_name's names; false (and `a` unchanged) for anything else.
bool parse_gemm_algorithm(std::string_view name, GemmAlgorithm& a);

struct GemmCannonConfig {
  std::uint64_t rows = 4096;    // M: output features (split over the grid rows)
  std::uint64_t cols = 4096;    // K: input features (split over the grid columns, the ring)
  std::uint64_t tokens = 64;    // m
  std::uint32_t grid_rows = 4;  // P
  std::uint32_t grid_cols = 4;  // Q: PEs of a ring
  Accumulate accumulate = Accumulate::kFp16;
  // Tokens per block: 0 = ceil(m / Q) (one round), fewer when the buffers do not fit.
  std::uint32_t block_tokens = 0;
  // SRAM of a PE for everything but its weight tile (blocks, outputs); 0 = the PE's SRAM
  // less the tile. The decoder passes what the layer's placement leaves.
  std::uint64_t buffer_bytes = 0;
  // Split-K: G rings of Q / G PE columns (G divides Q), each a Cannon GEMM over its
  // columns' share of K, their partial sums then chained east across the groups and added
  // (for m < Q, where one ring of Q takes Q steps whatever m). 1 = one ring a row.
  std::uint32_t groups = 1;
};

struct GemmCannonResult {
  std::uint64_t tile_rows = 0;            // Mt of the fullest PE
  std::uint64_t tile_cols = 0;            // Kt of the fullest PE
  std::uint32_t block_tokens = 0;         // b: the largest block
  std::uint32_t rounds = 0;               // R
  std::uint64_t steps = 0;                // R x Q
  std::uint64_t sram_bytes_per_pe = 0;    // tile + buffers + outputs of the fullest PE
  std::uint64_t total_cycles = 0;         // the last output block out of its PE
  std::uint64_t fill_cycles = 0;          // the last PE's first FMAC starts (first block entered)
  std::uint64_t compute_cycles = 0;       // the busiest PE's FMAC cycles (m tokens)
  std::uint64_t compute_done_cycles = 0;  // the last FMAC done
  std::uint64_t drain_cycles = 0;         // total - compute done: the last outputs leaving
  std::uint64_t shift_cycles = 0;         // the busiest link's wavelets (ring edge or column)
  std::uint64_t busy_cycles = 0;          // FMAC cycles summed over all PEs
  std::uint64_t wavelet_hops = 0;         // PE links crossed by all wavelets (sums, activations)
  std::uint32_t max_ring_hops = 0;        // 2 for a folded ring of Q >= 3
  std::uint32_t groups = 1;               // split-K rings of a row
  double wall_seconds = 0.0;
};

// The PE column of ring position l in a folded ring of q PEs, and back.
std::uint32_t folded_column(std::uint32_t l, std::uint32_t q);
std::uint32_t folded_position(std::uint32_t column, std::uint32_t q);

// Per-PE fidelity: every PE's own tile, token by token.
GemmCannonResult run_gemm_cannon(const FabricConfig& fabric, const PeConfig& pe, const GemmCannonConfig& g);
// Tiled fidelity: nodes of k x k PEs (k = 1: the same recurrences a block at a time).
GemmCannonResult run_gemm_cannon_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                       const GemmCannonConfig& g);

}  // namespace wse::wafer
