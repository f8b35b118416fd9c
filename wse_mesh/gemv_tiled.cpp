#include "wse_mesh/gemv_tiled.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace wse::wafer {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }
constexpr std::uint64_t kUnknown = UINT64_MAX;

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
  LaneDealer x_lanes;
  std::vector<std::uint64_t> x_lane_free;      // per PE column: FMAC engine free
  std::vector<std::uint64_t> x_lane_elements;  // per PE column: x elements still to come
  std::uint64_t x_left = 0;                    // x wavelets still to come
  std::uint64_t own_done = kUnknown;
  std::uint64_t last_x_delivery = 0;
  LaneDealer psum_lanes;
  std::vector<std::uint64_t> psum_lane_free;      // per PE row: first PE column's adder free
  std::vector<std::uint64_t> psum_lane_elements;  // per PE row: sum elements still to come
  std::vector<std::uint64_t> waiting;             // psum deliveries before own_done
  MessageId out = UINT32_MAX;
};

}  // namespace

GemvResult run_gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                          const GemvConfig& g) {
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

  SramPlacement sram({0, 0}, pe.sram_bytes);  // the north-west PE, as in run_gemv
  sram.place("W tile " + std::to_string(Mt) + "x" + std::to_string(Kt) + " fp16", Mt * Kt * 2);
  sram.place("x segment (" + std::to_string(Kt) + " fp16)", Kt * 2);
  sram.place("y partial sums (" + std::to_string(Mt) + (acc_bytes == 2 ? " fp16)" : " fp32)"),
             Mt * acc_bytes);

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
  auto psum_wavelets = [&](std::uint32_t I) {
    std::uint64_t n = 0;
    for (std::uint32_t r = 0; r < kr(I); ++r) n += ceil_div(tile_m(I * k + r), per);
    return n;
  };
  auto psum_dealer = [&](std::uint32_t I) {
    LaneDealer d;
    for (std::uint32_t r = 0; r < kr(I); ++r) d.left.push_back(ceil_div(tile_m(I * k + r), per));
    return d;
  };
  std::vector<std::uint64_t> row_done(Pn, 0);
  std::vector<std::uint64_t> row_left(Pn, 0);  // sum wavelets still to finish at the root
  for (std::uint32_t I = 0; I < Pn; ++I) row_left[I] = psum_wavelets(I);
  for (std::uint32_t J = 0; J < Qn; ++J) {
    for (std::uint32_t I = 0; I < Pn; ++I) {
      NodeState& s = node(J, I);
      s.x_lanes.left.clear();
      for (std::uint32_t c = 0; c < kc(J); ++c) {
        s.x_lanes.left.push_back(ceil_div(tile_k(J * k + c), kXPerWavelet));
        s.x_lane_elements.push_back(tile_k(J * k + c));
        s.x_left += s.x_lanes.left.back();
      }
      s.x_lane_free.assign(kc(J), 0);
      s.psum_lanes = psum_dealer(I);
      s.psum_lane_free.assign(kr(I), 0);
      for (std::uint32_t r = 0; r < kr(I); ++r) s.psum_lane_elements.push_back(tile_m(I * k + r));
    }
  }
  // A wavelet of sums arriving (at `d`) at node (J, I), once the node's FMACs are done.
  auto add_sum = [&](std::uint32_t J, std::uint32_t I, std::uint64_t d) {
    NodeState& s = node(J, I);
    const std::uint32_t lane = s.psum_lanes.deal();
    const std::uint64_t e = std::min(per, s.psum_lane_elements[lane]);
    s.psum_lane_elements[lane] -= e;
    const std::uint64_t a = add_cycles(pe, g.accumulate, e);
    const std::uint64_t start = std::max({d + 1, s.psum_lane_free[lane], s.own_done});
    s.psum_lane_free[lane] = start + a;
    const std::uint64_t final_cycle = start + a + (kc(J) - 1) * (std::uint64_t{2} * R + 1 + a);
    if (J + 1 == Qn) {
      row_done[I] = std::max(row_done[I], final_cycle);
      --row_left[I];
      return;
    }
    if (s.out == UINT32_MAX) s.out = fabric.open_message({J, I}, g.psum_colors[J % 2]);
    fabric.append_wavelets(s.out, 1, final_cycle);
  };
  // Node FMACs done at `cycle`: leaves send their sums through their own PE columns.
  auto own_done = [&](std::uint32_t J, std::uint32_t I, std::uint64_t cycle) {
    NodeState& s = node(J, I);
    s.own_done = cycle;
    if (J == 0) {
      // The west PE column's sums are final at once; they cross the node's other kc - 1
      // PE columns, each adding (2R + 1 + a per column).
      LaneDealer d = psum_dealer(I);
      std::vector<std::uint64_t> elements;
      for (std::uint32_t r = 0; r < kr(I); ++r) elements.push_back(tile_m(I * k + r));
      const std::uint64_t n = psum_wavelets(I);
      std::vector<std::uint64_t> lane_free(kr(I), cycle);  // west PE's ramp: one wavelet per cycle
      std::vector<std::uint64_t> lane_add_free(kr(I), 0);  // second PE column's adder
      for (std::uint64_t w = 0; w < n; ++w) {
        const std::uint32_t lane = d.deal();
        const std::uint64_t e = std::min(per, elements[lane]);
        elements[lane] -= e;
        const std::uint64_t a = add_cycles(pe, g.accumulate, e);
        // Internal stages: the wavelet leaves the west PE in its ramp slot; the next PE
        // column adds it 2R + 1 cycles later (its hop H is in the node hop), each further
        // one 2R + 1 + a after that.
        const std::uint64_t leave = lane_free[lane]++;
        std::uint64_t final_cycle = Qn == 1 ? cycle : leave;
        if (kc(J) > 1) {
          const std::uint64_t start1 = std::max(leave + std::uint64_t{2} * R + 1, lane_add_free[lane]);
          lane_add_free[lane] = start1 + a;
          final_cycle = start1 + a + (kc(J) - 2) * (std::uint64_t{2} * R + 1 + a);
        }
        if (Qn == 1) {
          row_done[I] = std::max(row_done[I], final_cycle);
          --row_left[I];
          continue;
        }
        if (s.out == UINT32_MAX) s.out = fabric.open_message({J, I}, g.psum_colors[J % 2]);
        fabric.append_wavelets(s.out, 1, final_cycle);
      }
    } else {
      std::vector<std::uint64_t> waiting;
      waiting.swap(s.waiting);
      for (std::uint64_t d : waiting) add_sum(J, I, d);
    }
  };

  fabric.on_delivery([&](PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t J = at.x;
    const std::uint32_t I = at.y;
    NodeState& s = node(J, I);
    if (fabric.message(msg).color == g.x_color) {
      const std::uint32_t lane = s.x_lanes.deal();
      const std::uint64_t e = std::min(kXPerWavelet, s.x_lane_elements[lane]);
      s.x_lane_elements[lane] -= e;
      const std::uint64_t start = std::max(cycle + 1, s.x_lane_free[lane]);
      s.x_lane_free[lane] = start + e * fmac_cycles(pe, g.accumulate, tile_m(I * k));
      s.last_x_delivery = cycle;
      if (--s.x_left == 0) {
        own_done(J, I, *std::max_element(s.x_lane_free.begin(), s.x_lane_free.end()));
      }
    } else if (s.own_done == kUnknown) {
      s.waiting.push_back(cycle);
    } else {
      add_sum(J, I, cycle);
    }
  });

  const std::uint64_t start_cycle = fabric.now();
  for (std::uint32_t J = 0; J < Qn; ++J) {
    NodeState& s = node(J, 0);
    std::uint64_t done = start_cycle;
    for (std::uint32_t c = 0; c < kc(J); ++c) {
      done = std::max(done, start_cycle + tile_k(J * k + c) * fmac_cycles(pe, g.accumulate, tile_m(0)));
    }
    if (Pn > 1) fabric.inject({J, 0}, g.x_color, static_cast<std::uint32_t>(s.x_left), start_cycle);
    s.x_left = 0;
    own_done(J, 0, done);
  }
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);

  GemvResult r;
  r.tile_rows = Mt;
  r.tile_cols = Kt;
  r.sram_bytes_per_pe = sram.used_bytes();
  r.compute_cycles = Kt * fmac_cycles(pe, g.accumulate, Mt);
  for (std::uint32_t I = 0; I < Pn; ++I) {
    if (row_left[I] != 0)
      throw std::logic_error("gemv tiled: node row " + std::to_string(I) + " never completed");
    r.total_cycles = std::max(r.total_cycles, row_done[I] - start_cycle);
  }
  for (std::uint32_t I = 0; I < Pn; ++I) {
    for (std::uint32_t J = 0; J < Qn; ++J) {
      const NodeState& s = node(J, I);
      r.compute_done_cycles = std::max(r.compute_done_cycles, s.own_done - start_cycle);
      if (I > 0) r.multicast_cycles = std::max(r.multicast_cycles, s.last_x_delivery + 1 - start_cycle);
    }
  }
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
  r.wavelet_hops = fabric.wavelet_hops();
  r.fabric_cycles_simulated = fabric.cycles_simulated();
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace wse::wafer
