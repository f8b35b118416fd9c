#include "wse_mesh/kernels/gemv_tiled.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "systemc_models/units/integer.h"
#include "wse_mesh/kernels/gemv_pe_engine.h"

namespace wse::wafer {

namespace {

// What the result needs of a node: its PEs' engines and its last x delivery.
struct NodeView {
  const std::vector<detail::GemvPeEngine>* engines;
  std::uint64_t last_x_delivery;
};

// The times both node mappings (chain; tree and K-tree) report the same way: the last
// root row's sums, vector 0's, the last FMACs of any PE and the last x delivery below
// the top node row; throws if a node row's sums never all arrived. `node(J, I)` gives a
// NodeView of node column J, node row I (Pn = row_left.size() rows, Qn columns).
template <class Node>
void finish_times(GemvResult& r, const std::vector<std::uint64_t>& row_left,
                  const std::vector<std::uint64_t>& row_done, std::uint64_t start_cycle,
                  const detail::VectorTimes& times, std::uint32_t P, std::uint32_t Qn, Node node) {
  const auto Pn = static_cast<std::uint32_t>(row_left.size());
  const std::uint32_t n_vec = times.vectors;
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
      const NodeView v = node(J, I);
      for (const detail::GemvPeEngine& e : *v.engines) {
        r.compute_done_cycles = std::max(r.compute_done_cycles, e.last_fmacs_done() - start_cycle);
      }
      if (I > 0) r.multicast_cycles = std::max(r.multicast_cycles, v.last_x_delivery + 1 - start_cycle);
    }
  }
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
}

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

constexpr std::uint64_t kXPerWavelet = 2;

// Rows (columns) of a matrix of n that PE row (column) i of `parts` holds: the first
// n mod parts hold one more.
std::uint64_t share(std::uint64_t n, std::uint32_t parts, std::uint32_t i) {
  return n / parts + (i < n % parts ? 1 : 0);
}

// The node grid of a tiled GEMV, after the checks every reduction shares.
struct TiledGrid {
  FabricConfig fabric;  // tiled(per_pe sized to the grid, k)
  std::uint32_t Pn = 0, Qn = 0;
  std::uint64_t Mt = 0, Kt = 0;
  std::uint64_t sram_used = 0;
};

TiledGrid tiled_grid(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe, const GemvConfig& g) {
  validate(pe);
  if (k == 0) throw std::invalid_argument("gemv tiled: k must be at least 1");
  const std::uint32_t P = g.grid_rows;
  const std::uint32_t Q = g.grid_cols;
  if (P == 0 || Q == 0) throw std::invalid_argument("gemv: grid_rows and grid_cols must be at least 1");
  if (P > g.rows || Q > g.cols) {
    throw std::invalid_argument(
        "gemv: the grid is larger than the matrix (some PEs would hold no rows or columns)");
  }
  if (g.vectors == 0) throw std::invalid_argument("gemv: vectors must be at least 1");
  TiledGrid t;
  t.Pn = static_cast<std::uint32_t>(ceil_div(P, k));
  t.Qn = static_cast<std::uint32_t>(ceil_div(Q, k));
  FabricConfig sized = per_pe;
  sized.width = Q;
  sized.height = P;
  t.fabric = tiled(sized, k);
  t.Mt = ceil_div(g.rows, P);
  t.Kt = ceil_div(g.cols, Q);
  t.sram_used = detail::place_gemv_tensors({0, 0}, pe, t.Mt, t.Kt, g.vectors,
                                           accumulator_bytes(g.accumulate));  // as run_gemv
  return t;
}

// x south down each node column, copied to every node's RAMP below the top row.
void route_x(Fabric& fabric, const GemvConfig& g, std::uint32_t Pn, std::uint32_t Qn) {
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
}

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

// What both tiled mappings (chain; tree and K-tree) share: the node grid and its fabric,
// each PE row's and column's share of the matrix, the x wavelets each node column takes
// per vector, and the result's fields that follow from the grid.
class TiledRunBase {
 protected:
  TiledRunBase(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe, const GemvConfig& g,
               detail::VectorTimes& times)
      : k_(k),
        pe_(pe),
        g_(g),
        times_(times),
        tg_(tiled_grid(per_pe, k, pe, g)),
        fabric_(tg_.fabric),
        P_(g.grid_rows),
        Q_(g.grid_cols),
        Pn_(tg_.Pn),
        Qn_(tg_.Qn),
        per_(4 / accumulator_bytes(g.accumulate)) {
    x_per_vector_.assign(Qn_, 0);
    for (std::uint32_t J = 0; J < Qn_; ++J) {
      for (std::uint32_t c = 0; c < kc(J); ++c)
        x_per_vector_[J] += ceil_div(tile_k(J * k_ + c), kXPerWavelet);
    }
  }

