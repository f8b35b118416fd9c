#include "wse_mesh/kernels/gemv.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "systemc_models/units/integer.h"
#include "wse_mesh/kernels/gemv_pe_engine.h"

namespace wse::wafer {

namespace {

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

// The GEMV of `g` on its P x Q grid at per-PE fidelity, in the mapping's steps: the grid
// and SRAM, the routes of the x multicast and of the row reduction (chain, K-tree or
// tree), each PE's behaviour as x and partial sums reach it, and the result.
class GemvRun {
 public:
  GemvRun(Fabric& fabric, const PeConfig& pe, const GemvConfig& g, detail::VectorTimes& times)
      : fabric_(fabric), pe_(pe), g_(g), times_(times), P_(g.grid_rows), Q_(g.grid_cols) {
    validate(pe);
    check();
    acc_bytes_ = accumulator_bytes(g.accumulate);
    psum_per_wavelet_ = 4 / acc_bytes_;  // 32-bit wavelets
    if (g.vectors == 0) throw std::invalid_argument("gemv: vectors must be at least 1");
    sram_used_ = detail::place_gemv_tensors({g.origin.x, g.origin.y}, pe, ceil_div(g.rows, P_),
                                            ceil_div(g.cols, Q_), g.vectors, acc_bytes_);
  }

  GemvResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    route_x();
    route_reduction();
    init_states();
    fabric_.on_delivery([this](PeCoord at, MessageId msg, std::uint64_t cycle) { deliver(at, msg, cycle); });
    const std::uint64_t hops0 = fabric_.wavelet_hops();
    const std::uint64_t sim0 = fabric_.cycles_simulated();
    start_top_row();
    fabric_.run_until_idle();
    fabric_.on_delivery(nullptr);
    GemvResult r = collect();
    r.wavelet_hops = fabric_.wavelet_hops() - hops0;
    r.fabric_cycles_simulated = fabric_.cycles_simulated() - sim0;
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

 private:
  // --- The grid and its tiles ---------------------------------------------------------
  void check() const {
    const FabricConfig& fc = fabric_.config();
    if (P_ == 0 || Q_ == 0) throw std::invalid_argument("gemv: grid_rows and grid_cols must be at least 1");
    if (g_.origin.x + Q_ > fc.width || g_.origin.y + P_ > fc.height) {
      throw std::invalid_argument("gemv: a " + std::to_string(Q_) + " x " + std::to_string(P_) +
                                  " PE grid at (" + std::to_string(g_.origin.x) + "," +
                                  std::to_string(g_.origin.y) + ") does not fit the " +
                                  std::to_string(fc.width) + " x " + std::to_string(fc.height) + " fabric");
    }
    if (P_ > g_.rows || Q_ > g_.cols) {
      throw std::invalid_argument(
          "gemv: the grid is larger than the matrix (some PEs would hold no rows or columns)");
    }
  }

  // Balanced split: the first (M mod P) grid rows take one row of W more than the others.
  std::uint64_t tile_m(std::uint32_t i) const { return g_.rows / P_ + (i < g_.rows % P_ ? 1 : 0); }
  std::uint64_t tile_k(std::uint32_t j) const { return g_.cols / Q_ + (j < g_.cols % Q_ ? 1 : 0); }
  std::uint64_t n_psum(std::uint32_t i) const { return ceil_div(tile_m(i), psum_per_wavelet_); }
  PeState& state(std::uint32_t j, std::uint32_t i) { return st_[static_cast<std::size_t>(i) * Q_ + j]; }

  // --- Routes ---------------------------------------------------------------------------
  // x: south down each column, copied to every PE's RAMP below the top row.
  void route_x() {
    for (std::uint32_t j = 0; j < Q_ && P_ > 1; ++j) {
      for (std::uint32_t i = 0; i < P_; ++i) {
        const PeCoord at{g_.origin.x + j, g_.origin.y + i};
        if (i == 0) {
          fabric_.set_route(at, g_.x_color, mask(Port::kRamp), mask(Port::kSouth));
        } else if (i + 1 < P_) {
          fabric_.set_route(at, g_.x_color, mask(Port::kNorth), mask(Port::kSouth, Port::kRamp));
        } else {
          fabric_.set_route(at, g_.x_color, mask(Port::kNorth), mask(Port::kRamp));
        }
      }
    }
  }

  // `from` sends to `to` along row i; PEs in between pass the color on.
  void route_row(std::uint32_t i, std::uint32_t from, std::uint32_t to, Color c) {
    const bool east = to > from;
    const Port fwd = east ? Port::kEast : Port::kWest;
    const Port back = east ? Port::kWest : Port::kEast;
    fabric_.set_route({g_.origin.x + from, g_.origin.y + i}, c, mask(Port::kRamp), mask(fwd));
    for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
      fabric_.set_route({g_.origin.x + m, g_.origin.y + i}, c, mask(back), mask(fwd));
    }
    fabric_.set_route({g_.origin.x + to, g_.origin.y + i}, c, mask(back), mask(Port::kRamp));
  }

