// Internals shared by the per-PE GEMV (gemv.cpp) and its node mapping on tiled fidelity
// (gemv_tiled.cpp), so that both time a PE's instructions the same way: the compute
// engine of one PE running a GEMV (or the GEMM of m vectors) against its stationary
// weight tile, the SRAM placement, and the steady-state shortcut for large m (run_gemm).
//
// Two instruction streams share the engine:
//  - FMACs, vector by vector: x wavelet w (vector w / nx) may start its FMACs the cycle
//    after it reaches the PE (or at once when x is in the PE's SRAM); each element costs
//    fmac_cycles(Mt). Vector v + 1's FMACs follow vector v's.
//  - adds of incoming partial sums (the reduction), issued as soon as they are ready and
//    the PE's own sums of that vector are final; they take the engine first, the FMAC
//    loop resuming after them (adds steal cycles from the FMACs: the reduction runs on a
//    fabric-triggered microthread that the FMAC loop yields to, since the sums are on the
//    critical path of the whole row).
// Causality: a vector's FMAC completion may be asked for only once every add that can
// start before it is booked (the caller adds vector by vector, so: all adds of earlier
// vectors); the engine checks this and throws std::logic_error if an add is booked into
// FMAC time it has already laid out.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer::detail {

class GemvPeEngine {
 public:
  // `segment_elements`: x elements per vector on this PE (Kt of its tile), two per wavelet.
  GemvPeEngine(std::uint64_t segment_elements, std::uint64_t fmac_cycles_per_element)
      : seg_(segment_elements), nx_((segment_elements + 1) / 2), f_(fmac_cycles_per_element) {}

  std::uint64_t x_wavelets_per_vector() const { return nx_; }

  // `wavelets` x wavelets whose FMACs may start at `ready` (x held in this PE's SRAM).
  void x_in_sram(std::uint64_t ready, std::uint64_t wavelets) {
    sram_ready_ = ready;
    sram_wavelets_ = wavelets;
    x_ready_ += wavelets;
  }
  // One x wavelet delivered: its FMACs may start at `ready` (delivery cycle + 1).
  void x_arrived(std::uint64_t ready) {
    if (!runs_.empty() && runs_.back().first + runs_.back().second == ready) {
      ++runs_.back().second;  // consecutive cycles: one run
    } else {
      runs_.emplace_back(ready, 1);
    }
    ++x_ready_;
  }
  bool x_complete(std::uint32_t v) const { return x_ready_ >= (std::uint64_t{v} + 1) * nx_; }

  // Cycle at which vector v's FMACs are done (v = the last vector asked for, or the next).
  std::uint64_t fmacs_done(std::uint32_t v) {
    if (v + 1 == vectors_done_) return last_done_;
    if (v != vectors_done_ || !x_complete(v)) {
      throw std::logic_error("gemv engine: FMACs of a vector asked out of order or before its x arrived");
    }
    // FMAC cycles are laid out around the adds in one go while the x wavelets are already
    // in (ready <= t_); a wavelet that is not yet in first lets the work before it run.
    std::uint64_t pending = 0;
    for (std::uint64_t w = 0; w < nx_; ++w) {
      const std::uint64_t ready = next_ready();
      if (ready > t_) {
        consume(pending);
        pending = 0;
        t_ = std::max(t_, ready);
      }
      pending += std::min<std::uint64_t>(2, seg_ - 2 * w) * f_;
    }
    consume(pending);
    ++vectors_done_;
    last_done_ = t_;
    return t_;
  }
  std::uint32_t vectors_done() const { return vectors_done_; }
  std::uint64_t last_fmacs_done() const { return last_done_; }

  // Books one add of `cycles`, ready at `ready`, of a vector whose FMACs were done at
  // `gate`; adds run one after another. Returns the cycle it ends.
  std::uint64_t add(std::uint64_t ready, std::uint64_t gate, std::uint64_t cycles) {
    const std::uint64_t start = std::max({ready, gate, add_free_});
    if (start < t_) throw std::logic_error("gemv engine: an add booked into FMAC time already laid out");
    add_free_ = start + cycles;
    if (cycles > 0) busy_.emplace_back(start, add_free_);
    return add_free_;
  }

 private:
  std::uint64_t next_ready() {
    if (sram_wavelets_ > 0) {
      --sram_wavelets_;
      return sram_ready_;
    }
    auto& run = runs_[head_];
    const std::uint64_t r = run.first++;
    if (--run.second == 0 && ++head_ == runs_.size()) {
      runs_.clear();
      head_ = 0;
    }
    return r;
  }
  // Runs `cycles` of FMAC from t_, around the adds booked on the engine.
  void consume(std::uint64_t cycles) {
    while (cycles > 0) {
      while (busy_head_ < busy_.size() && busy_[busy_head_].second <= t_) ++busy_head_;
      if (busy_head_ < busy_.size() && busy_[busy_head_].first <= t_) {
        t_ = busy_[busy_head_].second;
        continue;
      }
      const std::uint64_t room = busy_head_ < busy_.size() ? busy_[busy_head_].first - t_ : cycles;
      const std::uint64_t run = std::min(cycles, room);
      t_ += run;
      cycles -= run;
    }
    if (busy_head_ == busy_.size()) {
      busy_.clear();
      busy_head_ = 0;
    } else if (busy_head_ >= 64 && 2 * busy_head_ >= busy_.size()) {
      busy_.erase(busy_.begin(), busy_.begin() + static_cast<std::ptrdiff_t>(busy_head_));
      busy_head_ = 0;
    }
  }