  std::uint64_t tile_m(std::uint32_t i) const { return share(g_.rows, P_, i); }
  std::uint64_t tile_k(std::uint32_t j) const { return share(g_.cols, Q_, j); }
  std::uint32_t kc(std::uint32_t J) const {
    return std::min(k_, Q_ - J * k_);
  }  // PE columns of node column J
  std::uint32_t kr(std::uint32_t I) const { return std::min(k_, P_ - I * k_); }  // PE rows of node row I
  // This vector's x wavelets of node column J, dealt to its PE columns.
  LaneDealer x_dealer(std::uint32_t J) const {
    LaneDealer d;
    for (std::uint32_t c = 0; c < kc(J); ++c) d.left.push_back(ceil_div(tile_k(J * k_ + c), kXPerWavelet));
    return d;
  }
  // The result's tile, SRAM and compute fields.
  GemvResult grid_result() const {
    GemvResult r;
    r.tile_rows = tg_.Mt;
    r.tile_cols = tg_.Kt;
    r.sram_bytes_per_pe = tg_.sram_used;
    r.compute_cycles = g_.vectors * tg_.Kt * fmac_cycles(pe_, g_.accumulate, tg_.Mt);
    return r;
  }

  const std::uint32_t k_;
  const PeConfig& pe_;
  const GemvConfig& g_;
  detail::VectorTimes& times_;
  const TiledGrid tg_;
  Fabric fabric_;
  const std::uint32_t P_, Q_, Pn_, Qn_;
  const std::uint64_t per_;                  // partial sums per 32-bit wavelet
  std::vector<std::uint64_t> x_per_vector_;  // x wavelets per vector into node column J
};

// The tiled GEMV with the chain reduction, in the mapping's steps: the node grid, the
// routes (x south down each node column, sums east), each node's behaviour as x and sums
// reach it (its PEs' FMACs, and the crossing of its PE columns by each wavelet of sums),
// and the result.
class TiledChainRun : TiledRunBase {
 public:
  TiledChainRun(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe, const GemvConfig& g,
                detail::VectorTimes& times)
      : TiledRunBase(per_pe, k, pe, g, times), R_(per_pe.ramp_latency_cycles) {}

  GemvResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    route();
    init_nodes();
    fabric_.on_delivery([this](PeCoord at, MessageId msg, std::uint64_t cycle) { deliver(at, msg, cycle); });
    start_top_row();
    fabric_.run_until_idle();
    fabric_.on_delivery(nullptr);
    GemvResult r = grid_result();
    finish_times(r, row_left_, row_done_, start_cycle_, times_, P_, Qn_,
                 [&](std::uint32_t J, std::uint32_t I) {
                   const NodeState& s = node(J, I);
                   return NodeView{&s.pes, s.last_x_delivery};
                 });
    r.wavelet_hops = fabric_.wavelet_hops();
    r.fabric_cycles_simulated = fabric_.cycles_simulated();
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

 private:
  // --- The node grid --------------------------------------------------------------------
  NodeState& node(std::uint32_t J, std::uint32_t I) { return st_[static_cast<std::size_t>(I) * Qn_ + J]; }
  const NodeState& node(std::uint32_t J, std::uint32_t I) const {
    return st_[static_cast<std::size_t>(I) * Qn_ + J];
  }

  // Wavelets per vector: of x into node column J, of sums out of node row I.
  std::uint64_t x_wavelets(std::uint32_t J) const { return x_per_vector_[J]; }
  std::uint64_t psum_wavelets(std::uint32_t I) const { return psum_per_vector_[I]; }
  LaneDealer psum_dealer(std::uint32_t I) const {
    LaneDealer d;
    for (std::uint32_t r = 0; r < kr(I); ++r) d.left.push_back(ceil_div(tile_m(I * k_ + r), per_));
    return d;
  }
  void start_vector(NodeState& s, std::uint32_t I) const {
    s.psum_lanes = psum_dealer(I);
    s.taken = 0;
    s.psum_lane_elements.clear();
    for (std::uint32_t r = 0; r < kr(I); ++r) s.psum_lane_elements.push_back(tile_m(I * k_ + r));
  }

  // --- Routes on the node grid: x south down each node column; sums east, colors by parity.
  void route() {
    route_x(fabric_, g_, Pn_, Qn_);
    for (std::uint32_t I = 0; I < Pn_; ++I) {
      for (std::uint32_t J = 0; J + 1 < Qn_; ++J) {
        fabric_.set_route({J, I}, g_.psum_colors[J % 2], mask(Port::kRamp), mask(Port::kEast));
        fabric_.set_route({J + 1, I}, g_.psum_colors[J % 2], mask(Port::kWest), mask(Port::kRamp));
      }
    }
  }

  void init_nodes() {
    st_.resize(static_cast<std::size_t>(Pn_) * Qn_);
    psum_per_vector_.assign(Pn_, 0);
    for (std::uint32_t I = 0; I < Pn_; ++I) {
      for (std::uint32_t r = 0; r < kr(I); ++r) psum_per_vector_[I] += ceil_div(tile_m(I * k_ + r), per_);
    }
    row_done_.assign(Pn_, 0);
    start_cycle_ = fabric_.now();
    row_left_.assign(Pn_, 0);
    for (std::uint32_t I = 0; I < Pn_; ++I) row_left_[I] = g_.vectors * psum_wavelets(I);
    for (std::uint32_t I = 0; I < Pn_; ++I) {
      for (std::uint32_t J = 0; J < Qn_; ++J) {
        NodeState& s = node(J, I);
        // Every PE of the node runs the FMACs of its PE column over the node's largest tile.
        for (std::uint32_t r = 0; r < kr(I); ++r) {
          for (std::uint32_t c = 0; c < kc(J); ++c) {
            s.pes.emplace_back(tile_k(J * k_ + c), fmac_cycles(pe_, g_.accumulate, tile_m(I * k_)));
          }
        }
        s.x_lanes = x_dealer(J);
        s.ramp_free.assign(kr(I), 0);
        s.done.assign(static_cast<std::size_t>(kr(I)) * kc(J), 0);
        start_vector(s, I);
      }
    }
  }

