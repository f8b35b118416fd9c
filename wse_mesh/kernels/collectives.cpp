#include "wse_mesh/kernels/collectives.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "systemc_models/units/integer.h"

namespace wse::wafer {

namespace {

constexpr std::uint32_t kNoParent = UINT32_MAX;
constexpr std::uint64_t kUnknown = UINT64_MAX;

void check_fits(const FabricConfig& fc, PeCoord origin, std::uint32_t P, std::uint32_t Q, const char* what) {
  if (P == 0 || Q == 0)
    throw std::invalid_argument(std::string(what) + ": grid_rows and grid_cols must be at least 1");
  if (origin.x + Q > fc.width || origin.y + P > fc.height) {
    throw std::invalid_argument(std::string(what) + ": a " + std::to_string(Q) + " x " + std::to_string(P) +
                                " PE grid at (" + std::to_string(origin.x) + "," + std::to_string(origin.y) +
                                ") does not fit the " + std::to_string(fc.width) + " x " +
                                std::to_string(fc.height) + " fabric");
  }
}

std::uint64_t per_wavelet(Accumulate dtype) { return 4 / accumulator_bytes(dtype); }

// Routes of the all-reduce's broadcast from the root (rc, rr): up and down the root
// column, and from each of its PEs along its row; every PE but the root copies to RAMP.
void route_broadcast_back(Fabric& fabric, PeCoord origin, std::uint32_t P, std::uint32_t Q, std::uint32_t rc,
                          std::uint32_t rr, Color c) {
  for (std::uint32_t i = 0; i < P; ++i) {
    for (std::uint32_t j = 0; j < Q; ++j) {
      PortMask rx = 0;
      PortMask tx = 0;
      if (j == rc) {
        rx = i == rr ? mask(Port::kRamp) : mask(i > rr ? Port::kNorth : Port::kSouth);
        if (i != rr) tx |= mask(Port::kRamp);
        if (i >= rr && i + 1 < P) tx |= mask(Port::kSouth);
        if (i <= rr && i > 0) tx |= mask(Port::kNorth);
        if (j + 1 < Q) tx |= mask(Port::kEast);
        if (j > 0) tx |= mask(Port::kWest);
      } else {
        rx = mask(j > rc ? Port::kWest : Port::kEast);
        tx = mask(Port::kRamp);
        if (j > rc && j + 1 < Q) tx |= mask(Port::kEast);
        if (j < rc && j > 0) tx |= mask(Port::kWest);
      }
      if (tx != 0) fabric.set_route({origin.x + j, origin.y + i}, c, rx, tx);
    }
  }
}

// A reduction (or all-reduce) over a P x Q grid, in the mapping's steps: the checks and
// SRAM, the reduction graph and its routes (each row toward its root column, then that
// column toward the root), the all-reduce's way back, each PE's behaviour as partial
// sums reach it, and the result.
class ReduceRun {
 public:
  ReduceRun(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r, bool allreduce)
      : fabric_(fabric),
        pe_(pe),
        r_(r),
        allreduce_(allreduce),
        P_(r.grid_rows),
        Q_(r.grid_cols),
        N_(static_cast<std::size_t>(P_) * Q_),
        per_(per_wavelet(r.dtype)) {
    validate(pe);
    check();
    n_wavelets_ = ceil_div(r.elements, per_);
    // Every PE holds its vector (the running sum) in SRAM.
    SramPlacement sram(r.origin, pe.sram_bytes);
    sram.place(
        "reduce vector (" + std::to_string(r.elements) + (r.dtype == Accumulate::kFp16 ? " fp16)" : " fp32)"),
        r.elements * accumulator_bytes(r.dtype));
  }

  CollectiveResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    build_graph();
    st_.resize(N_);
    start_ = fabric_.now();
    done_ = N_ == 1 ? start_ : kUnknown;
    bcast_last_ = start_;
    if (allreduce_ && N_ > 1) route_way_back();
    fabric_.on_delivery([this](PeCoord p, MessageId msg, std::uint64_t cycle) { deliver(p, msg, cycle); });
    start_leaves();
    const std::uint64_t hops0 = fabric_.wavelet_hops();
    const std::uint64_t sim0 = fabric_.cycles_simulated();
    fabric_.run_until_idle();
    fabric_.on_delivery(nullptr);
    if (done_ == kUnknown) throw std::logic_error("reduce: the root never completed its sum");
    if (allreduce_ && bcast_delivered_ != (N_ - 1) * n_wavelets_) {
      throw std::logic_error("all-reduce: " + std::to_string(bcast_delivered_) +
                             " wavelets of the result delivered, expected " +
                             std::to_string((N_ - 1) * n_wavelets_));
    }
    CollectiveResult res;
    res.reduce_cycles = done_ - start_;
    res.total_cycles = allreduce_ ? std::max(done_, bcast_last_) - start_ : res.reduce_cycles;
    res.wavelets = n_wavelets_;
    res.root = {root_col_, root_row_};
    res.wavelet_hops = fabric_.wavelet_hops() - hops0;
    res.fabric_cycles_simulated = fabric_.cycles_simulated() - sim0;
    res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  }

 private:
  struct PeState {
    std::uint64_t engine_free = 0;
    std::vector<std::pair<MessageId, std::uint64_t>> streams;  // incoming stream -> next wavelet index
    std::vector<std::uint32_t> contributions;                  // per wavelet: streams added so far
    std::uint64_t next_final = 0;
    MessageId out = UINT32_MAX;
  };

  // --- Checks: the grid, the elements and the phases' colors ---------------------------
  void check() {
    const FabricConfig& fc = fabric_.config();
    check_fits(fc, r_.origin, P_, Q_, allreduce_ ? "all-reduce" : "reduce");
    if (r_.elements == 0) throw std::invalid_argument("reduce: elements must be at least 1");
    n_row_colors_ = reduction_colors(r_.reduction, Q_);
    n_col_colors_ = reduction_colors(r_.reduction, P_);
    if (r_.row_color + n_row_colors_ > fc.colors || r_.col_color + n_col_colors_ > fc.colors) {
      throw std::invalid_argument("reduce: the row phase needs colors " + std::to_string(r_.row_color) +
                                  ".." + std::to_string(r_.row_color + n_row_colors_) +
                                  " (exclusive) and the column phase " + std::to_string(r_.col_color) + ".." +
                                  std::to_string(r_.col_color + n_col_colors_) + ", beyond the " +
                                  std::to_string(fc.colors) + " colors");
    }
    if (n_row_colors_ > 0 && n_col_colors_ > 0 && r_.row_color < r_.col_color + n_col_colors_ &&
        r_.col_color < r_.row_color + n_row_colors_) {
      throw std::invalid_argument("reduce: the row and column phases' colors overlap");
    }
  }

  std::uint32_t node(std::uint32_t j, std::uint32_t i) const { return i * Q_ + j; }
  PeCoord at(std::uint32_t j, std::uint32_t i) const { return PeCoord{r_.origin.x + j, r_.origin.y + i}; }

  // --- The reduction graph over the grid (node = i * Q + j) and its routes -------------
  void build_graph() {
    parent_.assign(N_, kNoParent);
    out_color_.assign(N_, 0);
    n_in_.assign(N_, 0);
    for (std::uint32_t i = 0; i < P_; ++i) {
      root_col_ = reduce_line(
          Q_,
          [&](std::uint32_t k) {
            return std::pair<std::uint32_t, std::uint32_t>{k, i};
          },
          r_.row_color, true);
    }
    root_row_ = reduce_line(
        P_,
        [&](std::uint32_t k) {
          return std::pair<std::uint32_t, std::uint32_t>{root_col_, k};
        },
        r_.col_color, false);
    root_ = node(root_col_, root_row_);
  }

