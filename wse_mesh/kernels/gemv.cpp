#include "wse_mesh/kernels/gemv.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "wse_mesh/kernels/gemv_pe_engine.h"

namespace wse::wafer {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Elements of a segment of `n` elements carried by wavelet `w`, `per` per wavelet.
std::uint64_t elements_in(std::uint64_t n, std::uint64_t per, std::uint64_t w) {
  return std::min(per, n - w * per);
}

// One incoming stream of partial sums (the sums of one sender, m x n wavelets in order).
struct Stream {
  MessageId msg = UINT32_MAX;
  std::uint64_t added = 0;  // wavelets added so far (the next one's index)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> waiting;  // (delivery cycle, arrival order)
  std::size_t head = 0;
};

struct PeState {
  explicit PeState(detail::GemvPeEngine e) : engine(std::move(e)) {}
  detail::GemvPeEngine engine;
  std::uint32_t vector = 0;     // the vector whose sums this PE is adding (or sending, at a leaf)
  std::uint64_t adds_left = 0;  // adds of `vector` still to book
  std::uint64_t arrivals = 0;   // partial-sum wavelets delivered so far (their arrival order)
  std::uint64_t last_x_delivery = 0;
  std::uint64_t x_delivered = 0;  // x wavelets delivered so far
  std::vector<Stream> streams;
  std::vector<std::uint16_t> contributions;  // per wavelet of sums of `vector`: streams added
  MessageId out = UINT32_MAX;                // the partial sums this PE sends on
};

}  // namespace

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::kChain:
      return "chain";
    case Reduction::kTree:
      return "tree";
    case Reduction::kKTree:
      return "ktree";
  }
  return "?";
}

bool parse_reduction(std::string_view name, Reduction& r) {
  for (Reduction x : {Reduction::kChain, Reduction::kTree, Reduction::kKTree}) {
    if (name == reduction_name(x)) {
      r = x;
      return true;
    }
  }
  return false;
}

void require_mapped(Reduction red, std::initializer_list<Reduction> mapped, const char* kernel) {
  std::string names;
  for (Reduction m : mapped) {
    if (m == red) return;
    names += std::string(names.empty() ? "" : ", ") + reduction_name(m);
  }
  throw std::invalid_argument(std::string(kernel) + ": the " + reduction_name(red) +
                              " reduction is not mapped for this kernel (mapped: " + names + ")");
}

std::uint64_t ktree_latency(std::uint32_t n, std::uint32_t g, std::uint32_t hop, std::uint32_t ramp,
                            std::uint64_t add) {
  if (n <= 1) return 0;
  const std::uint64_t gg = std::min(std::max(g, 1u), n);
  const std::uint64_t groups = ceil_div(n, gg);
  return (gg - 1) * (2ull * ramp + hop + 1 + add) + (groups - 1) * (2ull * ramp + gg * hop + 1 + add);
}

std::uint32_t ktree_auto_group(std::uint32_t n, std::uint32_t hop, std::uint32_t ramp, std::uint64_t add,
                               std::uint32_t multiple_of) {
  const std::uint32_t step = std::max(multiple_of, 1u);
  std::uint32_t best = step;
  std::uint64_t best_t = UINT64_MAX;
  for (std::uint32_t g = step; g < n + step; g += step) {
    const std::uint64_t t = ktree_latency(n, g, hop, ramp, add);
    if (t < best_t) {
      best_t = t;
      best = g;
    }
  }
  return best;
}

std::uint64_t gemv_floor_cycles(const FabricConfig& fc, const PeConfig& pe, const GemvConfig& g) {
  if (g.grid_rows == 0 || g.grid_cols == 0) return 0;
  const std::uint64_t Mt = ceil_div(g.rows, g.grid_rows);
  const std::uint64_t Kt = ceil_div(g.cols, g.grid_cols);
  const std::uint64_t compute = std::uint64_t{g.vectors} * ceil_div(Mt * Kt, pe.simd_fp16_fmac);
  const std::uint64_t latency = (std::uint64_t{g.grid_rows} - 1 + g.grid_cols - 1) * fc.hop_latency_cycles +
                                2ull * fc.ramp_latency_cycles;
  return std::max(compute, latency);
}