  // --- Each node's behaviour ----------------------------------------------------------
  // A wavelet of sums of PE row `lane` of node (J, I) is final at `cycle`.
  void final_sum(std::uint32_t J, std::uint32_t I, std::uint32_t lane, std::uint64_t cycle) {
    NodeState& s = node(J, I);
    if (J + 1 == Qn_) {
      row_done_[I] = std::max(row_done_[I], cycle);
      --row_left_[I];
      times_.sum_final(I * k_ + lane, s.vector, cycle - start_cycle_);
      return;
    }
    if (s.out == UINT32_MAX) s.out = fabric_.open_message({J, I}, g_.psum_colors[J % 2]);
    fabric_.append_wavelets(s.out, 1, cycle);
  }

  // Crosses PE columns c0 .. kc - 1 of PE row `lane`: each adds after the previous one's
  // add ends + R + R (ramp out, ramp in) + 1 (issue); the H of each PE link is in the node
  // hop. `arrive` is the cycle the add at PE column c0 may start.
  std::uint64_t cross(NodeState& s, std::uint32_t J, std::uint32_t lane, std::uint32_t c0,
                      std::uint64_t arrive, std::uint64_t a) const {
    std::uint64_t t = arrive;
    for (std::uint32_t c = c0; c < kc(J); ++c) {
      const std::size_t p = static_cast<std::size_t>(lane) * kc(J) + c;
      t = s.pes[p].add(t, s.done[p], a) + (c + 1 < kc(J) ? std::uint64_t{2} * R_ + 1 : 0);
    }
    return t;
  }

