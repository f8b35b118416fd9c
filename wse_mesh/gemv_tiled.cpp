#include "wse_mesh/gemv_tiled.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "wse_mesh/gemv_pe_engine.h"

namespace wse::wafer {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Hands out a node's wavelets to its lanes round-robin over the lanes that still expect
// some (sender and receiver use the same rule, so they agree on each wavelet's lane).
struct LaneDealer {
  std::vector<std::uint64_t> left;  // wavelets each lane still expects
  std::uint32_t next = 0;
  std::uint32_t deal() {
    for (std::size_t tries = 0; tries < left.size(); ++tries) {
      const std::uint32_t l = next;
      next = static_cast<std::uint32_t>((next + 1) % left.size());
      if (left[l] > 0) {
        --left[l];
        return l;
      }
    }
    throw std::logic_error("gemv tiled: more wavelets than the node's lanes expect");
  }
};

struct NodeState {
  std::vector<detail::GemvPeEngine> pes;  // [r * kc + c]: the node's PE (PE row r, PE column c)
  LaneDealer x_lanes;                     // this vector's x wavelets to PE columns
  std::uint64_t x_wavelets = 0;           // x wavelets delivered so far (all vectors)
  std::uint64_t last_x_delivery = 0;
  std::uint32_t vector = 0;                       // the vector whose sums this node is adding (or sending)
  LaneDealer psum_lanes;                          // this vector's wavelets of sums to PE rows
  std::vector<std::uint64_t> psum_lane_elements;  // per PE row: sum elements of this vector still to come
  std::vector<std::uint64_t> ramp_free;           // west node: per PE row, the west PE's ramp
  std::vector<std::uint64_t> done;                // [r * kc + c]: FMACs of `done_vector` done
  std::uint32_t done_vector = UINT32_MAX;
  std::uint64_t taken = 0;             // wavelets of sums of this vector dealt so far
  std::vector<std::uint64_t> waiting;  // deliveries of sums not yet added
  std::size_t head = 0;
  MessageId out = UINT32_MAX;
};

GemvResult run_gemv_tiled_on(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                             const GemvConfig& g, detail::VectorTimes& times) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(pe);
  if (k == 0) throw std::invalid_argument("gemv tiled: k must be at least 1");
  if (g.reduction != Reduction::kChain) {
    throw std::invalid_argument("gemv tiled: only the chain reduction is mapped at node granularity");
  }
  const std::uint32_t P = g.grid_rows;
  const std::uint32_t Q = g.grid_cols;
  if (P == 0 || Q == 0) throw std::invalid_argument("gemv: grid_rows and grid_cols must be at least 1");
  if (P > g.rows || Q > g.cols) {
    throw std::invalid_argument(
        "gemv: the grid is larger than the matrix (some PEs would hold no rows or columns)");
  }
  const std::uint32_t Pn = static_cast<std::uint32_t>(ceil_div(P, k));
  const std::uint32_t Qn = static_cast<std::uint32_t>(ceil_div(Q, k));
  FabricConfig sized = per_pe;
  sized.width = Q;
  sized.height = P;
  sized = tiled(sized, k);
  Fabric fabric(sized);
  const std::uint32_t R = per_pe.ramp_latency_cycles;

  const std::uint64_t Mt = ceil_div(g.rows, P);
  const std::uint64_t Kt = ceil_div(g.cols, Q);
  auto tile_m = [&](std::uint32_t i) { return g.rows / P + (i < g.rows % P ? 1 : 0); };
  auto tile_k = [&](std::uint32_t j) { return g.cols / Q + (j < g.cols % Q ? 1 : 0); };
  auto kc = [&](std::uint32_t J) { return std::min(k, Q - J * k); };  // PE columns of node column J
  auto kr = [&](std::uint32_t I) { return std::min(k, P - I * k); };  // PE rows of node row I
  const std::uint64_t acc_bytes = accumulator_bytes(g.accumulate);
  const std::uint64_t per = 4 / acc_bytes;  // partial sums per 32-bit wavelet
  constexpr std::uint64_t kXPerWavelet = 2;