namespace {

GemvResult run_gemv_on(Fabric& fabric, const PeConfig& pe, const GemvConfig& g, detail::VectorTimes& times) {
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

  if (g.vectors == 0) throw std::invalid_argument("gemv: vectors must be at least 1");
  const std::uint32_t n_vec = g.vectors;
  const std::uint64_t sram_used =
      detail::place_gemv_tensors({g.origin.x, g.origin.y}, pe, Mt, Kt, n_vec, acc_bytes);

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
  } else if (g.reduction == Reduction::kKTree) {
    // Groups of ktree_group PEs: chains east to each group's east PE (psum_colors by
    // column parity), then a chain east over the group roots (ktree_colors by group
    // parity), whose wavelets the PEs in between pass on.
    root = Q - 1;
    const std::uint32_t gs = detail::ktree_group_size(g, fc, pe, Q, 1);
    detail::check_ktree_colors(g, fc);
    for (std::uint32_t j = 0; j + 1 < Q; ++j) {
      const bool group_root = (j + 1) % gs == 0;
      const std::uint32_t to = group_root ? std::min(j + gs, Q - 1) : j + 1;
      const Color c = group_root ? g.ktree_colors[(j / gs) % 2] : g.psum_colors[j % 2];
      out_color[j] = c;
      ++n_in[to];
      for (std::uint32_t i = 0; i < P; ++i) route_row(i, j, to, c);
    }
  } else {
    // Binary tree to the west: in round s, PE j with j mod 2^(s+1) = 2^s sends to
    // j - 2^s over 2^s hops on color tree_color + s.
    root = 0;
    const std::uint32_t rounds = tree_rounds(Q);
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

  std::vector<PeState> st;
  st.reserve(static_cast<std::size_t>(P) * Q);
  for (std::uint32_t i = 0; i < P; ++i) {
    for (std::uint32_t j = 0; j < Q; ++j) {
      st.emplace_back(detail::GemvPeEngine(tile_k(j), fmac_cycles(pe, g.accumulate, tile_m(i))));
    }
  }
  std::vector<std::uint64_t> row_done(P, 0);
  std::vector<std::uint32_t> row_vectors(P, 0);  // vectors the row's root has completed
  const std::uint64_t start_cycle = fabric.now();
  auto state = [&](std::uint32_t j, std::uint32_t i) -> PeState& {
    return st[static_cast<std::size_t>(i) * Q + j];
  };
  auto n_psum = [&](std::uint32_t i) { return ceil_div(tile_m(i), psum_per_wavelet); };

  // Wavelet k of PE (j, i)'s sums of vector v is final at `cycle`: on toward the root, or
  // (at the root) part of y.
  auto final_sum = [&](std::uint32_t j, std::uint32_t i, std::uint32_t v, std::uint64_t k,
                       std::uint64_t cycle) {
    PeState& s = state(j, i);
    if (j != root) {
      if (s.out == UINT32_MAX) {
        s.out = fabric.open_message({g.origin.x + j, g.origin.y + i}, static_cast<Color>(out_color[j]));
      }
      fabric.append_wavelets(s.out, 1, cycle);
      return;
    }
    row_done[i] = std::max(row_done[i], cycle);
    if (k + 1 == n_psum(i)) {
      times.sum_final(i, v, cycle - start_cycle);
      ++row_vectors[i];
    }
  };
  // Moves PE (j, i) on as far as what has arrived allows, vector by vector: once the
  // vector's x is in, its FMACs' end is known; a leaf then sends its sums, other PEs add
  // each arriving wavelet of sums of that vector (in arrival order over their streams)
  // and pass on each wavelet once every stream's share of it is added.
  auto pump = [&](std::uint32_t j, std::uint32_t i) {
    PeState& s = state(j, i);
    const std::uint64_t mi = tile_m(i);
    const std::uint64_t n = n_psum(i);
    while (s.vector < n_vec && s.engine.x_complete(s.vector)) {
      const std::uint32_t v = s.vector;
      const std::uint64_t done = s.engine.fmacs_done(v);
      times.fmacs(i, v, done - start_cycle);
      if (n_in[j] == 0) {
        for (std::uint64_t k = 0; k < n; ++k) final_sum(j, i, v, k, done);
        ++s.vector;
        continue;
      }
      if (s.adds_left == 0) {
        s.adds_left = n_in[j] * n;
        s.contributions.assign(n, 0);
      }
      while (s.adds_left > 0) {
        Stream* next = nullptr;
        for (Stream& x : s.streams) {
          if (x.head < x.waiting.size() && x.added / n == v &&
              (next == nullptr || x.waiting[x.head].second < next->waiting[next->head].second)) {
            next = &x;
          }
        }
        if (next == nullptr) return;  // the rest of this vector's sums are still on their way
        const std::uint64_t k = next->added % n;
        const std::uint64_t end =
            s.engine.add(next->waiting[next->head].first + 1, done,
                         add_cycles(pe, g.accumulate, elements_in(mi, psum_per_wavelet, k)));
        ++next->added;
        if (++next->head == next->waiting.size()) {
          next->waiting.clear();
          next->head = 0;
        }
        --s.adds_left;
        if (++s.contributions[k] == n_in[j]) final_sum(j, i, v, k, end);
      }
      ++s.vector;
    }
  };

  fabric.on_delivery([&](PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t j = at.x - g.origin.x;
    const std::uint32_t i = at.y - g.origin.y;
    PeState& s = state(j, i);
    if (fabric.message(msg).color == g.x_color) {
      s.engine.x_arrived(cycle + 1);
      s.last_x_delivery = cycle;
      const std::uint64_t v = s.x_delivered++ / s.engine.x_wavelets_per_vector();
      times.x(v, cycle + 1 - start_cycle);
    } else {
      auto stream =
          std::find_if(s.streams.begin(), s.streams.end(), [&](const Stream& x) { return x.msg == msg; });
      if (stream == s.streams.end()) {
        s.streams.emplace_back();
        stream = s.streams.end() - 1;
        stream->msg = msg;
      }
      stream->waiting.emplace_back(cycle, s.arrivals++);
    }
    pump(j, i);
  });

  const std::uint64_t hops0 = fabric.wavelet_hops();
  const std::uint64_t sim0 = fabric.cycles_simulated();
  // The top row has x in SRAM: it starts sending (m segments back to back) and computing
  // at once.
  for (std::uint32_t j = 0; j < Q; ++j) {
    PeState& s = state(j, 0);
    const std::uint64_t nx = s.engine.x_wavelets_per_vector();
    if (P > 1) {
      fabric.inject({g.origin.x + j, g.origin.y}, g.x_color, static_cast<std::uint32_t>(n_vec * nx),
                    start_cycle);
    }
    s.engine.x_in_sram(start_cycle, n_vec * nx);
    pump(j, 0);
  }
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);