  // A line of n PEs, `pos(k)` its k-th PE (grid coordinates). Links child -> parent with
  // routes along the line. Returns the root's position on the line.
  template <class Pos>
  std::uint32_t reduce_line(std::uint32_t n, Pos pos, Color base, bool horizontal) {
    auto link = [&](std::uint32_t from, std::uint32_t to, Color c) {
      const bool forward = to > from;  // east or south
      const Port fwd =
          horizontal ? (forward ? Port::kEast : Port::kWest) : (forward ? Port::kSouth : Port::kNorth);
      const Port back =
          horizontal ? (forward ? Port::kWest : Port::kEast) : (forward ? Port::kNorth : Port::kSouth);
      const auto [fj, fi] = pos(from);
      const auto [tj, ti] = pos(to);
      fabric_.set_route(at(fj, fi), c, mask(Port::kRamp), mask(fwd));
      for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
        const auto [mj, mi] = pos(m);
        fabric_.set_route(at(mj, mi), c, mask(back), mask(fwd));
      }
      fabric_.set_route(at(tj, ti), c, mask(back), mask(Port::kRamp));
      parent_[node(fj, fi)] = node(tj, ti);
      out_color_[node(fj, fi)] = c;
      ++n_in_[node(tj, ti)];
    };
    if (n <= 1) return 0;
    if (r_.reduction == Reduction::kChain) {
      for (std::uint32_t k = 0; k + 1 < n; ++k) link(k, k + 1, static_cast<Color>(base + k % 2));
      return n - 1;
    }
    if (r_.reduction == Reduction::kKTree) {
      const FabricConfig& fc = fabric_.config();
      const std::uint32_t gs = r_.ktree_group != 0
                                   ? r_.ktree_group
                                   : ktree_auto_group(n, fc.hop_latency_cycles, fc.ramp_latency_cycles,
                                                      add_cycles(pe_, r_.dtype, per_));
      for (std::uint32_t k = 0; k + 1 < n; ++k) {
        if ((k + 1) % gs == 0) {
          link(k, std::min(k + gs, n - 1), static_cast<Color>(base + 2 + (k / gs) % 2));
        } else {
          link(k, k + 1, static_cast<Color>(base + k % 2));
        }
      }
      return n - 1;
    }
    for (std::uint32_t s = 0; (1u << s) < n; ++s) {
      const std::uint32_t span = 1u << s;
      for (std::uint32_t k = span; k < n; k += 2 * span) link(k, k - span, static_cast<Color>(base + s));
    }
    return 0;
  }

  // All-reduce: the result's way back from the root to every PE.
  void route_way_back() {
    const FabricConfig& fc = fabric_.config();
    if (r_.broadcast_color >= fc.colors ||
        (n_row_colors_ > 0 && r_.broadcast_color >= r_.row_color &&
         r_.broadcast_color < r_.row_color + n_row_colors_) ||
        (n_col_colors_ > 0 && r_.broadcast_color >= r_.col_color &&
         r_.broadcast_color < r_.col_color + n_col_colors_)) {
      throw std::invalid_argument("all-reduce: broadcast_color " + std::to_string(r_.broadcast_color) +
                                  " overlaps the reduction's colors or lies beyond the fabric's");
    }
    route_broadcast_back(fabric_, r_.origin, P_, Q_, root_col_, root_row_, r_.broadcast_color);
  }

  // --- Each PE's behaviour ------------------------------------------------------------
  std::uint64_t elements_in(std::uint64_t w) const { return std::min(per_, r_.elements - w * per_); }

