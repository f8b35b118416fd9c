#include "wse_mesh/kernels/gemm_cannon.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "systemc_models/units/integer.h"

namespace wse::wafer {

namespace {

// What both fidelities share: the validated shapes, the blocks and the ring.
struct Plan {
  std::uint32_t P = 0, Q = 0;
  std::uint64_t M = 0, K = 0, m = 0;
  std::uint64_t acc = 2;   // accumulator bytes
  std::uint32_t R = 1;     // rounds
  std::uint64_t b = 1;     // tokens of the largest block
  std::uint64_t sram = 0;  // fullest PE
  std::uint64_t H = 1, ramp = 1;
  std::vector<std::uint32_t> col_of;   // ring position -> PE column
  std::vector<std::uint32_t> pos_of;   // PE column -> ring position
  std::vector<std::uint32_t> in_hops;  // ring position l: hops from l + 1 to l

  std::uint64_t tile_m(std::uint64_t i) const { return M / P + (i < M % P ? 1 : 0); }
  std::uint64_t tile_k(std::uint64_t c) const { return K / Q + (c < K % Q ? 1 : 0); }
  std::uint64_t round_tokens(std::uint32_t r) const { return m / R + (r < m % R ? 1 : 0); }
  // Tokens of block t of round r.
  std::uint64_t block(std::uint32_t r, std::uint32_t t) const {
    const std::uint64_t mr = round_tokens(r);
    return mr / Q + (t < mr % Q ? 1 : 0);
  }
  // Wavelets of one token's partial sums (accumulator precision) and its output (fp16).
  std::uint64_t sum_wavelets(std::uint64_t mt) const { return ceil_div(mt * acc, 4); }
  static std::uint64_t out_wavelets(std::uint64_t mt) { return ceil_div(mt * 2, 4); }
  static std::uint64_t act_wavelets(std::uint64_t tokens, std::uint64_t kt) {
    return ceil_div(tokens * kt * 2, 4);
  }
};

Plan plan(const FabricConfig& fabric, const PeConfig& pe, const GemmCannonConfig& g) {
  validate(pe);
  Plan p;
  p.P = g.grid_rows;
  p.Q = g.grid_cols;
  p.M = g.rows;
  p.K = g.cols;
  p.m = g.tokens;
  if (p.P == 0 || p.Q == 0)
    throw std::invalid_argument("gemm cannon: grid_rows and grid_cols must be at least 1");
  if (p.P > p.M || p.Q > p.K) {
    throw std::invalid_argument("gemm cannon: the " + std::to_string(p.P) + " x " + std::to_string(p.Q) +
                                " grid is larger than the " + std::to_string(p.M) + " x " +
                                std::to_string(p.K) + " matrix (some PEs would hold no rows or columns)");
  }
  if (p.m == 0) throw std::invalid_argument("gemm cannon: tokens must be at least 1");
  if (g.groups == 0) throw std::invalid_argument("gemm cannon: groups must be at least 1");
  p.acc = accumulator_bytes(g.accumulate);
  p.H = fabric.hop_latency_cycles;
  p.ramp = fabric.ramp_latency_cycles;
  const std::uint64_t mt = ceil_div(p.M, p.P), kt = ceil_div(p.K, p.Q);
  const std::uint64_t tile = mt * kt * 2;
  const std::uint64_t capacity = g.buffer_bytes > 0 ? tile + g.buffer_bytes : pe.sram_bytes;
  const auto bytes = [&](std::uint32_t r, std::uint64_t b) {
    return tile + 2 * b * kt * 2 + 2 * b * mt * p.acc + std::uint64_t{r} * b * mt * 2;
  };
  // Rounds: the fewest (largest blocks, at most block_tokens) whose buffers fit.
  std::uint64_t r = g.block_tokens > 0 ? ceil_div(p.m, std::uint64_t{g.block_tokens} * p.Q) : 1;
  for (;;) {
    const std::uint64_t b = ceil_div(p.m, r * p.Q);
    if (bytes(static_cast<std::uint32_t>(r), b) <= capacity || b == 1) break;
    r = ceil_div(p.m, (b - 1) * p.Q);
  }
  p.R = static_cast<std::uint32_t>(r);
  p.b = ceil_div(p.m, r * p.Q);
  SramPlacement sram({0, 0}, capacity);
  sram.place("W tile " + std::to_string(mt) + "x" + std::to_string(kt) + " fp16", tile);
  sram.place("activation blocks (2 x " + std::to_string(p.b) + " tokens x " + std::to_string(kt) + " fp16)",
             2 * p.b * kt * 2);
  sram.place("partial-sum blocks (2 x " + std::to_string(p.b) + " tokens x " + std::to_string(mt) + " fp" +
                 std::to_string(8 * p.acc) + ")",
             2 * p.b * mt * p.acc);
  sram.place("output blocks (" + std::to_string(p.R) + " x " + std::to_string(p.b) + " tokens x " +
                 std::to_string(mt) + " fp16)",
             std::uint64_t{p.R} * p.b * mt * 2);
  p.sram = sram.used_bytes();
  p.col_of.resize(p.Q);
  p.pos_of.resize(p.Q);
  for (std::uint32_t l = 0; l < p.Q; ++l) {
    p.col_of[l] = folded_column(l, p.Q);
    p.pos_of[p.col_of[l]] = l;
  }
  p.in_hops.assign(p.Q, 0);
  for (std::uint32_t l = 0; l < p.Q && p.Q > 1; ++l) {
    const std::uint32_t a = p.col_of[(l + 1) % p.Q], c = p.col_of[l];
    p.in_hops[l] = a > c ? a - c : c - a;
  }
  return p;
}

// The counts both fidelities report exactly (closed forms over the per-PE tiles).
void fill_counts(const Plan& p, const PeConfig& pe, Accumulate acc, GemmCannonResult& res) {
  res.tile_rows = ceil_div(p.M, p.P);
  res.tile_cols = ceil_div(p.K, p.Q);
  res.block_tokens = static_cast<std::uint32_t>(p.b);
  res.rounds = p.R;
  res.steps = std::uint64_t{p.R} * p.Q;
  res.sram_bytes_per_pe = p.sram;
  std::uint64_t busy = 0;
  for (std::uint32_t i = 0; i < p.P; ++i) {
    for (std::uint32_t c = 0; c < p.Q; ++c) busy += p.m * p.tile_k(c) * fmac_cycles(pe, acc, p.tile_m(i));
  }
  res.busy_cycles = busy;
  res.compute_cycles = p.m * p.tile_k(0) * fmac_cycles(pe, acc, p.tile_m(0));
  // Ring edge l + 1 -> l carries every block but block l of each round (block t's sums
  // are final at position t + 1, after Q - 1 shifts).
  std::uint64_t ring_max = 0, hops = 0;
  for (std::uint32_t l = 0; l < p.Q && p.Q > 1; ++l) {
    std::uint64_t tokens = p.m;
    for (std::uint32_t r = 0; r < p.R; ++r) tokens -= p.block(r, l);
    ring_max = std::max(ring_max, tokens * p.sum_wavelets(p.tile_m(0)));
    for (std::uint32_t i = 0; i < p.P; ++i) hops += tokens * p.sum_wavelets(p.tile_m(i)) * p.in_hops[l];
  }
  // A column's links carry every block of X's column once (broadcast from one end).
  std::uint64_t col_max = 0;
  for (std::uint32_t c = 0; c < p.Q; ++c) {
    std::uint64_t w = 0;
    for (std::uint32_t r = 0; r < p.R; ++r) {
      for (std::uint32_t t = 0; t < p.Q; ++t) w += Plan::act_wavelets(p.block(r, t), p.tile_k(c));
    }
    col_max = std::max(col_max, p.P > 1 ? w : 0);
    hops += w * (p.P - 1);
  }
  res.shift_cycles = std::max(ring_max, col_max);
  res.wavelet_hops = hops;
  for (std::uint32_t h : p.in_hops) res.max_ring_hops = std::max(res.max_ring_hops, h);
}

// The column broadcasts of one step: the block of step s enters column c's spare buffer
// once every PE (row group) of the column has finished step s - 2, after the previous
// block's wavelets, D cycles of latency behind.
struct Broadcast {
  std::vector<std::uint64_t> link_free;          // per column: the link free of the previous block
  std::vector<std::uint64_t> arrive;             // per column: this step's block usable
  std::vector<std::vector<std::uint64_t>> done;  // [s mod 3][column]: latest end of step s
  explicit Broadcast(std::uint32_t q)
      : link_free(q, 0), arrive(q, 0), done(3, std::vector<std::uint64_t>(q, 0)) {}
};

void broadcast_step(const Plan& p, Broadcast& bc, std::uint64_t s, std::uint64_t D,
                    const std::vector<std::uint64_t>& kt_of_col) {
  const std::uint32_t r = static_cast<std::uint32_t>(s / p.Q), sp = static_cast<std::uint32_t>(s % p.Q);
  for (std::uint32_t c = 0; c < p.Q; ++c) {
    const std::uint32_t t = (p.pos_of[c] + sp) % p.Q;
    const std::uint64_t b = p.block(r, t);
    if (b == 0) continue;
    const std::uint64_t wx = Plan::act_wavelets(b, kt_of_col[c]);
    const std::uint64_t free = s >= 2 ? bc.done[(s - 2) % 3][c] : 0;
    const std::uint64_t start = std::max(bc.link_free[c], free);
    bc.link_free[c] = start + wx;
    bc.arrive[c] = start + wx + D;
  }
  for (std::uint32_t c = 0; c < p.Q; ++c) bc.done[s % 3][c] = s >= 1 ? bc.done[(s - 1) % 3][c] : 0;
}

}  // namespace

const char* gemm_algorithm_name(GemmAlgorithm a) {
  switch (a) {
    case GemmAlgorithm::kAuto:
      return "auto";
    case GemmAlgorithm::kGemv:
      return "gemv";
    case GemmAlgorithm::kCannon:
      return "cannon";
  }
  return "?";
}

bool parse_gemm_algorithm(std::string_view name, GemmAlgorithm& a) {
  for (GemmAlgorithm x : {GemmAlgorithm::kAuto, GemmAlgorithm::kGemv, GemmAlgorithm::kCannon}) {
    if (name == gemm_algorithm_name(x)) {
      a = x;
      return true;
    }
  }
  return false;
}

std::uint32_t folded_column(std::uint32_t l, std::uint32_t q) {
  const std::uint32_t half = (q + 1) / 2;
  return l < half ? 2 * l : 2 * (q - 1 - l) + 1;
}

std::uint32_t folded_position(std::uint32_t column, std::uint32_t q) {
  return column % 2 == 0 ? column / 2 : q - 1 - (column - 1) / 2;
}

namespace {

// Split-K (GemmCannonConfig::groups = G > 1): each group of q = Q / G PE columns is a
// Cannon GEMM of its own (its columns' share of K, a ring of q), run by `run`; then the
// groups' partial sums are chained east, group g - 1's block landing on the PE of group g
// that holds the same block, q columns on (h = q hops), and added there token by token:
//   T = max over g of (done_g + (G - 1 - g) (q H + w1 + 2R + add(Mt))) + ceil(Mt / 2) + 2R.
template <class Run>
GemmCannonResult split_k(const FabricConfig& fabric, const PeConfig& pe, const GemmCannonConfig& g, Run run) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint32_t G = g.groups, Q = g.grid_cols;
  if (Q % G != 0 || G > Q) {
    throw std::invalid_argument("gemm cannon: groups (" + std::to_string(G) + ") must divide grid_cols (" +
                                std::to_string(Q) + ")");
  }
  if (g.grid_cols > g.cols) throw std::invalid_argument("gemm cannon: the grid is larger than the matrix");
  const std::uint32_t q = Q / G;
  const std::uint64_t mt = ceil_div(g.rows, g.grid_rows);
  const std::uint64_t acc = accumulator_bytes(g.accumulate);
  const std::uint64_t stage = std::uint64_t{q} * fabric.hop_latency_cycles + ceil_div(mt * acc, 4) +
                              2ULL * fabric.ramp_latency_cycles + add_cycles(pe, g.accumulate, mt);
  GemmCannonResult res;
  std::map<std::uint64_t, GemmCannonResult> by_cols;  // groups of the same K share a run
  std::uint64_t end = 0;
  for (std::uint32_t grp = 0; grp < G; ++grp) {
    std::uint64_t cols = 0;  // the group's columns of the balanced split of K over Q
    for (std::uint32_t c = grp * q; c < (grp + 1) * q; ++c) cols += g.cols / Q + (c < g.cols % Q ? 1 : 0);
    auto it = by_cols.find(cols);
    if (it == by_cols.end()) {
      GemmCannonConfig sub = g;
      sub.cols = cols;
      sub.grid_cols = q;
      sub.groups = 1;
      it = by_cols.emplace(cols, run(sub)).first;
    }
    const GemmCannonResult& r = it->second;
    end = std::max(end, r.compute_done_cycles + std::uint64_t{G - 1 - grp} * stage);
    if (grp == 0) res = r;  // the largest columns: the fullest PE
    res.fill_cycles = std::max(res.fill_cycles, r.fill_cycles);
    if (grp > 0) {
      res.busy_cycles += r.busy_cycles;
      res.wavelet_hops += r.wavelet_hops;
    }
  }
  std::uint64_t adds = 0, hops = 0;
  for (std::uint32_t i = 0; i < g.grid_rows; ++i) {
    const std::uint64_t mti = g.rows / g.grid_rows + (i < g.rows % g.grid_rows ? 1 : 0);
    adds += std::uint64_t{G - 1} * g.tokens * add_cycles(pe, g.accumulate, mti);
    hops += std::uint64_t{G - 1} * g.tokens * ceil_div(mti * acc, 4) * q;
  }
  res.busy_cycles += adds;
  res.wavelet_hops += hops;
  // The east links carry a ring edge's sums and the chain's.
  res.shift_cycles += g.tokens * ceil_div(mt * acc, 4);
  res.tile_cols = ceil_div(g.cols, Q);
  res.groups = G;
  res.compute_done_cycles = end;
  res.total_cycles = end + ceil_div(mt * 2, 4) + 2ULL * fabric.ramp_latency_cycles;
  res.drain_cycles = res.total_cycles - end;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace

namespace {

// The result's times from a run's fill, its last multiply-add and its last sum out.
GemmCannonResult finished(GemmCannonResult res, std::uint64_t fill, std::uint64_t done, std::uint64_t total,
                          std::chrono::steady_clock::time_point t0) {
  res.fill_cycles = fill;
  res.compute_done_cycles = done;
  res.total_cycles = total;
  res.drain_cycles = total - done;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace

GemmCannonResult run_gemm_cannon(const FabricConfig& fabric, const PeConfig& pe, const GemmCannonConfig& g) {
  const auto t0 = std::chrono::steady_clock::now();
  if (g.groups > 1) {
    return split_k(fabric, pe, g,
                   [&](const GemmCannonConfig& sub) { return run_gemm_cannon(fabric, pe, sub); });
  }
  const Plan p = plan(fabric, pe, g);
  GemmCannonResult res;
  fill_counts(p, pe, g.accumulate, res);
  const std::uint32_t P = p.P, Q = p.Q;
  const std::uint64_t R2 = 2 * p.ramp;
  const std::uint64_t D = (P - 1) * p.H + R2;
  std::vector<std::uint64_t> kt(Q), c1(std::uint64_t{P} * Q), w1(P), wout(P);
  for (std::uint32_t c = 0; c < Q; ++c) kt[c] = p.tile_k(c);
  for (std::uint32_t i = 0; i < P; ++i) {
    w1[i] = p.sum_wavelets(p.tile_m(i));
    wout[i] = Plan::out_wavelets(p.tile_m(i));
    for (std::uint32_t c = 0; c < Q; ++c)
      c1[std::uint64_t{i} * Q + c] = kt[c] * fmac_cycles(pe, g.accumulate, p.tile_m(i));
  }
  // Per PE (row i, ring position l): engine free, link to l - 1 free, ramp out free; and
  // the arrival cycle of each token's sums for the next step (double-buffered by parity).
  const std::uint64_t cells = std::uint64_t{P} * Q;
  std::vector<std::uint64_t> engine(cells, 0), link(cells, 0), out(cells, 0);
  std::vector<std::uint64_t> arrive[2] = {std::vector<std::uint64_t>(cells * p.b, 0),
                                          std::vector<std::uint64_t>(cells * p.b, 0)};
  Broadcast bc(Q);
  std::uint64_t fill = 0, done = 0, total = 0;
  const std::uint64_t steps = std::uint64_t{p.R} * Q;
  for (std::uint64_t s = 0; s < steps; ++s) {
    const std::uint32_t r = static_cast<std::uint32_t>(s / Q), sp = static_cast<std::uint32_t>(s % Q);
    broadcast_step(p, bc, s, D, kt);
    std::vector<std::uint64_t>& in = arrive[s % 2];
    std::vector<std::uint64_t>& next = arrive[(s + 1) % 2];
    for (std::uint32_t i = 0; i < P; ++i) {
      for (std::uint32_t l = 0; l < Q; ++l) {
        const std::uint32_t c = p.col_of[l];
        const std::uint64_t b = p.block(r, (l + sp) % Q);
        if (b == 0) continue;
        const std::uint64_t cell = std::uint64_t{i} * Q + l;
        const std::uint64_t cost = c1[std::uint64_t{i} * Q + c];
        std::uint64_t f = std::max(engine[cell], bc.arrive[c]);
        const std::uint32_t to = (l + Q - 1) % Q;  // ring position l - 1
        const std::uint64_t to_cell = std::uint64_t{i} * Q + to;
        const std::uint64_t latency = p.in_hops[to] * p.H + w1[i] + R2;
        for (std::uint64_t tau = 0; tau < b; ++tau) {
          if (sp > 0) f = std::max(f, in[cell * p.b + tau]);
          if (tau == 0 && s == 0) fill = std::max(fill, f);
          f += cost;
          if (sp + 1 < Q) {
            const std::uint64_t send = std::max(f, link[cell]);
            link[cell] = send + w1[i];
            next[to_cell * p.b + tau] = send + latency;
          } else {
            const std::uint64_t send = std::max(f, out[cell]);
            out[cell] = send + wout[i];
            total = std::max(total, send + wout[i] + R2);
          }
        }
        engine[cell] = f;
        done = std::max(done, f);
        bc.done[s % 3][c] = std::max(bc.done[s % 3][c], f);
      }
    }
  }
  return finished(res, fill, done, total, t0);
}

GemmCannonResult run_gemm_cannon_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                       const GemmCannonConfig& g) {
  if (k == 0) throw std::invalid_argument("gemm cannon tiled: k must be at least 1");
  const auto t0 = std::chrono::steady_clock::now();
  if (g.groups > 1) {
    return split_k(per_pe, pe, g,
                   [&](const GemmCannonConfig& sub) { return run_gemm_cannon_tiled(per_pe, k, pe, sub); });
  }
  const Plan p = plan(per_pe, pe, g);
  GemmCannonResult res;
  fill_counts(p, pe, g.accumulate, res);
  const std::uint32_t Q = p.Q;
  const std::uint32_t nodes = static_cast<std::uint32_t>(ceil_div(p.P, k));  // node rows
  const std::uint64_t R2 = 2 * p.ramp;
  // The broadcast crosses node hops of k PEs (k H each).
  const std::uint64_t D = (nodes - 1) * std::uint64_t{k} * p.H + R2;
  // A node row runs as its largest PE row (its first), a PE column as its node column's
  // largest (the node column's first).
  std::vector<std::uint64_t> kt(Q), c1(std::uint64_t{nodes} * Q), w1(nodes), wout(nodes);
  for (std::uint32_t c = 0; c < Q; ++c) kt[c] = p.tile_k(c / k * k);
  for (std::uint32_t n = 0; n < nodes; ++n) {
    const std::uint64_t mt = p.tile_m(std::uint64_t{n} * k);
    w1[n] = p.sum_wavelets(mt);
    wout[n] = Plan::out_wavelets(mt);
    for (std::uint32_t c = 0; c < Q; ++c)
      c1[std::uint64_t{n} * Q + c] = kt[c] * fmac_cycles(pe, g.accumulate, mt);
  }
  // Per (node row, ring position): engine free, link free, ramp out free, and the last
  // step's block: its first FMAC start and last FMAC end (its tokens evenly spaced in
  // between) and the cycle its first token's sums left.
  const std::uint64_t cells = std::uint64_t{nodes} * Q;
  std::vector<std::uint64_t> engine(cells, 0), link(cells, 0), out(cells, 0);
  std::vector<std::uint64_t> first_send[2] = {std::vector<std::uint64_t>(cells, 0),
                                              std::vector<std::uint64_t>(cells, 0)};
  std::vector<std::uint64_t> last_send[2] = {std::vector<std::uint64_t>(cells, 0),
                                             std::vector<std::uint64_t>(cells, 0)};
  Broadcast bc(Q);
  std::uint64_t fill = 0, done = 0, total = 0;
  const std::uint64_t steps = std::uint64_t{p.R} * Q;
  for (std::uint64_t s = 0; s < steps; ++s) {
    const std::uint32_t r = static_cast<std::uint32_t>(s / Q), sp = static_cast<std::uint32_t>(s % Q);
    broadcast_step(p, bc, s, D, kt);
    const std::vector<std::uint64_t>& in_first = first_send[(s + 1) % 2];  // sends of step s - 1
    const std::vector<std::uint64_t>& in_last = last_send[(s + 1) % 2];
    std::vector<std::uint64_t>& my_first = first_send[s % 2];
    std::vector<std::uint64_t>& my_last = last_send[s % 2];
    for (std::uint32_t n = 0; n < nodes; ++n) {
      for (std::uint32_t l = 0; l < Q; ++l) {
        const std::uint32_t c = p.col_of[l];
        const std::uint64_t b = p.block(r, (l + sp) % Q);
        if (b == 0) continue;
        const std::uint64_t cell = std::uint64_t{n} * Q + l;
        const std::uint64_t cost = c1[std::uint64_t{n} * Q + c];
        const std::uint64_t ready = std::max(engine[cell], bc.arrive[c]);
        std::uint64_t start = ready, end = ready + b * cost;
        if (sp > 0) {
          // The sums come from ring position l + 1, token by token, evenly spaced from its
          // first send to its last: with arrivals a_0 .. a_{b-1} on a line, the last FMAC
          // ends at max(start + b C1, a_{b-1} + C1).
          const std::uint64_t from = std::uint64_t{n} * Q + (l + 1) % Q;
          const std::uint64_t latency = p.in_hops[l] * p.H + w1[n] + R2;
          start = std::max(ready, in_first[from] + latency);
          end = std::max(start + b * cost, in_last[from] + latency + cost);
        }
        if (s == 0) fill = std::max(fill, start);
        const std::uint64_t first_done = start + cost;
        if (sp + 1 < Q) {
          const std::uint64_t first = std::max(first_done, link[cell]);
          const std::uint64_t last = std::max(end, first + (b - 1) * w1[n]);
          my_first[cell] = first;
          my_last[cell] = last;
          link[cell] = last + w1[n];
        } else {
          const std::uint64_t first = std::max(first_done, out[cell]);
          const std::uint64_t last = std::max(end, first + (b - 1) * wout[n]);
          out[cell] = last + wout[n];
          total = std::max(total, last + wout[n] + R2);
        }
        engine[cell] = end;
        done = std::max(done, end);
        bc.done[s % 3][c] = std::max(bc.done[s % 3][c], end);
      }
    }
  }
  return finished(res, fill, done, total, t0);
}

}  // namespace wse::wafer