  // Moves node (J, I) on vector by vector as far as what has arrived allows (run_gemv's
  // pump at node granularity; one incoming stream, the chain).
  void pump(std::uint32_t J, std::uint32_t I) {
    NodeState& s = node(J, I);
    const std::uint64_t n = psum_wavelets(I);
    while (s.vector < g_.vectors) {
      const std::uint32_t v = s.vector;
      if (s.x_wavelets < (std::uint64_t{v} + 1) * x_wavelets(J)) return;  // x of vector v still on its way
      if (s.done_vector != v) {  // lay out the node's FMACs of vector v once
        for (std::size_t p = 0; p < s.pes.size(); ++p) {
          s.done[p] = s.pes[p].fmacs_done(v);
          times_.fmacs(I * k_ + static_cast<std::uint32_t>(p / kc(J)), v, s.done[p] - start_cycle_);
        }
        s.done_vector = v;
      }
      if (J == 0) {
        // The west PE column's sums are final at once; they leave its ramp one wavelet per
        // cycle per PE row and cross the node's other kc - 1 PE columns.
        for (std::uint64_t w = 0; w < n; ++w) {
          const std::uint32_t lane = s.psum_lanes.deal();
          const std::uint64_t e = std::min(per_, s.psum_lane_elements[lane]);
          s.psum_lane_elements[lane] -= e;
          const std::uint64_t a = add_cycles(pe_, g_.accumulate, e);
          const std::uint64_t own = s.done[static_cast<std::size_t>(lane) * kc(J)];
          std::uint64_t final_cycle = own;
          if (Qn_ > 1 || kc(J) > 1) {
            const std::uint64_t leave = std::max(own, s.ramp_free[lane]);
            s.ramp_free[lane] = leave + 1;
            final_cycle = kc(J) > 1 ? cross(s, J, lane, 1, leave + std::uint64_t{2} * R_ + 1, a) : leave;
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
          const std::uint64_t e = std::min(per_, s.psum_lane_elements[lane]);
          s.psum_lane_elements[lane] -= e;
          ++s.taken;
          final_sum(J, I, lane, cross(s, J, lane, 0, d + 1, add_cycles(pe_, g_.accumulate, e)));
        }
      }
      ++s.vector;
      start_vector(s, I);
    }
  }

  void deliver(PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t J = at.x;
    const std::uint32_t I = at.y;
    NodeState& s = node(J, I);
    if (fabric_.message(msg).color == g_.x_color) {
      // Every PE row of the node gets the wavelet of its PE column's segment.
      const std::uint32_t lane = s.x_lanes.deal();
      for (std::uint32_t r = 0; r < kr(I); ++r)
        s.pes[static_cast<std::size_t>(r) * kc(J) + lane].x_arrived(cycle + 1);
      s.last_x_delivery = cycle;
      const std::uint64_t v = s.x_wavelets / x_wavelets(J);
      times_.x(v, cycle + 1 - start_cycle_);
      if (++s.x_wavelets % x_wavelets(J) == 0) s.x_lanes = x_dealer(J);  // the next vector's segments
    } else {
      s.waiting.push_back(cycle);
    }
    pump(J, I);
  }

  // The top node row has x in SRAM: it sends and computes at once.
  void start_top_row() {
    for (std::uint32_t J = 0; J < Qn_; ++J) {
      NodeState& s = node(J, 0);
      const std::uint64_t xw = x_wavelets(J);
      if (Pn_ > 1)
        fabric_.inject({J, 0}, g_.x_color, static_cast<std::uint32_t>(g_.vectors * xw), start_cycle_);
      for (detail::GemvPeEngine& e : s.pes) e.x_in_sram(start_cycle_, g_.vectors * e.x_wavelets_per_vector());
      s.x_wavelets = g_.vectors * xw;
      pump(J, 0);
    }
  }

  const std::uint32_t R_;  // ramp latency of a PE
  std::vector<NodeState> st_;
  std::vector<std::uint64_t> psum_per_vector_;  // sum wavelets per vector out of node row I
  std::vector<std::uint64_t> row_done_;
  std::vector<std::uint64_t> row_left_;  // sum wavelets (all vectors) still to finish at the root
  std::uint64_t start_cycle_ = 0;
};

GemvResult run_gemv_tiled_chain_on(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                   const GemvConfig& g, detail::VectorTimes& times) {
  return TiledChainRun(per_pe, k, pe, g, times).run();
}

// ---------------------------------------------------------------------------------------
// Tree and K-tree at node granularity. The row's reduction is a graph over PE columns
// (the per-PE mapping's: who sends to whom, on which color). An edge whose two PE columns
// lie in one node is crossed inside the node with the per-PE costs; an edge between nodes
// is carried by the node fabric. Inside a node every PE has its own engine and its own
// streams of incoming sums, and adds them exactly as run_gemv's PEs do (in arrival order,
// vector by vector, after its own FMACs of the vector).

// One PE column's outgoing edge in a row's reduction graph.
struct Edge {
  std::uint32_t to = UINT32_MAX;  // the PE column it sends to (UINT32_MAX: the root)
  Color color = 0;                // node-fabric color, for an edge between nodes
  bool between_nodes = false;
  // Inside a node: cycles from the wavelet leaving the sender's ramp to its delivery at
  // the receiver, 2R + h H, h the PE hops the node fabric does not already count.
  std::uint64_t inside_delay = 0;
};

// The graph of a tree (binary, to the west) or K-tree (to the east) over Q PE columns,
// nodes of k columns. Tree: k must be a power of two, so that every round either stays
// inside nodes (span < k; its hops 2^s H are counted in the crossing) or joins node
// column 0s 2^s / k node hops apart (exactly the per-PE hops). K-tree: groups of whole
// nodes (g a multiple of k), so a group root is a node's east PE column and the chain over
// the roots runs g / k node hops a stage (the per-PE hops); inside a group the chain is
// crossed as the tiled chain's (the H of each PE link in the k H node hop).
std::vector<Edge> row_graph(const GemvConfig& g, const FabricConfig& fc, const PeConfig& pe, std::uint32_t k,
                            std::uint32_t& root) {
  const std::uint32_t Q = g.grid_cols;
  const std::uint64_t R = fc.ramp_latency_cycles;
  const std::uint64_t H = fc.hop_latency_cycles;
  std::vector<Edge> e(Q);
  if (g.reduction == Reduction::kTree) {
    if ((k & (k - 1)) != 0) {
      throw std::invalid_argument("gemv tiled: the tree is mapped on nodes of a power-of-two side only (k " +
                                  std::to_string(k) + ")");
    }
    const std::uint32_t rounds = tree_rounds(Q);
    if (g.tree_color + rounds > fc.colors) {
      throw std::invalid_argument("gemv: a tree reduction over " + std::to_string(Q) + " PEs needs " +
                                  std::to_string(rounds) + " colors from " + std::to_string(g.tree_color) +
                                  ", beyond the " + std::to_string(fc.colors) + " colors");
    }
    if (g.x_color >= g.tree_color && g.x_color < g.tree_color + rounds) {
      throw std::invalid_argument("gemv: x_color overlaps the tree reduction's colors");
    }
    root = 0;
    for (std::uint32_t r = 0; r < rounds; ++r) {
      const std::uint32_t span = 1u << r;
      for (std::uint32_t j = span; j < Q; j += 2 * span) {
        e[j] = {j - span, static_cast<Color>(g.tree_color + r), j / k != (j - span) / k, 2 * R + span * H};
      }
    }
    return e;
  }
  detail::check_ktree_colors(g, fc);
  const std::uint32_t gs = detail::ktree_group_size(g, fc, pe, Q, k);
  if (gs % k != 0) {
    throw std::invalid_argument("gemv tiled: K-tree groups must be whole nodes (ktree_group " +
                                std::to_string(gs) + " is not a multiple of k " + std::to_string(k) + ")");
  }
  root = Q - 1;
  for (std::uint32_t j = 0; j + 1 < Q; ++j) {
    if ((j + 1) % gs == 0) {  // a group root: on to the next root
      const std::uint32_t to = std::min(j + gs, Q - 1);
      e[j] = {to, g.ktree_colors[(j / gs) % 2], true, 2 * R + (to - j) * H};
    } else {
      e[j] = {j + 1, g.psum_colors[(j / k) % 2], j / k != (j + 1) / k, 2 * R};
    }
  }
  return e;
}

// One stream of sums into a PE (from one child PE column), m x n wavelets in order.
struct Incoming {
  std::uint32_t from = 0;
  std::uint64_t added = 0;                                       // wavelets added so far
  std::vector<std::pair<std::uint64_t, std::uint64_t>> waiting;  // (delivery cycle, arrival order)
  std::size_t head = 0;
};

struct GraphPe {
  std::uint32_t vector = 0;     // the vector whose sums it is adding (or sending, at a leaf)
  std::uint64_t adds_left = 0;  // adds of `vector` still to book
  std::uint64_t arrivals = 0;
  std::uint64_t ramp_free = 0;  // its ramp out, for sends inside the node: one wavelet a cycle
  std::vector<Incoming> streams;
  std::vector<std::uint16_t> contributions;  // per wavelet of `vector`: streams added
};

struct GraphNode {
  std::vector<detail::GemvPeEngine> engines;  // [r * kc + c]
  std::vector<GraphPe> pes;                   // [r * kc + c]
  LaneDealer x_lanes;
  std::uint64_t x_wavelets = 0;
  std::uint64_t last_x_delivery = 0;
  MessageId out = UINT32_MAX;          // the one stream of sums that leaves the node on the fabric
  std::deque<std::uint32_t> out_rows;  // its wavelets' PE rows, in order (the receiver pops them)
};

// A wavelet of sums crossing an edge inside a node: delivered at `cycle` to PE column
// `to`, PE row `r` of node (J, I), from PE column `from`.
struct InsideDelivery {
  std::uint32_t J, I, r, to, from;
};

// The tiled GEMV with the tree or K-tree reduction, in the mapping's steps: the node grid
// and the row's reduction graph, the node-fabric routes of its edges between nodes, each
// PE's behaviour inside its node (FMACs, adds in arrival order, sends inside the node or
// onto the fabric), the fabric and the crossings inside nodes merged in time, and the
// result.
class TiledGraphRun : TiledRunBase {
 public:
  TiledGraphRun(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe, const GemvConfig& g,
                detail::VectorTimes& times)
      : TiledRunBase(per_pe, k, pe, g, times), per_pe_(per_pe) {}

  GemvResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    route_x(fabric_, g_, Pn_, Qn_);
    edge_ = row_graph(g_, per_pe_, pe_, k_, root_);
    route_edges();
    init_nodes();
    start_cycle_ = fabric_.now();
    fabric_.on_delivery([this](PeCoord at, MessageId msg, std::uint64_t cycle) { deliver(at, msg, cycle); });
    const std::uint64_t hops0 = fabric_.wavelet_hops();
    start_top_row();
    run_merged();
    fabric_.on_delivery(nullptr);
    GemvResult res = grid_result();
    finish_times(res, row_left_, row_done_, start_cycle_, times_, P_, Qn_,
                 [&](std::uint32_t J, std::uint32_t I) {
                   const GraphNode& s = node(J, I);
                   return NodeView{&s.engines, s.last_x_delivery};
                 });
    res.wavelet_hops = fabric_.wavelet_hops() - hops0;
    res.fabric_cycles_simulated = fabric_.cycles_simulated();
    res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  }

 private:
  // --- The node grid --------------------------------------------------------------------
  std::uint64_t n_psum(std::uint32_t i) const { return ceil_div(tile_m(i), per_); }
  GraphNode& node(std::uint32_t J, std::uint32_t I) { return st_[static_cast<std::size_t>(I) * Qn_ + J]; }
  const GraphNode& node(std::uint32_t J, std::uint32_t I) const {
    return st_[static_cast<std::size_t>(I) * Qn_ + J];
  }

