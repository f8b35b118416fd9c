#include "wse_mesh/kernels/collectives.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace wse::wafer {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }
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

CollectiveResult reduce_impl(Fabric& fabric, const PeConfig& pe, const ReduceConfig& r, bool allreduce) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(pe);
  const FabricConfig& fc = fabric.config();
  const std::uint32_t P = r.grid_rows;
  const std::uint32_t Q = r.grid_cols;
  const char* what = allreduce ? "all-reduce" : "reduce";
  check_fits(fc, r.origin, P, Q, what);
  if (r.elements == 0) throw std::invalid_argument("reduce: elements must be at least 1");
  const std::uint32_t n_row_colors = reduction_colors(r.reduction, Q);
  const std::uint32_t n_col_colors = reduction_colors(r.reduction, P);
  if (r.row_color + n_row_colors > fc.colors || r.col_color + n_col_colors > fc.colors) {
    throw std::invalid_argument("reduce: the row phase needs colors " + std::to_string(r.row_color) + ".." +
                                std::to_string(r.row_color + n_row_colors) +
                                " (exclusive) and the column phase " + std::to_string(r.col_color) + ".." +
                                std::to_string(r.col_color + n_col_colors) + ", beyond the " +
                                std::to_string(fc.colors) + " colors");
  }
  if (n_row_colors > 0 && n_col_colors > 0 && r.row_color < r.col_color + n_col_colors &&
      r.col_color < r.row_color + n_row_colors) {
    throw std::invalid_argument("reduce: the row and column phases' colors overlap");
  }
  const std::uint64_t per = per_wavelet(r.dtype);
  const std::uint64_t n_wavelets = ceil_div(r.elements, per);
  // Every PE holds its vector (the running sum) in SRAM.
  SramPlacement sram(r.origin, pe.sram_bytes);
  sram.place(
      "reduce vector (" + std::to_string(r.elements) + (r.dtype == Accumulate::kFp16 ? " fp16)" : " fp32)"),
      r.elements * accumulator_bytes(r.dtype));

  // The reduction graph over the grid: node = i * Q + j.
  const std::size_t N = static_cast<std::size_t>(P) * Q;
  std::vector<std::uint32_t> parent(N, kNoParent);
  std::vector<Color> out_color(N, 0);
  std::vector<std::uint32_t> n_in(N, 0);
  auto node = [&](std::uint32_t j, std::uint32_t i) { return i * Q + j; };
  auto at = [&](std::uint32_t j, std::uint32_t i) { return PeCoord{r.origin.x + j, r.origin.y + i}; };
  // A line of n PEs, `pos(k)` its k-th PE (grid coordinates). Links child -> parent with
  // routes along the line. Returns the root's position on the line.
  auto reduce_line = [&](std::uint32_t n, auto pos, Color base, bool horizontal) -> std::uint32_t {
    auto link = [&](std::uint32_t from, std::uint32_t to, Color c) {
      const bool forward = to > from;  // east or south
      const Port fwd =
          horizontal ? (forward ? Port::kEast : Port::kWest) : (forward ? Port::kSouth : Port::kNorth);
      const Port back =
          horizontal ? (forward ? Port::kWest : Port::kEast) : (forward ? Port::kNorth : Port::kSouth);
      const auto [fj, fi] = pos(from);
      const auto [tj, ti] = pos(to);
      fabric.set_route(at(fj, fi), c, mask(Port::kRamp), mask(fwd));
      for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
        const auto [mj, mi] = pos(m);
        fabric.set_route(at(mj, mi), c, mask(back), mask(fwd));
      }
      fabric.set_route(at(tj, ti), c, mask(back), mask(Port::kRamp));
      parent[node(fj, fi)] = node(tj, ti);
      out_color[node(fj, fi)] = c;
      ++n_in[node(tj, ti)];
    };
    if (n <= 1) return 0;
    if (r.reduction == Reduction::kChain) {
      for (std::uint32_t k = 0; k + 1 < n; ++k) link(k, k + 1, static_cast<Color>(base + k % 2));
      return n - 1;
    }
    if (r.reduction == Reduction::kKTree) {
      const std::uint32_t gs = r.ktree_group != 0 ? r.ktree_group
                                                  : ktree_auto_group(n, fc.hop_latency_cycles, fc.ramp_latency_cycles,
                                                                     add_cycles(pe, r.dtype, per));
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
  };
  std::uint32_t root_col = 0;
  for (std::uint32_t i = 0; i < P; ++i) {
    root_col = reduce_line(
        Q,
        [&](std::uint32_t k) {
          return std::pair<std::uint32_t, std::uint32_t>{k, i};
        },
        r.row_color, true);
  }
  const std::uint32_t root_row = reduce_line(
      P,
      [&](std::uint32_t k) {
        return std::pair<std::uint32_t, std::uint32_t>{root_col, k};
      },
      r.col_color, false);
  const std::uint32_t root = node(root_col, root_row);

  struct PeState {
    std::uint64_t engine_free = 0;
    std::vector<std::pair<MessageId, std::uint64_t>> streams;  // incoming stream -> next wavelet index
    std::vector<std::uint32_t> contributions;                  // per wavelet: streams added so far
    std::uint64_t next_final = 0;
    MessageId out = UINT32_MAX;
  };
  std::vector<PeState> st(N);
  const std::uint64_t start_cycle = fabric.now();
  std::uint64_t done = N == 1 ? start_cycle : kUnknown;
  // All-reduce: the result's way back, and its deliveries.
  MessageId bcast = UINT32_MAX;
  std::uint64_t bcast_last = start_cycle;
  std::uint64_t bcast_delivered = 0;
  if (allreduce && N > 1) {
    if (r.broadcast_color >= fc.colors ||
        (n_row_colors > 0 && r.broadcast_color >= r.row_color && r.broadcast_color < r.row_color + n_row_colors) ||
        (n_col_colors > 0 && r.broadcast_color >= r.col_color && r.broadcast_color < r.col_color + n_col_colors)) {
      throw std::invalid_argument("all-reduce: broadcast_color " + std::to_string(r.broadcast_color) +
                                  " overlaps the reduction's colors or lies beyond the fabric's");
    }
    route_broadcast_back(fabric, r.origin, P, Q, root_col, root_row, r.broadcast_color);
  }
  auto elements_in = [&](std::uint64_t w) { return std::min(per, r.elements - w * per); };

  fabric.on_delivery([&](PeCoord p, MessageId msg, std::uint64_t cycle) {
    if (allreduce && fabric.message(msg).color == r.broadcast_color) {
      bcast_last = std::max(bcast_last, cycle + 1);  // usable the cycle after it arrives
      ++bcast_delivered;
      return;
    }
    const std::uint32_t id = node(p.x - r.origin.x, p.y - r.origin.y);
    PeState& s = st[id];
    if (s.contributions.empty()) s.contributions.assign(n_wavelets, 0);
    auto stream =
        std::find_if(s.streams.begin(), s.streams.end(), [&](const auto& x) { return x.first == msg; });
    if (stream == s.streams.end()) {
      s.streams.emplace_back(msg, 0);
      stream = s.streams.end() - 1;
    }
    const std::uint64_t k = stream->second++;
    const std::uint64_t start = std::max(cycle + 1, s.engine_free);
    s.engine_free = start + add_cycles(pe, r.dtype, elements_in(k));
    if (++s.contributions[k] < n_in[id]) return;
    if (k != s.next_final++) throw std::logic_error("reduce: sums completed out of order");
    if (id == root) {
      if (k + 1 == n_wavelets) done = s.engine_free;
      if (allreduce) {
        if (bcast == UINT32_MAX) bcast = fabric.open_message(at(root_col, root_row), r.broadcast_color);
        fabric.append_wavelets(bcast, 1, s.engine_free);
      }
      return;
    }
    if (s.out == UINT32_MAX) s.out = fabric.open_message(p, out_color[id]);
    fabric.append_wavelets(s.out, 1, s.engine_free);
  });
  // Leaves: their vector is final at the start.
  for (std::uint32_t id = 0; id < N; ++id) {
    if (n_in[id] == 0 && parent[id] != kNoParent) {
      fabric.inject(at(id % Q, id / Q), out_color[id], static_cast<std::uint32_t>(n_wavelets), start_cycle);
    }
  }
  const std::uint64_t hops0 = fabric.wavelet_hops();
  const std::uint64_t sim0 = fabric.cycles_simulated();
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);
  if (done == kUnknown) throw std::logic_error("reduce: the root never completed its sum");
  if (allreduce && bcast_delivered != (N - 1) * n_wavelets) {
    throw std::logic_error("all-reduce: " + std::to_string(bcast_delivered) + " wavelets of the result delivered, expected " +
                           std::to_string((N - 1) * n_wavelets));
  }

  CollectiveResult res;
  res.reduce_cycles = done - start_cycle;
  res.total_cycles = allreduce ? std::max(done, bcast_last) - start_cycle : res.reduce_cycles;
  res.wavelets = n_wavelets;
  res.root = {root_col, root_row};
  res.wavelet_hops = fabric.wavelet_hops() - hops0;
  res.fabric_cycles_simulated = fabric.cycles_simulated() - sim0;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
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