  std::uint64_t seg_;
  std::uint64_t nx_;
  std::uint64_t f_;
  std::uint64_t x_ready_ = 0;  // x wavelets available so far (all vectors)
  std::uint64_t sram_ready_ = 0;
  std::uint64_t sram_wavelets_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> runs_;  // (first ready cycle, wavelets) consecutive
  std::size_t head_ = 0;
  std::uint64_t t_ = 0;  // where the FMAC stream has got to
  std::uint32_t vectors_done_ = 0;
  std::uint64_t last_done_ = 0;
  std::uint64_t add_free_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> busy_;  // adds [start, end) not yet passed
  std::size_t busy_head_ = 0;
};

// The K-tree's group size for a row of Q PEs: GemvConfig::ktree_group, or when 0 the
// group size minimising the uncontended estimate (ktree_auto_group) among multiples of
// `multiple_of` (tiled fidelity: whole nodes).
inline std::uint32_t ktree_group_size(const GemvConfig& g, const FabricConfig& fc, const PeConfig& pe,
                                      std::uint32_t Q, std::uint32_t multiple_of) {
  if (g.ktree_group != 0) return g.ktree_group;
  const std::uint64_t per = 4 / accumulator_bytes(g.accumulate);
  return ktree_auto_group(Q, fc.hop_latency_cycles, fc.ramp_latency_cycles, add_cycles(pe, g.accumulate, per),
                          multiple_of);
}

// The K-tree's four colors (psum_colors for the group chains, ktree_colors for the chain
// over the roots) must be distinct, apart from x_color and within the fabric's colors.
inline void check_ktree_colors(const GemvConfig& g, const FabricConfig& fc) {
  const std::array<Color, 5> c{g.x_color, g.psum_colors[0], g.psum_colors[1], g.ktree_colors[0],
                               g.ktree_colors[1]};
  for (std::size_t a = 0; a < c.size(); ++a) {
    if (c[a] >= fc.colors) {
      throw std::invalid_argument("gemv: K-tree color " + std::to_string(c[a]) + " beyond the " +
                                  std::to_string(fc.colors) + " colors");
    }
    for (std::size_t b = a + 1; b < c.size(); ++b) {
      if (c[a] == c[b]) {
        throw std::invalid_argument(
            "gemv: the K-tree needs x_color, psum_colors and ktree_colors distinct (color " +
            std::to_string(c[a]) + " twice)");
      }
    }
  }
}

// Places the GEMV's tensors in the SRAM of the PE at `at`, the north-west PE of the grid
// (the largest tile, and a top-row PE, which keeps x): the W tile, the m x segments it
// sends, m x Mt accumulators. Throws CapacityError naming the tensor that does not fit;
// returns the bytes used.
inline std::uint64_t place_gemv_tensors(PeCoord at, const PeConfig& pe, std::uint64_t Mt, std::uint64_t Kt,
                                        std::uint64_t vectors, std::uint64_t acc_bytes) {
  SramPlacement sram(at, pe.sram_bytes);
  const std::string acc = acc_bytes == 2 ? " fp16)" : " fp32)";
  sram.place("W tile " + std::to_string(Mt) + "x" + std::to_string(Kt) + " fp16", Mt * Kt * 2);
  if (vectors == 1) {
    sram.place("x segment (" + std::to_string(Kt) + " fp16)", Kt * 2);
    sram.place("y partial sums (" + std::to_string(Mt) + acc, Mt * acc_bytes);
  } else {
    const std::string mx = std::to_string(vectors) + " x ";
    sram.place("x segments (" + mx + std::to_string(Kt) + " fp16)", vectors * Kt * 2);
    sram.place("y partial sums (" + mx + std::to_string(Mt) + acc, vectors * Mt * acc_bytes);
  }
  return sram.used_bytes();
}

// Per-vector times of one GEMM run (cycles from its start), per PE row of the grid: the
// last sum of vector v final at the row's root, the row's last PE to finish its vector-v
// FMACs; and the last x wavelet of vector v delivered anywhere (0 if nothing is
// multicast). Rows are kept apart because each follows its own period (rows with one
// accumulator more are slower), so the latest row of a short run need not stay the latest.
struct VectorTimes {
  std::uint32_t vectors;
  std::vector<std::uint64_t> sums_final;  // [row * vectors + v]
  std::vector<std::uint64_t> fmacs_done;  // [row * vectors + v]
  std::vector<std::uint64_t> x_delivered;
  VectorTimes(std::uint32_t grid_rows, std::uint32_t n_vectors)
      : vectors(n_vectors),
        sums_final(static_cast<std::size_t>(grid_rows) * n_vectors, 0),
        fmacs_done(static_cast<std::size_t>(grid_rows) * n_vectors, 0),
        x_delivered(n_vectors, 0) {}
  void sum_final(std::uint32_t row, std::uint32_t v, std::uint64_t cycle) {
    std::uint64_t& t = sums_final[static_cast<std::size_t>(row) * vectors + v];
    t = std::max(t, cycle);
  }
  void fmacs(std::uint32_t row, std::uint32_t v, std::uint64_t cycle) {
    std::uint64_t& t = fmacs_done[static_cast<std::size_t>(row) * vectors + v];
    t = std::max(t, cycle);
  }
  void x(std::uint64_t v, std::uint64_t cycle) { x_delivered[v] = std::max(x_delivered[v], cycle); }
};