  // --- Routes ---------------------------------------------------------------------------
  // Node-fabric routes of the edges between nodes (a node sends at most one stream: the
  // tree's column 0, the K-tree's east column), and who receives what.
  void route_edges() {
    n_in_.assign(Q_, 0);
    send_col_.assign(Qn_, UINT32_MAX);
    for (std::uint32_t j = 0; j < Q_; ++j) {
      if (edge_[j].to == UINT32_MAX) continue;
      ++n_in_[edge_[j].to];
      if (!edge_[j].between_nodes) continue;
      const std::uint32_t from = j / k_;
      const std::uint32_t to = edge_[j].to / k_;
      if (send_col_[from] != UINT32_MAX) throw std::logic_error("gemv tiled: two streams leave one node");
      send_col_[from] = j;
      const bool east = to > from;
      const Port fwd = east ? Port::kEast : Port::kWest;
      const Port back = east ? Port::kWest : Port::kEast;
      for (std::uint32_t I = 0; I < Pn_; ++I) {
        fabric_.set_route({from, I}, edge_[j].color, mask(Port::kRamp), mask(fwd));
        for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
          fabric_.set_route({m, I}, edge_[j].color, mask(back), mask(fwd));
        }
        fabric_.set_route({to, I}, edge_[j].color, mask(back), mask(Port::kRamp));
      }
    }
  }

  // Children of each PE column, each child's place among its parent's streams, and every
  // node's PEs.
  void init_nodes() {
    children_.assign(Q_, {});
    slot_.assign(Q_, 0);
    for (std::uint32_t j = 0; j < Q_; ++j) {
      if (edge_[j].to == UINT32_MAX) continue;
      slot_[j] = static_cast<std::uint32_t>(children_[edge_[j].to].size());
      children_[edge_[j].to].push_back(j);
    }
    st_.resize(static_cast<std::size_t>(Pn_) * Qn_);
    row_done_.assign(Pn_, 0);
    row_left_.assign(Pn_, 0);
    for (std::uint32_t I = 0; I < Pn_; ++I) {
      for (std::uint32_t J = 0; J < Qn_; ++J) {
        GraphNode& s = node(J, I);
        for (std::uint32_t r = 0; r < kr(I); ++r) {
          if (J == 0) row_left_[I] += g_.vectors * n_psum(I * k_ + r);
          for (std::uint32_t c = 0; c < kc(J); ++c) {
            // Each PE of the node runs the FMACs of its own tile (as run_gemv).
            s.engines.emplace_back(tile_k(J * k_ + c), fmac_cycles(pe_, g_.accumulate, tile_m(I * k_ + r)));
            GraphPe p;
            for (std::uint32_t j : children_[J * k_ + c]) p.streams.push_back(Incoming{j, 0, {}, 0});
            s.pes.push_back(std::move(p));
          }
        }
        s.x_lanes = x_dealer(J);
      }
    }
  }

  // --- Each PE's behaviour ------------------------------------------------------------
  // Wavelet w of the sums of vector v at PE (r, c) of node (J, I) is final at `cycle`.
  void final_sum(std::uint32_t J, std::uint32_t I, std::uint32_t r, std::uint32_t c, std::uint32_t v,
                 std::uint64_t cycle) {
    GraphNode& s = node(J, I);
    const std::uint32_t j = J * k_ + c;
    const Edge& e = edge_[j];
    if (j == root_) {
      row_done_[I] = std::max(row_done_[I], cycle);
      --row_left_[I];
      times_.sum_final(I * k_ + r, v, cycle - start_cycle_);
      return;
    }
    if (e.between_nodes) {
      if (s.out == UINT32_MAX) s.out = fabric_.open_message({J, I}, e.color);
      fabric_.append_wavelets(s.out, 1, cycle);
      s.out_rows.push_back(r);
      return;
    }
    GraphPe& p = s.pes[static_cast<std::size_t>(r) * kc(J) + c];
    const std::uint64_t leave = std::max(cycle, p.ramp_free);
    p.ramp_free = leave + 1;
    inside_[leave + e.inside_delay].push_back({J, I, r, e.to, j});
  }

  // Moves PE (r, c) of node (J, I) on as far as what has arrived allows (run_gemv's pump).
  void pump(std::uint32_t J, std::uint32_t I, std::uint32_t r, std::uint32_t c) {
    GraphNode& s = node(J, I);
    const std::size_t idx = static_cast<std::size_t>(r) * kc(J) + c;
    GraphPe& p = s.pes[idx];
    detail::GemvPeEngine& eng = s.engines[idx];
    const std::uint32_t i = I * k_ + r;
    const std::uint32_t nin = n_in_[J * k_ + c];
    const std::uint64_t mi = tile_m(i);
    const std::uint64_t n = n_psum(i);
    while (p.vector < g_.vectors && eng.x_complete(p.vector)) {
      const std::uint32_t v = p.vector;
      const std::uint64_t done = eng.fmacs_done(v);
      times_.fmacs(i, v, done - start_cycle_);
      if (nin == 0) {
        for (std::uint64_t w = 0; w < n; ++w) final_sum(J, I, r, c, v, done);
        ++p.vector;
        continue;
      }
      if (p.adds_left == 0) {
        p.adds_left = nin * n;
        p.contributions.assign(n, 0);
      }
      while (p.adds_left > 0) {
        Incoming* next = nullptr;
        for (Incoming& x : p.streams) {
          if (x.head < x.waiting.size() && x.added / n == v &&
              (next == nullptr || x.waiting[x.head].second < next->waiting[next->head].second)) {
            next = &x;
          }
        }
        if (next == nullptr) return;  // the rest of this vector's sums are still on their way
        const std::uint64_t w = next->added % n;
        const std::uint64_t end = eng.add(next->waiting[next->head].first + 1, done,
                                          add_cycles(pe_, g_.accumulate, std::min(per_, mi - w * per_)));
        ++next->added;
        if (++next->head == next->waiting.size()) {
          next->waiting.clear();
          next->head = 0;
        }
        --p.adds_left;
        if (++p.contributions[w] == nin) final_sum(J, I, r, c, v, end);
      }
      ++p.vector;
    }
  }

  // A wavelet of sums from PE column `from` reaches PE (r, to) of node (J, I) at `cycle`.
  void receive(std::uint32_t J, std::uint32_t I, std::uint32_t r, std::uint32_t to, std::uint32_t from,
               std::uint64_t cycle) {
    GraphNode& s = node(J, I);
    const std::uint32_t c = to - J * k_;
    GraphPe& p = s.pes[static_cast<std::size_t>(r) * kc(J) + c];
    Incoming& x = p.streams[slot_[from]];
    x.waiting.emplace_back(cycle, p.arrivals++);
    pump(J, I, r, c);
  }

  void deliver(PeCoord at, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t J = at.x;
    const std::uint32_t I = at.y;
    GraphNode& s = node(J, I);
    if (fabric_.message(msg).color == g_.x_color) {
      // Every PE row of the node gets the wavelet of its PE column's segment.
      const std::uint32_t lane = s.x_lanes.deal();
      for (std::uint32_t r = 0; r < kr(I); ++r) {
        s.engines[static_cast<std::size_t>(r) * kc(J) + lane].x_arrived(cycle + 1);
      }
      s.last_x_delivery = cycle;
      times_.x(s.x_wavelets / x_per_vector_[J], cycle + 1 - start_cycle_);
      if (++s.x_wavelets % x_per_vector_[J] == 0) s.x_lanes = x_dealer(J);  // the next vector's segments
      for (std::uint32_t r = 0; r < kr(I); ++r) pump(J, I, r, lane);
      return;
    }
    GraphNode& sender = node(fabric_.message(msg).src.x, I);
    const std::uint32_t from = send_col_[fabric_.message(msg).src.x];
    const std::uint32_t r = sender.out_rows.front();
    sender.out_rows.pop_front();
    receive(J, I, r, edge_[from].to, from, cycle);
  }

  // The top node row has x in SRAM: it sends and computes at once.
  void start_top_row() {
    for (std::uint32_t J = 0; J < Qn_; ++J) {
      GraphNode& s = node(J, 0);
      if (Pn_ > 1) {
        fabric_.inject({J, 0}, g_.x_color, static_cast<std::uint32_t>(g_.vectors * x_per_vector_[J]),
                       start_cycle_);
      }
      for (detail::GemvPeEngine& e : s.engines)
        e.x_in_sram(start_cycle_, g_.vectors * e.x_wavelets_per_vector());
      s.x_wavelets = g_.vectors * x_per_vector_[J];
      for (std::uint32_t r = 0; r < kr(0); ++r) {
        for (std::uint32_t c = 0; c < kc(J); ++c) pump(J, 0, r, c);
      }
    }
  }

  // The fabric and the crossings inside nodes, merged in time: crossings due at cycle d
  // are taken before the fabric's deliveries of cycle d.
  void run_merged() {
    for (;;) {
      const std::uint64_t next_fabric = fabric_.idle() ? UINT64_MAX : fabric_.next_activity_cycle();
      const std::uint64_t next_inside = inside_.empty() ? UINT64_MAX : inside_.begin()->first;
      if (next_fabric == UINT64_MAX && next_inside == UINT64_MAX) break;
      if (next_inside <= next_fabric) {
        fabric_.run_until_idle(next_inside);
        // Crossings booked now land at least 2R + 1 cycles later: this cycle's list is final.
        std::vector<InsideDelivery> due = std::move(inside_.begin()->second);
        inside_.erase(inside_.begin());
        for (const InsideDelivery& d : due) receive(d.J, d.I, d.r, d.to, d.from, next_inside);
      } else {
        fabric_.run_until_idle(next_fabric + 1);
      }
    }
  }

  const FabricConfig& per_pe_;
  std::vector<Edge> edge_;  // per PE column: its edge of the row's reduction graph
  std::uint32_t root_ = 0;
  std::vector<std::uint32_t> n_in_;
  std::vector<std::uint32_t> send_col_;  // the PE column whose sums leave node column J
  std::vector<std::vector<std::uint32_t>> children_;
  std::vector<std::uint32_t> slot_;
  std::vector<GraphNode> st_;
  std::vector<std::uint64_t> row_done_;
  std::vector<std::uint64_t> row_left_;  // sum wavelets (all vectors) still to finish at the root
  std::uint64_t start_cycle_ = 0;
  // Crossings inside nodes by delivery cycle, in the order they were booked.
  std::map<std::uint64_t, std::vector<InsideDelivery>> inside_;
};