  if (g.vectors == 0) throw std::invalid_argument("gemv: vectors must be at least 1");
  const std::uint32_t n_vec = g.vectors;
  const std::uint64_t sram_used =
      detail::place_gemv_tensors({0, 0}, pe, Mt, Kt, n_vec, acc_bytes);  // as run_gemv

  // Routes on the node grid: x south down each node column; sums east, colors by parity.
  for (std::uint32_t J = 0; J < Qn && Pn > 1; ++J) {
    for (std::uint32_t I = 0; I < Pn; ++I) {
      const PeCoord at{J, I};
      if (I == 0) {
        fabric.set_route(at, g.x_color, mask(Port::kRamp), mask(Port::kSouth));
      } else if (I + 1 < Pn) {
        fabric.set_route(at, g.x_color, mask(Port::kNorth), mask(Port::kSouth, Port::kRamp));
      } else {
        fabric.set_route(at, g.x_color, mask(Port::kNorth), mask(Port::kRamp));
      }
    }
  }
  for (std::uint32_t I = 0; I < Pn; ++I) {
    for (std::uint32_t J = 0; J + 1 < Qn; ++J) {
      fabric.set_route({J, I}, g.psum_colors[J % 2], mask(Port::kRamp), mask(Port::kEast));
      fabric.set_route({J + 1, I}, g.psum_colors[J % 2], mask(Port::kWest), mask(Port::kRamp));
    }
  }