// Increments compared to call a run periodic.
inline constexpr std::size_t kSteadyStateWindow = 4;

// The common increment of the last kSteadyStateWindow increments of t[0 .. n), or 0
// when they differ (not yet periodic) or n is too small.
inline std::uint64_t steady_period(const std::uint64_t* t, std::size_t n) {
  if (n < kSteadyStateWindow + 1) return 0;
  const std::uint64_t p = t[n - 1] - t[n - 2];
  for (std::size_t i = n - kSteadyStateWindow; i < n; ++i) {
    if (t[i] - t[i - 1] != p) return 0;
  }
  return p;
}

// The latest of each row's time after `rest` more vectors at the row's own period, or 0
// (none) when a row is not periodic yet.
inline bool extend_rows(const std::vector<std::uint64_t>& t, std::uint32_t vectors, std::uint64_t rest,
                        std::uint64_t& latest) {
  latest = 0;
  for (std::size_t row = 0; row * vectors < t.size(); ++row) {
    const std::uint64_t* r = t.data() + row * vectors;
    const std::uint64_t p = steady_period(r, vectors);
    if (p == 0) return false;
    latest = std::max(latest, r[vectors - 1] + rest * p);
  }
  return true;
}

// Runs a GEMM of g.vectors vectors with `run(config, times)` (a fresh fabric each call),
// using GemvConfig::simulated_vectors: when m exceeds it, only that many vectors are
// simulated; if their completion times have become periodic (the pipeline's steady
// state: every vector adds the same p cycles), the other vectors are added at p each, and
// otherwise all m vectors are simulated after all. Exact for the fields that count per
// vector (compute_cycles, wavelet_hops); the times follow their own steady-state periods.
// `sram_at`: the PE whose SRAM placement is checked (the grid's north-west PE).
template <class Run>
GemvResult run_gemm(const GemvConfig& g, const PeConfig& pe, PeCoord sram_at, Run run) {
  if (g.vectors == 0) throw std::invalid_argument("gemv: vectors must be at least 1");
  const std::uint32_t s = g.simulated_vectors;
  if (s != 0 && s < kSteadyStateWindow + 2) {
    throw std::invalid_argument("gemv: simulated_vectors must be 0 (all) or at least " +
                                std::to_string(kSteadyStateWindow + 2));
  }
  if (s == 0 || g.vectors <= s) {
    VectorTimes t(g.grid_rows, g.vectors);
    return run(g, t);
  }
  // The whole GEMM's tensors must fit, not only the simulated part's.
  if (g.grid_rows > 0 && g.grid_cols > 0) {
    place_gemv_tensors(sram_at, pe, (g.rows + g.grid_rows - 1) / g.grid_rows,
                       (g.cols + g.grid_cols - 1) / g.grid_cols, g.vectors, accumulator_bytes(g.accumulate));
  }
  GemvConfig part = g;
  part.vectors = s;
  VectorTimes t(g.grid_rows, s);
  GemvResult r = run(part, t);
  const std::uint64_t rest = g.vectors - s;
  std::uint64_t total = 0;
  std::uint64_t compute_done = 0;
  if (!extend_rows(t.sums_final, s, rest, total) || !extend_rows(t.fmacs_done, s, rest, compute_done)) {
    const double wall = r.wall_seconds;
    VectorTimes all(g.grid_rows, g.vectors);
    r = run(g, all);  // a row is not periodic yet: simulate every vector
    r.wall_seconds += wall;
    return r;
  }
  r.total_cycles = total;
  r.compute_done_cycles = compute_done;
  // The x stream runs ahead of the compute and need not be periodic: extended when it is,
  // else left at the simulated vectors' figure (a lower bound either way).
  const std::uint64_t p_x = r.multicast_cycles > 0 ? steady_period(t.x_delivered.data(), s) : 0;
  r.multicast_cycles += rest * p_x;
  r.reduction_cycles = r.total_cycles - r.compute_done_cycles;
  r.compute_cycles = r.compute_cycles / s * g.vectors;
  r.wavelet_hops = r.wavelet_hops / s * g.vectors;
  r.sram_bytes_per_pe =
      place_gemv_tensors(sram_at, pe, r.tile_rows, r.tile_cols, g.vectors, accumulator_bytes(g.accumulate));
  return r;
}

}  // namespace wse::wafer::detail