GemvResult run_gemv_tiled_graph_on(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                   const GemvConfig& g, detail::VectorTimes& times) {
  return TiledGraphRun(per_pe, k, pe, g, times).run();
}

// ---------------------------------------------------------------------------------------
// Folded node rows (GemvConfig::fold_rows). The node rows below the top one are coupled
// only through the x multicast, which reaches node row I + 1 one node hop (k H) after
// node row I; the reductions run along the rows. A node row's timeline is therefore that
// of any other node row with the same PE-row tile heights (the same kr and the same count
// of rows holding ceil(M / P) rows), shifted by k H per node row. Those classes are runs
// of consecutive node rows (the taller tiles come first); the grid of the top node row and
// the last node row of each run is simulated, and every other node row's times are its
// run's last row's, earlier by k H per node row. Results equal the whole grid's (tested).
template <class On>
GemvResult run_folded(const FabricConfig& per_pe, std::uint32_t k, const GemvConfig& g,
                      detail::VectorTimes& times, On on) {
  const std::uint32_t P = g.grid_rows, Q = g.grid_cols;
  const auto Pn = static_cast<std::uint32_t>(ceil_div(P, k));
  if (!g.fold_rows || Pn <= 3 || g.rows < P || Q == 0 || Q > g.cols) return on(g, times);
  const std::uint64_t base = g.rows / P, rem = g.rows % P;
  const auto kr = [&](std::uint32_t I) { return std::min(k, P - I * k); };
  const auto tall = [&](std::uint32_t I) {  // PE rows of node row I holding base + 1 rows
    const std::uint64_t first = std::uint64_t{I} * k;
    return rem <= first ? std::uint64_t{0} : std::min<std::uint64_t>(kr(I), rem - first);
  };
  std::vector<std::uint32_t> cls(Pn, 0);  // node row -> its node row in the folded grid
  std::vector<std::uint32_t> kept = {0};  // folded node row -> node row of the whole grid
  for (std::uint32_t I = 1; I < Pn; ++I) {
    if (kept.size() > 1 && kr(I) == kr(kept.back()) && tall(I) == tall(kept.back())) {
      kept.back() = I;
    } else {
      kept.push_back(I);
    }
    cls[I] = static_cast<std::uint32_t>(kept.size() - 1);
  }
  const auto Pf = static_cast<std::uint32_t>(kept.size());
  if (Pf == Pn) return on(g, times);
  GemvConfig f = g;
  f.grid_rows = k * (Pf - 1) + kr(Pn - 1);
  f.rows = 0;
  for (std::uint32_t I : kept) f.rows += kr(I) * base + tall(I);
  const std::uint32_t nv = times.vectors;
  detail::VectorTimes ft(f.grid_rows, nv);
  GemvResult r = on(f, ft);

  const std::uint64_t d = tiled(per_pe, k).hop_latency_cycles;  // one node hop of the x multicast
  for (std::uint32_t I = 0; I < Pn; ++I) {
    const std::uint64_t shift = (I - cls[I]) * d;
    for (std::uint32_t row = 0; row < kr(I); ++row) {
      const std::size_t from = (std::size_t{cls[I]} * k + row) * nv;
      for (std::uint32_t v = 0; v < nv; ++v) {
        times.sum_final(I * k + row, v, ft.sums_final[from + v] + shift);
        times.fmacs(I * k + row, v, ft.fmacs_done[from + v] + shift);
      }
    }
  }
  const std::uint64_t x_later = std::uint64_t{Pn - Pf} * d;  // the last node row's x
  for (std::uint32_t v = 0; v < nv; ++v) times.x(v, ft.x_delivered[v] + x_later);
  r.total_cycles = *std::max_element(times.sums_final.begin(), times.sums_final.end());
  r.compute_done_cycles = *std::max_element(times.fmacs_done.begin(), times.fmacs_done.end());
  r.first_vector_cycles = 0;
  for (std::uint32_t i = 0; i < P; ++i) {
    r.first_vector_cycles = std::max(r.first_vector_cycles, times.sums_final[std::size_t{i} * nv]);
  }
  if (r.multicast_cycles > 0) r.multicast_cycles += x_later;
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
  // Hops: the x stream of each node column crosses Pn - 1 node links; the reductions carry
  // each node row's sum wavelets over the same row-wise routes, so in proportion to them.
  std::uint64_t x_wavelets = 0;
  for (std::uint32_t j = 0; j < Q; ++j) x_wavelets += ceil_div(share(g.cols, Q, j), kXPerWavelet);
  x_wavelets *= nv;
  const std::uint64_t per = 4 / accumulator_bytes(g.accumulate);
  const auto sums = [&](std::uint32_t I) {
    return kr(I) * ceil_div(base, per) + tall(I) * (ceil_div(base + 1, per) - ceil_div(base, per));
  };
  std::uint64_t sums_kept = 0, sums_all = 0;
  for (std::uint32_t I : kept) sums_kept += sums(I);
  for (std::uint32_t I = 0; I < Pn; ++I) sums_all += sums(I);
  const std::uint64_t reduce_hops = r.wavelet_hops - x_wavelets * (Pf - 1);
  if (reduce_hops % sums_kept != 0)
    throw std::logic_error("gemv tiled: folded reduction hops are not per sum wavelet");
  r.wavelet_hops = x_wavelets * (Pn - 1) + reduce_hops / sums_kept * sums_all;
  return r;
}

}  // namespace

GemvResult run_gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                          const GemvConfig& g) {
  return detail::run_gemm(g, pe, {0, 0}, [&](const GemvConfig& part, detail::VectorTimes& times) {
    return run_folded(per_pe, k, part, times, [&](const GemvConfig& c, detail::VectorTimes& t) {
      return c.reduction == Reduction::kChain ? run_gemv_tiled_chain_on(per_pe, k, pe, c, t)
                                              : run_gemv_tiled_graph_on(per_pe, k, pe, c, t);
    });
  });
}

}  // namespace wse::wafer