  std::vector<NodeState> st(static_cast<std::size_t>(Pn) * Qn);
  auto node = [&](std::uint32_t J, std::uint32_t I) -> NodeState& {
    return st[static_cast<std::size_t>(I) * Qn + J];
  };
  auto x_dealer = [&](std::uint32_t J) {
    LaneDealer d;
    for (std::uint32_t c = 0; c < kc(J); ++c) d.left.push_back(ceil_div(tile_k(J * k + c), kXPerWavelet));
    return d;
  };
  // Wavelets per vector: of x into node column J, of sums out of node row I.
  std::vector<std::uint64_t> x_per_vector(Qn, 0);
  std::vector<std::uint64_t> psum_per_vector(Pn, 0);
  for (std::uint32_t J = 0; J < Qn; ++J) {
    for (std::uint32_t c = 0; c < kc(J); ++c) x_per_vector[J] += ceil_div(tile_k(J * k + c), kXPerWavelet);
  }
  for (std::uint32_t I = 0; I < Pn; ++I) {
    for (std::uint32_t r = 0; r < kr(I); ++r) psum_per_vector[I] += ceil_div(tile_m(I * k + r), per);
  }
  auto x_wavelets = [&](std::uint32_t J) { return x_per_vector[J]; };
  auto psum_wavelets = [&](std::uint32_t I) { return psum_per_vector[I]; };
  auto psum_dealer = [&](std::uint32_t I) {
    LaneDealer d;
    for (std::uint32_t r = 0; r < kr(I); ++r) d.left.push_back(ceil_div(tile_m(I * k + r), per));
    return d;
  };
  auto start_vector = [&](NodeState& s, std::uint32_t I) {
    s.psum_lanes = psum_dealer(I);
    s.taken = 0;
    s.psum_lane_elements.clear();
    for (std::uint32_t r = 0; r < kr(I); ++r) s.psum_lane_elements.push_back(tile_m(I * k + r));
  };
  std::vector<std::uint64_t> row_done(Pn, 0);
  const std::uint64_t start_cycle = fabric.now();
  std::vector<std::uint64_t> row_left(Pn, 0);  // sum wavelets (all vectors) still to finish at the root
  for (std::uint32_t I = 0; I < Pn; ++I) row_left[I] = n_vec * psum_wavelets(I);
  for (std::uint32_t I = 0; I < Pn; ++I) {
    for (std::uint32_t J = 0; J < Qn; ++J) {
      NodeState& s = node(J, I);
      // Every PE of the node runs the FMACs of its PE column over the node's largest tile.
      for (std::uint32_t r = 0; r < kr(I); ++r) {
        for (std::uint32_t c = 0; c < kc(J); ++c) {
          s.pes.emplace_back(tile_k(J * k + c), fmac_cycles(pe, g.accumulate, tile_m(I * k)));
        }
      }
      s.x_lanes = x_dealer(J);
      s.ramp_free.assign(kr(I), 0);
      s.done.assign(static_cast<std::size_t>(kr(I)) * kc(J), 0);
      start_vector(s, I);
    }
  }
  // A wavelet of sums of PE row `lane` of node (J, I) is final at `cycle`.
  auto final_sum = [&](std::uint32_t J, std::uint32_t I, std::uint32_t lane, std::uint64_t cycle) {
    NodeState& s = node(J, I);
    if (J + 1 == Qn) {
      row_done[I] = std::max(row_done[I], cycle);
      --row_left[I];
      times.sum_final(I * k + lane, s.vector, cycle - start_cycle);
      return;
    }
    if (s.out == UINT32_MAX) s.out = fabric.open_message({J, I}, g.psum_colors[J % 2]);
    fabric.append_wavelets(s.out, 1, cycle);
  };
  // Crosses PE columns c0 .. kc - 1 of PE row `lane`: each adds after the previous one's
  // add ends + R + R (ramp out, ramp in) + 1 (issue); the H of each PE link is in the node
  // hop. `arrive` is the cycle the add at PE column c0 may start.
  auto cross = [&](NodeState& s, std::uint32_t J, std::uint32_t lane, std::uint32_t c0, std::uint64_t arrive,
                   std::uint64_t a) {
    std::uint64_t t = arrive;
    for (std::uint32_t c = c0; c < kc(J); ++c) {
      const std::size_t p = static_cast<std::size_t>(lane) * kc(J) + c;
      t = s.pes[p].add(t, s.done[p], a) + (c + 1 < kc(J) ? std::uint64_t{2} * R + 1 : 0);
    }
    return t;
  };
  // Moves node (J, I) on vector by vector as far as what has arrived allows (run_gemv's
  // pump at node granularity; one incoming stream, the chain).
  auto pump = [&](std::uint32_t J, std::uint32_t I) {
    NodeState& s = node(J, I);
    const std::uint64_t n = psum_wavelets(I);
    while (s.vector < n_vec) {
      const std::uint32_t v = s.vector;
      if (s.x_wavelets < (std::uint64_t{v} + 1) * x_wavelets(J)) return;  // x of vector v still on its way
      if (s.done_vector != v) {  // lay out the node's FMACs of vector v once
        for (std::size_t p = 0; p < s.pes.size(); ++p) {
          s.done[p] = s.pes[p].fmacs_done(v);
          times.fmacs(I * k + static_cast<std::uint32_t>(p / kc(J)), v, s.done[p] - start_cycle);
        }
        s.done_vector = v;
      }
      if (J == 0) {
        // The west PE column's sums are final at once; they leave its ramp one wavelet per
        // cycle per PE row and cross the node's other kc - 1 PE columns.
        for (std::uint64_t w = 0; w < n; ++w) {
          const std::uint32_t lane = s.psum_lanes.deal();
          const std::uint64_t e = std::min(per, s.psum_lane_elements[lane]);
          s.psum_lane_elements[lane] -= e;
          const std::uint64_t a = add_cycles(pe, g.accumulate, e);
          const std::uint64_t own = s.done[static_cast<std::size_t>(lane) * kc(J)];
          std::uint64_t final_cycle = own;
          if (Qn > 1 || kc(J) > 1) {
            const std::uint64_t leave = std::max(own, s.ramp_free[lane]);
            s.ramp_free[lane] = leave + 1;
            final_cycle = kc(J) > 1 ? cross(s, J, lane, 1, leave + std::uint64_t{2} * R + 1, a) : leave;
          }
          final_sum(J, I, lane, final_cycle);
        }
      } else {
        // Adds in arrival order, one wavelet of sums per delivery.
        while (s.taken < n) {
          if (s.head == s.waiting.size()) return;  // the rest of this vector's sums are on their way
          const std::uint64_t d = s.waiting[s.head++];
          if (s.head == s.waiting.size()) {
            s.waiting.clear();
            s.head = 0;
          }
          const std::uint32_t lane = s.psum_lanes.deal();
          const std::uint64_t e = std::min(per, s.psum_lane_elements[lane]);
          s.psum_lane_elements[lane] -= e;
          ++s.taken;
          final_sum(J, I, lane, cross(s, J, lane, 0, d + 1, add_cycles(pe, g.accumulate, e)));
        }
      }
      ++s.vector;
      start_vector(s, I);
    }
  };