  GemvResult r;
  r.tile_rows = Mt;
  r.tile_cols = Kt;
  r.sram_bytes_per_pe = sram_used;
  r.compute_cycles = n_vec * Kt * fmac_cycles(pe, g.accumulate, Mt);
  for (std::uint32_t i = 0; i < P; ++i) {
    if (row_vectors[i] != n_vec)
      throw std::logic_error("gemv: row " + std::to_string(i) + " never completed");
    r.total_cycles = std::max(r.total_cycles, row_done[i] - start_cycle);
    r.first_vector_cycles = std::max(r.first_vector_cycles, times.sums_final[std::size_t{i} * n_vec]);
  }
  r.vectors_simulated = n_vec;
  for (const PeState& s : st) {
    r.compute_done_cycles = std::max(r.compute_done_cycles, s.engine.last_fmacs_done() - start_cycle);
    if (P > 1 && s.last_x_delivery > 0)
      r.multicast_cycles = std::max(r.multicast_cycles, s.last_x_delivery + 1 - start_cycle);
  }
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
  r.wavelet_hops = fabric.wavelet_hops() - hops0;
  r.fabric_cycles_simulated = fabric.cycles_simulated() - sim0;
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

GemvResult run_gemv(Fabric& fabric, const PeConfig& pe, const GemvConfig& g) {
  detail::VectorTimes times(g.grid_rows, g.vectors);
  return run_gemv_on(fabric, pe, g, times);
}

GemvResult run_gemv(const FabricConfig& fc, const PeConfig& pe, const GemvConfig& g) {
  FabricConfig sized = fc;
  sized.width = g.origin.x + g.grid_cols;
  sized.height = g.origin.y + g.grid_rows;
  return detail::run_gemm(g, pe, g.origin, [&](const GemvConfig& part, detail::VectorTimes& times) {
    Fabric fabric(sized);
    return run_gemv_on(fabric, pe, part, times);
  });
}

}  // namespace wse::wafer