  // A partial-sum wavelet reaches a PE: it is added once the PE's engine is free; a sum
  // complete from every stream goes on to the parent (or, at the root, is final).
  void deliver(PeCoord p, MessageId msg, std::uint64_t cycle) {
    if (allreduce_ && fabric_.message(msg).color == r_.broadcast_color) {
      bcast_last_ = std::max(bcast_last_, cycle + 1);  // usable the cycle after it arrives
      ++bcast_delivered_;
      return;
    }
    const std::uint32_t id = node(p.x - r_.origin.x, p.y - r_.origin.y);
    PeState& s = st_[id];
    if (s.contributions.empty()) s.contributions.assign(n_wavelets_, 0);
    auto stream =
        std::find_if(s.streams.begin(), s.streams.end(), [&](const auto& x) { return x.first == msg; });
    if (stream == s.streams.end()) {
      s.streams.emplace_back(msg, 0);
      stream = s.streams.end() - 1;
    }
    const std::uint64_t k = stream->second++;
    const std::uint64_t start = std::max(cycle + 1, s.engine_free);
    s.engine_free = start + add_cycles(pe_, r_.dtype, elements_in(k));
    if (++s.contributions[k] < n_in_[id]) return;
    if (k != s.next_final++) throw std::logic_error("reduce: sums completed out of order");
    if (id == root_) {
      if (k + 1 == n_wavelets_) done_ = s.engine_free;
      if (allreduce_) {
        if (bcast_ == UINT32_MAX) bcast_ = fabric_.open_message(at(root_col_, root_row_), r_.broadcast_color);
        fabric_.append_wavelets(bcast_, 1, s.engine_free);
      }
      return;
    }
    if (s.out == UINT32_MAX) s.out = fabric_.open_message(p, out_color_[id]);
    fabric_.append_wavelets(s.out, 1, s.engine_free);
  }

  // Leaves: their vector is final at the start.
  void start_leaves() {
    for (std::uint32_t id = 0; id < N_; ++id) {
      if (n_in_[id] == 0 && parent_[id] != kNoParent) {
        fabric_.inject(at(id % Q_, id / Q_), out_color_[id], static_cast<std::uint32_t>(n_wavelets_), start_);
      }
    }
  }

  Fabric& fabric_;
  const PeConfig& pe_;
  const ReduceConfig& r_;
  const bool allreduce_;
  const std::uint32_t P_, Q_;
  const std::size_t N_;
  const std::uint64_t per_;  // elements per wavelet
  std::uint64_t n_wavelets_ = 0;
  std::uint32_t n_row_colors_ = 0, n_col_colors_ = 0;
  std::vector<std::uint32_t> parent_;
  std::vector<Color> out_color_;
  std::vector<std::uint32_t> n_in_;
  std::uint32_t root_col_ = 0, root_row_ = 0, root_ = 0;
  std::vector<PeState> st_;
  std::uint64_t start_ = 0;
  std::uint64_t done_ = kUnknown;
  MessageId bcast_ = UINT32_MAX;  // all-reduce: the result's stream from the root
  std::uint64_t bcast_last_ = 0;
  std::uint64_t bcast_delivered_ = 0;
};

CollectiveResult reduce_impl(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r, bool allreduce) {
  return ReduceRun(fabric, pe, r, allreduce).run();
}

}  // namespace

CollectiveResult run_reduce(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r) {
  return reduce_impl(fabric, pe, r, false);
}

CollectiveResult run_allreduce(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r) {
  return reduce_impl(fabric, pe, r, true);
}