  // Partial sums, reduced along each grid row. For PE column j: how many partial-sum
  // streams it receives (n_in), and the color it sends its sums on (none at the root).
  void route_reduction() {
    const FabricConfig& fc = fabric_.config();
    n_in_.assign(Q_, 0);
    out_color_.assign(Q_, -1);
    if (g_.reduction == Reduction::kChain) {
      // PE j sends east on psum_colors[j % 2]; PE j + 1 adds and sends on the other color.
      root_ = Q_ - 1;
      for (std::uint32_t j = 0; j + 1 < Q_; ++j) {
        out_color_[j] = g_.psum_colors[j % 2];
        n_in_[j + 1] = 1;
      }
      for (std::uint32_t i = 0; i < P_; ++i) {
        for (std::uint32_t j = 0; j + 1 < Q_; ++j) route_row(i, j, j + 1, g_.psum_colors[j % 2]);
      }
    } else if (g_.reduction == Reduction::kKTree) {
      // Groups of ktree_group PEs: chains east to each group's east PE (psum_colors by
      // column parity), then a chain east over the group roots (ktree_colors by group
      // parity), whose wavelets the PEs in between pass on.
      root_ = Q_ - 1;
      const std::uint32_t gs = detail::ktree_group_size(g_, fc, pe_, Q_, 1);
      detail::check_ktree_colors(g_, fc);
      for (std::uint32_t j = 0; j + 1 < Q_; ++j) {
        const bool group_root = (j + 1) % gs == 0;
        const std::uint32_t to = group_root ? std::min(j + gs, Q_ - 1) : j + 1;
        const Color c = group_root ? g_.ktree_colors[(j / gs) % 2] : g_.psum_colors[j % 2];
        out_color_[j] = c;
        ++n_in_[to];
        for (std::uint32_t i = 0; i < P_; ++i) route_row(i, j, to, c);
      }
    } else {
      // Binary tree to the west: in round s, PE j with j mod 2^(s+1) = 2^s sends to
      // j - 2^s over 2^s hops on color tree_color + s.
      root_ = 0;
      const std::uint32_t rounds = tree_rounds(Q_);
      if (g_.tree_color + rounds > fc.colors) {
        throw std::invalid_argument("gemv: a tree reduction over " + std::to_string(Q_) + " PEs needs " +
                                    std::to_string(rounds) + " colors from " + std::to_string(g_.tree_color) +
                                    ", beyond the " + std::to_string(fc.colors) + " colors");
      }
      for (std::uint32_t r = 0; r < rounds; ++r) {
        const std::uint32_t span = 1u << r;
        for (std::uint32_t j = span; j < Q_; j += 2 * span) {
          out_color_[j] = static_cast<int>(g_.tree_color + r);
          ++n_in_[j - span];
          for (std::uint32_t i = 0; i < P_; ++i)
            route_row(i, j, j - span, static_cast<Color>(g_.tree_color + r));
        }
      }
      if (g_.x_color >= g_.tree_color && g_.x_color < g_.tree_color + rounds) {
        throw std::invalid_argument("gemv: x_color overlaps the tree reduction's colors");
      }
    }
  }

  // --- Each PE's behaviour ------------------------------------------------------------
  void init_states() {
    st_.reserve(static_cast<std::size_t>(P_) * Q_);
    for (std::uint32_t i = 0; i < P_; ++i) {
      for (std::uint32_t j = 0; j < Q_; ++j) {
        st_.emplace_back(detail::GemvPeEngine(tile_k(j), fmac_cycles(pe_, g_.accumulate, tile_m(i))));
      }
    }
    row_done_.assign(P_, 0);
    row_vectors_.assign(P_, 0);
    start_cycle_ = fabric_.now();
  }

  // Wavelet k of PE (j, i)'s sums of vector v is final at `cycle`: on toward the root, or
  // (at the root) part of y.
  void final_sum(std::uint32_t j, std::uint32_t i, std::uint32_t v, std::uint64_t k, std::uint64_t cycle) {
    PeState& s = state(j, i);
    if (j != root_) {
      if (s.out == UINT32_MAX) {
        s.out = fabric_.open_message({g_.origin.x + j, g_.origin.y + i}, static_cast<Color>(out_color_[j]));
      }
      fabric_.append_wavelets(s.out, 1, cycle);
      return;
    }
    row_done_[i] = std::max(row_done_[i], cycle);
    if (k + 1 == n_psum(i)) {
      times_.sum_final(i, v, cycle - start_cycle_);
      ++row_vectors_[i];
    }
  }