  fabric.on_delivery([&](PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t J = at.x;
    const std::uint32_t I = at.y;
    NodeState& s = node(J, I);
    if (fabric.message(msg).color == g.x_color) {
      // Every PE row of the node gets the wavelet of its PE column's segment.
      const std::uint32_t lane = s.x_lanes.deal();
      for (std::uint32_t r = 0; r < kr(I); ++r)
        s.pes[static_cast<std::size_t>(r) * kc(J) + lane].x_arrived(cycle + 1);
      s.last_x_delivery = cycle;
      const std::uint64_t v = s.x_wavelets / x_wavelets(J);
      times.x(v, cycle + 1 - start_cycle);
      if (++s.x_wavelets % x_wavelets(J) == 0) s.x_lanes = x_dealer(J);  // the next vector's segments
    } else {
      s.waiting.push_back(cycle);
    }
    pump(J, I);
  });

  for (std::uint32_t J = 0; J < Qn; ++J) {
    NodeState& s = node(J, 0);
    const std::uint64_t xw = x_wavelets(J);
    if (Pn > 1) fabric.inject({J, 0}, g.x_color, static_cast<std::uint32_t>(n_vec * xw), start_cycle);
    for (detail::GemvPeEngine& e : s.pes) e.x_in_sram(start_cycle, n_vec * e.x_wavelets_per_vector());
    s.x_wavelets = n_vec * xw;
    pump(J, 0);
  }
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);

  GemvResult r;
  r.tile_rows = Mt;
  r.tile_cols = Kt;
  r.sram_bytes_per_pe = sram_used;
  r.compute_cycles = n_vec * Kt * fmac_cycles(pe, g.accumulate, Mt);
  for (std::uint32_t I = 0; I < Pn; ++I) {
    if (row_left[I] != 0)
      throw std::logic_error("gemv tiled: node row " + std::to_string(I) + " never completed");
    r.total_cycles = std::max(r.total_cycles, row_done[I] - start_cycle);
  }
  for (std::uint32_t i = 0; i < P; ++i) {
    r.first_vector_cycles = std::max(r.first_vector_cycles, times.sums_final[std::size_t{i} * n_vec]);
  }
  r.vectors_simulated = n_vec;
  for (std::uint32_t I = 0; I < Pn; ++I) {
    for (std::uint32_t J = 0; J < Qn; ++J) {
      const NodeState& s = node(J, I);
      for (const detail::GemvPeEngine& e : s.pes) {
        r.compute_done_cycles = std::max(r.compute_done_cycles, e.last_fmacs_done() - start_cycle);
      }
      if (I > 0) r.multicast_cycles = std::max(r.multicast_cycles, s.last_x_delivery + 1 - start_cycle);
    }
  }
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
  r.wavelet_hops = fabric.wavelet_hops();
  r.fabric_cycles_simulated = fabric.cycles_simulated();
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

GemvResult run_gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                          const GemvConfig& g) {
  return detail::run_gemm(g, pe, {0, 0}, [&](const GemvConfig& part, detail::VectorTimes& times) {
    return run_gemv_tiled_on(per_pe, k, pe, part, times);
  });
}

}  // namespace wse::wafer