CollectiveResult run_broadcast(Fabric& fabric, const PeConfig& pe, const BroadcastConfig& b) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(pe);
  const FabricConfig& fc = fabric.config();
  const std::uint32_t P = b.grid_rows;
  const std::uint32_t Q = b.grid_cols;
  check_fits(fc, b.origin, P, Q, "broadcast");
  if (b.elements == 0) throw std::invalid_argument("broadcast: elements must be at least 1");
  if (b.source.x >= Q || b.source.y >= P)
    throw std::invalid_argument("broadcast: the source is outside the grid");
  if (b.color >= fc.colors) throw std::invalid_argument("broadcast: color beyond the fabric's colors");
  const std::uint64_t n_wavelets = ceil_div(b.elements, per_wavelet(b.dtype));
  // Every PE receives the whole vector into SRAM (one 32-bit write per wavelet per cycle:
  // exactly the one write port, so storing never slows the stream).
  SramPlacement sram(b.origin, pe.sram_bytes);
  sram.place("broadcast vector (" + std::to_string(b.elements) +
                 (b.dtype == Accumulate::kFp16 ? " fp16)" : " fp32)"),
             b.elements * accumulator_bytes(b.dtype));
  const std::uint32_t sx = b.source.x;
  const std::uint32_t sy = b.source.y;
  for (std::uint32_t i = 0; i < P; ++i) {
    for (std::uint32_t j = 0; j < Q; ++j) {
      PortMask rx = 0;
      PortMask tx = 0;
      if (i == sy) {  // the source row: east and west, and from each PE down and up
        if (j == sx) {
          rx = mask(Port::kRamp);
        } else {
          rx = mask(j > sx ? Port::kWest : Port::kEast);
          tx |= mask(Port::kRamp);
        }
        if (j >= sx && j + 1 < Q) tx |= mask(Port::kEast);
        if (j <= sx && j > 0) tx |= mask(Port::kWest);
        if (i + 1 < P) tx |= mask(Port::kSouth);
        if (i > 0) tx |= mask(Port::kNorth);
      } else if (i > sy) {
        rx = mask(Port::kNorth);
        tx = static_cast<PortMask>(mask(Port::kRamp) | (i + 1 < P ? mask(Port::kSouth) : 0));
      } else {
        rx = mask(Port::kSouth);
        tx = static_cast<PortMask>(mask(Port::kRamp) | (i > 0 ? mask(Port::kNorth) : 0));
      }
      if (tx != 0) fabric.set_route({b.origin.x + j, b.origin.y + i}, b.color, rx, tx);
    }
  }
  const std::uint64_t start_cycle = fabric.now();
  std::uint64_t last = start_cycle;
  std::uint64_t delivered = 0;
  fabric.on_delivery([&](PeCoord, MessageId, std::uint64_t cycle) {
    last = std::max(last, cycle + 1);  // usable the cycle after it reaches the PE
    ++delivered;
  });
  const std::uint64_t hops0 = fabric.wavelet_hops();
  const std::uint64_t sim0 = fabric.cycles_simulated();
  if (P * Q > 1) {
    fabric.inject({b.origin.x + sx, b.origin.y + sy}, b.color, static_cast<std::uint32_t>(n_wavelets),
                  start_cycle);
  }
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);
  if (delivered != (static_cast<std::uint64_t>(P) * Q - 1) * n_wavelets) {
    throw std::logic_error("broadcast: " + std::to_string(delivered) + " wavelets delivered, expected " +
                           std::to_string((static_cast<std::uint64_t>(P) * Q - 1) * n_wavelets));
  }
  CollectiveResult res;
  res.total_cycles = last - start_cycle;
  res.wavelets = n_wavelets;
  res.root = b.source;
  res.wavelet_hops = fabric.wavelet_hops() - hops0;
  res.fabric_cycles_simulated = fabric.cycles_simulated() - sim0;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

namespace {
FabricConfig sized_for(const FabricConfig& fc, PeCoord origin, std::uint32_t P, std::uint32_t Q) {
  FabricConfig sized = fc;
  sized.width = origin.x + Q;
  sized.height = origin.y + P;
  return sized;
}
}  // namespace

CollectiveResult run_reduce(const FabricConfig& fc, const PeConfig& pe, const ReduceConfig& r) {
  Fabric fabric(sized_for(fc, r.origin, r.grid_rows, r.grid_cols));
  return run_reduce(fabric, pe, r);
}

CollectiveResult run_allreduce(const FabricConfig& fc, const PeConfig& pe, const ReduceConfig& r) {
  Fabric fabric(sized_for(fc, r.origin, r.grid_rows, r.grid_cols));
  return run_allreduce(fabric, pe, r);
}

CollectiveResult run_broadcast(const FabricConfig& fc, const PeConfig& pe, const BroadcastConfig& b) {
  Fabric fabric(sized_for(fc, b.origin, b.grid_rows, b.grid_cols));
  return run_broadcast(fabric, pe, b);
}

}  // namespace wse::wafer