  // Moves PE (j, i) on as far as what has arrived allows, vector by vector: once the
  // vector's x is in, its FMACs' end is known; a leaf then sends its sums, other PEs add
  // each arriving wavelet of sums of that vector (in arrival order over their streams)
  // and pass on each wavelet once every stream's share of it is added.
  void pump(std::uint32_t j, std::uint32_t i) {
    PeState& s = state(j, i);
    const std::uint64_t mi = tile_m(i);
    const std::uint64_t n = n_psum(i);
    while (s.vector < g_.vectors && s.engine.x_complete(s.vector)) {
      const std::uint32_t v = s.vector;
      const std::uint64_t done = s.engine.fmacs_done(v);
      times_.fmacs(i, v, done - start_cycle_);
      if (n_in_[j] == 0) {
        for (std::uint64_t k = 0; k < n; ++k) final_sum(j, i, v, k, done);
        ++s.vector;
        continue;
      }
      if (s.adds_left == 0) {
        s.adds_left = n_in_[j] * n;
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
                         add_cycles(pe_, g_.accumulate, elements_in(mi, psum_per_wavelet_, k)));
        ++next->added;
        if (++next->head == next->waiting.size()) {
          next->waiting.clear();
          next->head = 0;
        }
        --s.adds_left;
        if (++s.contributions[k] == n_in_[j]) final_sum(j, i, v, k, end);
      }
      ++s.vector;
    }
  }

  void deliver(PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t j = at.x - g_.origin.x;
    const std::uint32_t i = at.y - g_.origin.y;
    PeState& s = state(j, i);
    if (fabric_.message(msg).color == g_.x_color) {
      s.engine.x_arrived(cycle + 1);
      s.last_x_delivery = cycle;
      const std::uint64_t v = s.x_delivered++ / s.engine.x_wavelets_per_vector();
      times_.x(v, cycle + 1 - start_cycle_);
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
  }

  // The top row has x in SRAM: it starts sending (m segments back to back) and computing
  // at once.
  void start_top_row() {
    for (std::uint32_t j = 0; j < Q_; ++j) {
      PeState& s = state(j, 0);
      const std::uint64_t nx = s.engine.x_wavelets_per_vector();
      if (P_ > 1) {
        fabric_.inject({g_.origin.x + j, g_.origin.y}, g_.x_color,
                       static_cast<std::uint32_t>(g_.vectors * nx), start_cycle_);
      }
      s.engine.x_in_sram(start_cycle_, g_.vectors * nx);
      pump(j, 0);
    }
  }

  // --- The result -----------------------------------------------------------------------
  GemvResult collect() const {
    const std::uint32_t n_vec = g_.vectors;
    GemvResult r;
    r.tile_rows = ceil_div(g_.rows, P_);
    r.tile_cols = ceil_div(g_.cols, Q_);
    r.sram_bytes_per_pe = sram_used_;
    r.compute_cycles = n_vec * r.tile_cols * fmac_cycles(pe_, g_.accumulate, r.tile_rows);
    for (std::uint32_t i = 0; i < P_; ++i) {
      if (row_vectors_[i] != n_vec)
        throw std::logic_error("gemv: row " + std::to_string(i) + " never completed");
      r.total_cycles = std::max(r.total_cycles, row_done_[i] - start_cycle_);
      r.first_vector_cycles = std::max(r.first_vector_cycles, times_.sums_final[std::size_t{i} * n_vec]);
    }
    r.vectors_simulated = n_vec;
    for (const PeState& s : st_) {
      r.compute_done_cycles = std::max(r.compute_done_cycles, s.engine.last_fmacs_done() - start_cycle_);
      if (P_ > 1 && s.last_x_delivery > 0) {
        r.multicast_cycles = std::max(r.multicast_cycles, s.last_x_delivery + 1 - start_cycle_);
      }
    }
    r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
    return r;
  }

  Fabric& fabric_;
  const PeConfig& pe_;
  const GemvConfig& g_;
  detail::VectorTimes& times_;
  const std::uint32_t P_, Q_;
  std::uint64_t acc_bytes_ = 0;
  std::uint64_t psum_per_wavelet_ = 0;
  std::uint64_t sram_used_ = 0;
  std::vector<std::uint32_t> n_in_;  // per PE column: partial-sum streams in
  std::vector<int> out_color_;       // per PE column: the color it sends on (-1: the root)
  std::uint32_t root_ = 0;           // the root column
  std::vector<PeState> st_;
  std::vector<std::uint64_t> row_done_;
  std::vector<std::uint32_t> row_vectors_;  // vectors the row's root has completed
  std::uint64_t start_cycle_ = 0;
};

GemvResult run_gemv_on(Fabric& fabric, const PeConfig& pe, const GemvConfig& g, detail::VectorTimes& times) {
  return GemvRun(fabric, pe, g, times).run();
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
