#include "wse_mesh/gemv.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace wse::wafer {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }
constexpr std::uint64_t kUnknown = UINT64_MAX;

// Elements of a segment of `n` elements carried by wavelet `w`, `per` per wavelet.
std::uint64_t elements_in(std::uint64_t n, std::uint64_t per, std::uint64_t w) {
  return std::min(per, n - w * per);
}

struct PeState {
  std::uint64_t x_received = 0;
  std::uint64_t engine_free = 0;      // first cycle the compute engine is free
  std::uint64_t own_done = kUnknown;  // all FMACs done
  std::uint64_t last_x_delivery = 0;
  std::vector<std::pair<std::uint64_t, MessageId>> psum_arrivals;  // (delivery cycle, stream) waiting
  std::vector<std::pair<MessageId, std::uint64_t>> streams;        // incoming stream -> next wavelet index
  std::vector<std::uint16_t> contributions;  // per wavelet of sums: streams added so far
  std::uint64_t sent_k = 0;                  // next wavelet of sums to complete
  MessageId out = UINT32_MAX;                // the partial sums this PE sends on
};

}  // namespace

GemvResult run_gemv(Fabric& fabric, const PeConfig& pe, const GemvConfig& g) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(pe);
  const FabricConfig& fc = fabric.config();
  const std::uint32_t P = g.grid_rows;
  const std::uint32_t Q = g.grid_cols;
  if (P == 0 || Q == 0) throw std::invalid_argument("gemv: grid_rows and grid_cols must be at least 1");
  if (g.origin.x + Q > fc.width || g.origin.y + P > fc.height) {
    throw std::invalid_argument("gemv: a " + std::to_string(Q) + " x " + std::to_string(P) + " PE grid at (" +
                                std::to_string(g.origin.x) + "," + std::to_string(g.origin.y) +
                                ") does not fit the " + std::to_string(fc.width) + " x " +
                                std::to_string(fc.height) + " fabric");
  }
  const std::uint64_t Mt = ceil_div(g.rows, P);
  const std::uint64_t Kt = ceil_div(g.cols, Q);
  if (P > g.rows || Q > g.cols) {
    throw std::invalid_argument(
        "gemv: the grid is larger than the matrix (some PEs would hold no rows or columns)");
  }
  // Balanced split: the first (M mod P) grid rows take one row of W more than the others.
  auto tile_m = [&](std::uint32_t i) { return g.rows / P + (i < g.rows % P ? 1 : 0); };
  auto tile_k = [&](std::uint32_t j) { return g.cols / Q + (j < g.cols % Q ? 1 : 0); };
  const std::uint64_t acc_bytes = accumulator_bytes(g.accumulate);
  const std::uint64_t psum_per_wavelet = 4 / acc_bytes;  // 32-bit wavelets
  constexpr std::uint64_t kXPerWavelet = 2;              // fp16 input

  // SRAM: the north-west PE has the largest tile and also keeps its x segment.
  SramPlacement sram({g.origin.x, g.origin.y}, pe.sram_bytes);
  sram.place("W tile " + std::to_string(Mt) + "x" + std::to_string(Kt) + " fp16", Mt * Kt * 2);
  sram.place("x segment (" + std::to_string(Kt) + " fp16)", Kt * 2);
  sram.place("y partial sums (" + std::to_string(Mt) + (acc_bytes == 2 ? " fp16)" : " fp32)"),
             Mt * acc_bytes);

  // Routes. x: south down each column, copied to every PE's RAMP below the top row.
  for (std::uint32_t j = 0; j < Q && P > 1; ++j) {
    for (std::uint32_t i = 0; i < P; ++i) {
      const PeCoord at{g.origin.x + j, g.origin.y + i};
      if (i == 0) {
        fabric.set_route(at, g.x_color, mask(Port::kRamp), mask(Port::kSouth));
      } else if (i + 1 < P) {
        fabric.set_route(at, g.x_color, mask(Port::kNorth), mask(Port::kSouth, Port::kRamp));
      } else {
        fabric.set_route(at, g.x_color, mask(Port::kNorth), mask(Port::kRamp));
      }
    }
  }
  // Partial sums, reduced along each grid row. For PE column j: how many partial-sum
  // streams it receives (n_in), and the color it sends its sums on (none at the root).
  std::vector<std::uint32_t> n_in(Q, 0);
  std::vector<int> out_color(Q, -1);
  std::uint32_t root = 0;
  auto route_row = [&](std::uint32_t i, std::uint32_t from, std::uint32_t to, Color c) {
    // `from` sends to `to` along the row; PEs in between pass the color on.
    const bool east = to > from;
    const Port fwd = east ? Port::kEast : Port::kWest;
    const Port back = east ? Port::kWest : Port::kEast;
    fabric.set_route({g.origin.x + from, g.origin.y + i}, c, mask(Port::kRamp), mask(fwd));
    for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
      fabric.set_route({g.origin.x + m, g.origin.y + i}, c, mask(back), mask(fwd));
    }
    fabric.set_route({g.origin.x + to, g.origin.y + i}, c, mask(back), mask(Port::kRamp));
  };
  if (g.reduction == Reduction::kChain) {
    // PE j sends east on psum_colors[j % 2]; PE j + 1 adds and sends on the other color.
    root = Q - 1;
    for (std::uint32_t j = 0; j + 1 < Q; ++j) {
      out_color[j] = g.psum_colors[j % 2];
      n_in[j + 1] = 1;
    }
    for (std::uint32_t i = 0; i < P; ++i) {
      for (std::uint32_t j = 0; j + 1 < Q; ++j) route_row(i, j, j + 1, g.psum_colors[j % 2]);
    }
  } else {
    // Binary tree to the west: in round s, PE j with j mod 2^(s+1) = 2^s sends to
    // j - 2^s over 2^s hops on color tree_color + s.
    root = 0;
    std::uint32_t rounds = 0;
    while ((1u << rounds) < Q) ++rounds;
    if (g.tree_color + rounds > fc.colors) {
      throw std::invalid_argument("gemv: a tree reduction over " + std::to_string(Q) + " PEs needs " +
                                  std::to_string(rounds) + " colors from " + std::to_string(g.tree_color) +
                                  ", beyond the " + std::to_string(fc.colors) + " colors");
    }
    for (std::uint32_t r = 0; r < rounds; ++r) {
      const std::uint32_t span = 1u << r;
      for (std::uint32_t j = span; j < Q; j += 2 * span) {
        out_color[j] = static_cast<int>(g.tree_color + r);
        ++n_in[j - span];
        for (std::uint32_t i = 0; i < P; ++i) route_row(i, j, j - span, static_cast<Color>(g.tree_color + r));
      }
    }
    if (g.x_color >= g.tree_color && g.x_color < g.tree_color + rounds) {
      throw std::invalid_argument("gemv: x_color overlaps the tree reduction's colors");
    }
  }

  std::vector<PeState> st(static_cast<std::size_t>(P) * Q);
  std::vector<std::uint64_t> row_done(P, kUnknown);
  auto state = [&](std::uint32_t j, std::uint32_t i) -> PeState& {
    return st[static_cast<std::size_t>(i) * Q + j];
  };

  // Adds the waiting partial-sum wavelets of PE (j, i) once its own FMACs are done; a
  // wavelet of sums is final when every incoming stream's wavelet of that index is
  // added, and then goes on toward the root (or completes the row at the root).
  auto drain = [&](std::uint32_t j, std::uint32_t i) {
    PeState& s = state(j, i);
    if (s.own_done == kUnknown) return;
    const std::uint64_t m = tile_m(i);
    const std::uint64_t n_psum = ceil_div(m, psum_per_wavelet);
    if (s.contributions.empty()) s.contributions.assign(n_psum, 0);
    for (const auto& [arrived, msg] : s.psum_arrivals) {
      auto stream =
          std::find_if(s.streams.begin(), s.streams.end(), [&](const auto& x) { return x.first == msg; });
      if (stream == s.streams.end()) {
        s.streams.emplace_back(msg, 0);
        stream = s.streams.end() - 1;
      }
      const std::uint64_t k = stream->second++;
      const std::uint64_t start = std::max({arrived + 1, s.own_done, s.engine_free});
      s.engine_free = start + add_cycles(pe, g.accumulate, elements_in(m, psum_per_wavelet, k));
      if (++s.contributions[k] < n_in[j]) continue;
      if (k != s.sent_k++) throw std::logic_error("gemv: partial sums completed out of order");
      if (j != root) {
        if (s.out == UINT32_MAX) {
          s.out = fabric.open_message({g.origin.x + j, g.origin.y + i}, static_cast<Color>(out_color[j]));
        }
        fabric.append_wavelets(s.out, 1, s.engine_free);
      } else if (k + 1 == n_psum) {
        row_done[i] = s.engine_free;
      }
    }
    s.psum_arrivals.clear();
  };
  auto own_done = [&](std::uint32_t j, std::uint32_t i, std::uint64_t cycle) {
    PeState& s = state(j, i);
    s.own_done = cycle;
    s.engine_free = std::max(s.engine_free, cycle);
    if (n_in[j] > 0) {
      drain(j, i);
    } else if (j == root) {  // Q = 1
      row_done[i] = cycle;
    } else {  // a leaf: all its sums are final now
      const std::uint64_t n_psum = ceil_div(tile_m(i), psum_per_wavelet);
      s.out = fabric.inject({g.origin.x + j, g.origin.y + i}, static_cast<Color>(out_color[j]),
                            static_cast<std::uint32_t>(n_psum), cycle);
    }
  };

  fabric.on_delivery([&](PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t j = at.x - g.origin.x;
    const std::uint32_t i = at.y - g.origin.y;
    PeState& s = state(j, i);
    if (fabric.message(msg).color == g.x_color) {
      const std::uint64_t k = tile_k(j);
      const std::uint64_t w = s.x_received++;
      const std::uint64_t start = std::max(cycle + 1, s.engine_free);
      s.engine_free = start + elements_in(k, kXPerWavelet, w) * fmac_cycles(pe, g.accumulate, tile_m(i));
      s.last_x_delivery = cycle;
      if (s.x_received == ceil_div(k, kXPerWavelet)) own_done(j, i, s.engine_free);
    } else {
      s.psum_arrivals.emplace_back(cycle, msg);
      drain(j, i);
    }
  });

  const std::uint64_t start_cycle = fabric.now();
  const std::uint64_t hops0 = fabric.wavelet_hops();
  const std::uint64_t sim0 = fabric.cycles_simulated();
  // The top row has its x segment in SRAM: it starts sending and computing at once.
  for (std::uint32_t j = 0; j < Q; ++j) {
    if (P > 1) {
      fabric.inject({g.origin.x + j, g.origin.y}, g.x_color,
                    static_cast<std::uint32_t>(ceil_div(tile_k(j), kXPerWavelet)), start_cycle);
    }
    own_done(j, 0, start_cycle + tile_k(j) * fmac_cycles(pe, g.accumulate, tile_m(0)));
  }
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);

  GemvResult r;
  r.tile_rows = Mt;
  r.tile_cols = Kt;
  r.sram_bytes_per_pe = sram.used_bytes();
  r.compute_cycles = Kt * fmac_cycles(pe, g.accumulate, Mt);
  for (std::uint32_t i = 0; i < P; ++i) {
    if (row_done[i] == kUnknown)
      throw std::logic_error("gemv: row " + std::to_string(i) + " never completed");
    r.total_cycles = std::max(r.total_cycles, row_done[i] - start_cycle);
  }
  for (const PeState& s : st) {
    r.compute_done_cycles = std::max(r.compute_done_cycles, s.own_done - start_cycle);
    if (P > 1 && s.x_received > 0)
      r.multicast_cycles = std::max(r.multicast_cycles, s.last_x_delivery + 1 - start_cycle);
  }
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
  r.wavelet_hops = fabric.wavelet_hops() - hops0;
  r.fabric_cycles_simulated = fabric.cycles_simulated() - sim0;
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

GemvResult run_gemv(const FabricConfig& fc, const PeConfig& pe, const GemvConfig& g) {
  FabricConfig sized = fc;
  sized.width = g.origin.x + g.grid_cols;
  sized.height = g.origin.y + g.grid_rows;
  Fabric fabric(sized);
  return run_gemv(fabric, pe, g);
}

}  // namespace wse::wafer
