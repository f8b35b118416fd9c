#include "wse_mesh/kernels/vector_kernels.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace wse::wafer {

namespace {

constexpr std::uint64_t kUnknown = UINT64_MAX;
constexpr std::uint32_t kNone = UINT32_MAX;

// One reduce-and-broadcast round of a kernel: every PE's local work `local` (cycles as a
// function of its element count), then `reduce_wavelets` fp32 values summed (or maxed)
// into the root, the root's scalar work `root_cycles`, and `broadcast_wavelets` values
// multicast back along the line. The kernel ends with `final_local` on every PE.
struct Round {
  std::uint64_t reduce_wavelets = 1;
  std::uint64_t root_cycles = 0;
  std::uint64_t broadcast_wavelets = 1;
};

const char* op_name(VectorOp op) {
  switch (op) {
    case VectorOp::kRmsNorm:
      return "rmsnorm";
    case VectorOp::kLayerNorm:
      return "layernorm";
    case VectorOp::kSoftmax:
      return "softmax";
    case VectorOp::kElementwise:
      return "elementwise";
  }
  return "?";
}

// One run of a vector kernel on a line of PEs, in the mapping's steps: the kernel as
// rounds with their local work, the SRAM of the fullest PE, the routes of each round's
// reduction and broadcast, each PE's behaviour as wavelets reach it, and the result.
class VectorKernelRun {
 public:
  VectorKernelRun(Fabric& fabric, const PeConfig& pe, const VectorKernelConfig& v)
      : fabric_(fabric), pe_(pe), v_(v), p_(v.pes), what_(std::string("vector kernel ") + op_name(v.op)) {
    validate(pe);
    check();
    bits_ = 8 * accumulator_bytes(v.dtype);
    const bool fp16 = v.dtype == Accumulate::kFp16;
    mul_simd_ = fp16 ? pe.simd_fp16_fmac : pe.simd_fp32_fmac;      // x * y (+ z) in the storage type
    add_simd_ = fp16 ? pe.simd_fp16_add : pe.simd_fp32_add;        // max, sum in the storage type
    sq_simd_ = fp16 ? pe.simd_fp16_fp32_fmac : pe.simd_fp32_fmac;  // sum of squares, fp32 accumulator
    plan_rounds();
    place_sram();  // throws CapacityError when the fullest PE's share does not fit
    root_ = v.reduction == Reduction::kChain ? p_ - 1 : 0;
  }

  VectorKernelResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    route();
    start_ = fabric_.now();
    init_states();
    fabric_.on_delivery(
        [this](PeCoord at_pe, MessageId msg, std::uint64_t cycle) { deliver(at_pe, msg, cycle); });
    const std::uint64_t hops0 = fabric_.wavelet_hops();
    const std::uint64_t sim0 = fabric_.cycles_simulated();
    start_local_work();
    fabric_.run_until_idle();
    fabric_.on_delivery(nullptr);
    VectorKernelResult res = collect();
    res.wavelet_hops = fabric_.wavelet_hops() - hops0;
    res.fabric_cycles_simulated = fabric_.cycles_simulated() - sim0;
    res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  }

 private:
  enum class Kind : std::uint8_t { kUnused, kReduce, kBroadcast };
  struct PeState {
    std::uint64_t engine_free = 0;
    std::vector<std::uint64_t> own_ready;  // [r * V + vector]: own part of round r's reduction final
    std::vector<std::uint64_t> done;       // [vector]: final local work done
    std::vector<std::vector<std::pair<std::uint64_t, MessageId>>> arrivals;  // [r] waiting wavelets
    std::vector<std::vector<std::pair<MessageId, std::uint64_t>>> streams;   // [r] stream -> next index
    std::vector<std::vector<std::uint32_t>> contributions;                   // [r][wavelet]
    std::vector<std::uint64_t> next_final;
    std::vector<std::uint64_t> broadcast_received;  // [r] wavelets
    std::vector<MessageId> out;                     // [r]
  };

  // --- The kernel, its line and its SRAM ---------------------------------------------
  void check() const {
    const FabricConfig& fc = fabric_.config();
    require_mapped(v_.reduction, {Reduction::kChain, Reduction::kTree}, what_.c_str());
    if (p_ == 0) throw std::invalid_argument(what_ + ": pes must be at least 1");
    if (v_.vectors == 0) throw std::invalid_argument(what_ + ": vectors must be at least 1");
    if (v_.elements < p_) {
      throw std::invalid_argument(what_ + ": " + std::to_string(v_.elements) +
                                  " elements cannot be split over " + std::to_string(p_) + " PEs");
    }
    if (v_.op == VectorOp::kElementwise && v_.ops_per_element == 0) {
      throw std::invalid_argument(what_ + ": ops_per_element must be at least 1");
    }
    if (v_.origin.x + p_ > fc.width || v_.origin.y >= fc.height) {
      throw std::invalid_argument(what_ + ": a line of " + std::to_string(p_) + " PEs at (" +
                                  std::to_string(v_.origin.x) + "," + std::to_string(v_.origin.y) +
                                  ") does not fit the " + std::to_string(fc.width) + " x " +
                                  std::to_string(fc.height) + " fabric");
    }
  }

  std::uint64_t elements_of(std::uint32_t j) const {
    return v_.elements / p_ + (j < v_.elements % p_ ? 1 : 0);
  }

  // The kernel as rounds (docs/wse_mesh.md, "Vector kernels").
  void plan_rounds() {
    switch (v_.op) {
      case VectorOp::kRmsNorm:
        // mean + eps as one multiply-add, then rsqrt.
        rounds_.push_back({1, fp32_scale_cycles(pe_, 1) + rsqrt_cycles(pe_, 1), 1});
        break;
      case VectorOp::kLayerNorm:
        // mean = s / n, var = q / n - mean^2, + eps: three multiply-adds, then rsqrt.
        rounds_.push_back({2, 3 * fp32_scale_cycles(pe_, 1) + rsqrt_cycles(pe_, 1), 2});
        break;
      case VectorOp::kSoftmax:
        rounds_.push_back({1, 0, 1});                          // global max
        rounds_.push_back({1, reciprocal_cycles(pe_, 1), 1});  // 1 / global sum
        break;
      case VectorOp::kElementwise:
        break;
    }
  }

  // Local work of stage `stage` (before round `stage`'s reduction; the last after the
  // last broadcast) over e elements.
  std::uint64_t local(std::size_t stage, std::uint64_t e) const {
    switch (v_.op) {
      case VectorOp::kRmsNorm:
        // sum of x^2 (x read twice, scalar accumulator); then y = (x * scale) * w.
        if (stage == 0) return vector_cycles(pe_, sq_simd_, e, 2 * bits_, 0);
        return vector_cycles(pe_, mul_simd_, e, bits_, bits_) +
               vector_cycles(pe_, mul_simd_, e, 2 * bits_, bits_);
      case VectorOp::kLayerNorm:
        // sum of x and sum of x^2; then t = x * rstd - mean * rstd, y = t * w + bias.
        if (stage == 0)
          return vector_cycles(pe_, add_simd_, e, bits_, 0) + vector_cycles(pe_, sq_simd_, e, 2 * bits_, 0);
        return vector_cycles(pe_, mul_simd_, e, bits_, bits_) +
               vector_cycles(pe_, mul_simd_, e, 3 * bits_, bits_);
      case VectorOp::kSoftmax:
        // max; then exp(x - m) in place and its sum; then y = p * (1 / sum).
        if (stage == 0) return vector_cycles(pe_, add_simd_, e, bits_, 0);
        if (stage == 1) return exp_cycles(pe_, e) + vector_cycles(pe_, pe_.simd_fp32_add, e, 32, 0);
        return vector_cycles(pe_, mul_simd_, e, bits_, bits_);
      case VectorOp::kElementwise:
        // ops_per_element two-operand instructions over the PE's values.
        return v_.ops_per_element * vector_cycles(pe_, mul_simd_, e, 2 * bits_, bits_);
    }
    return 0;
  }

  // SRAM: the fullest PE (the first) holds its share of every vector, and the norm's
  // weight (and LayerNorm's bias).
  void place_sram() const {
    const std::uint64_t e_max = elements_of(0);
    const bool fp16 = v_.dtype == Accumulate::kFp16;
    SramPlacement sram(v_.origin, pe_.sram_bytes);
    const std::string type = fp16 ? " fp16)" : " fp32)";
    sram.place("vector slices (" + std::to_string(v_.vectors) + " x " + std::to_string(e_max) + type,
               v_.vectors * e_max * accumulator_bytes(v_.dtype));
    if (v_.op == VectorOp::kRmsNorm || v_.op == VectorOp::kLayerNorm) {
      sram.place("norm weight (" + std::to_string(e_max) + type, e_max * accumulator_bytes(v_.dtype));
    }
    if (v_.op == VectorOp::kLayerNorm) {
      sram.place("norm bias (" + std::to_string(e_max) + type, e_max * accumulator_bytes(v_.dtype));
    }
  }

  PeCoord at(std::uint32_t j) const { return PeCoord{v_.origin.x + j, v_.origin.y}; }
  Color broadcast_color(std::size_t r) const { return static_cast<Color>(r * (n_red_ + 1) + n_red_); }

  // --- Routes: each round's reduction (chain to the east, tree to the west, as
  // collectives.h) on its own colors, then its broadcast from the root back along the
  // line on one color ----------------------------------------------------------------------
  void route() {
    const std::size_t n_rounds = rounds_.size();
    n_red_ = reduction_colors(v_.reduction, p_);
    const std::uint32_t colors_used = static_cast<std::uint32_t>(n_rounds) * (n_red_ + (p_ > 1 ? 1 : 0));
    if (colors_used > fabric_.config().colors) {
      throw std::invalid_argument(what_ + " over " + std::to_string(p_) + " PEs needs " +
                                  std::to_string(colors_used) + " colors, beyond the " +
                                  std::to_string(fabric_.config().colors) + " colors");
    }
    parent_.assign(p_, kNone);
    n_in_.assign(p_, 0);
    out_color_.assign(n_rounds, std::vector<Color>(p_, 0));
    for (std::size_t r = 0; r < n_rounds && p_ > 1; ++r) {
      const auto base = static_cast<Color>(r * (n_red_ + 1));
      for (std::uint32_t c = 0; c < n_red_; ++c)
        color_role_[base + c] = {Kind::kReduce, static_cast<std::uint32_t>(r)};
      color_role_[broadcast_color(r)] = {Kind::kBroadcast, static_cast<std::uint32_t>(r)};
      route_reduction(r, base);
      route_broadcast(broadcast_color(r));
    }
  }

  void route_reduction(std::size_t r, Color base) {
    auto link = [&](std::uint32_t from, std::uint32_t to, Color c) {
      const Port fwd = to > from ? Port::kEast : Port::kWest;
      const Port back = to > from ? Port::kWest : Port::kEast;
      fabric_.set_route(at(from), c, mask(Port::kRamp), mask(fwd));
      for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
        fabric_.set_route(at(m), c, mask(back), mask(fwd));
      }
      fabric_.set_route(at(to), c, mask(back), mask(Port::kRamp));
      out_color_[r][from] = c;
      if (r == 0) {
        parent_[from] = to;
        ++n_in_[to];
      }
    };
    if (v_.reduction == Reduction::kChain) {
      for (std::uint32_t k = 0; k + 1 < p_; ++k) link(k, k + 1, static_cast<Color>(base + k % 2));
    } else {
      for (std::uint32_t s = 0; (1u << s) < p_; ++s) {
        const std::uint32_t span = 1u << s;
        for (std::uint32_t k = span; k < p_; k += 2 * span) link(k, k - span, static_cast<Color>(base + s));
      }
    }
  }

  // Broadcast: from the root toward the other end, every PE copying to its RAMP.
  void route_broadcast(Color bcast) {
    for (std::uint32_t j = 0; j < p_; ++j) {
      const bool west = root_ == p_ - 1;  // the root is at the east end: send west
      if (j == root_) {
        fabric_.set_route(at(j), bcast, mask(Port::kRamp), mask(west ? Port::kWest : Port::kEast));
      } else {
        const bool end = west ? j == 0 : j + 1 == p_;
        const PortMask tx =
            static_cast<PortMask>(mask(Port::kRamp) | (end ? 0 : mask(west ? Port::kWest : Port::kEast)));
        fabric_.set_route(at(j), bcast, mask(west ? Port::kEast : Port::kWest), tx);
      }
    }
  }

  // --- Each PE's behaviour ------------------------------------------------------------
  void init_states() {
    const std::size_t n_rounds = rounds_.size();
    const std::uint32_t V = v_.vectors;
    st_.resize(p_);
    for (PeState& s : st_) {
      s.own_ready.assign(n_rounds * V, kUnknown);
      s.done.assign(V, kUnknown);
      s.arrivals.resize(n_rounds);
      s.streams.resize(n_rounds);
      s.contributions.resize(n_rounds);
      for (std::size_t r = 0; r < n_rounds; ++r) s.contributions[r].assign(rounds_[r].reduce_wavelets * V, 0);
      s.next_final.assign(n_rounds, 0);
      s.broadcast_received.assign(n_rounds, 0);
      s.out.assign(n_rounds, kNone);
    }
    reduced_at_.assign(n_rounds, 0);
    broadcast_sent_.assign(n_rounds, 0);
    broadcast_last_.assign(n_rounds, 0);
  }

  // Local work after round r's broadcast of vector `vec` (or the root's own after its sum).
  void after_broadcast(std::uint32_t j, std::size_t r, std::uint32_t vec, std::uint64_t usable) {
    PeState& s = st_[j];
    const std::uint64_t cost = local(r + 1, elements_of(j));
    s.engine_free = std::max(usable, s.engine_free) + cost;
    if (j == 0) local_fullest_ += cost;
    if (r + 1 < rounds_.size()) {
      s.own_ready[(r + 1) * v_.vectors + vec] = s.engine_free;
      own_part_ready(j, r + 1, vec);
    } else {
      s.done[vec] = s.engine_free;
    }
  }

  // The root's scalar work on round r's sum of vector `vec`, and its broadcast.
  void root_sum(std::size_t r, std::uint32_t vec) {
    PeState& s = st_[root_];
    s.engine_free += rounds_[r].root_cycles;
    if (vec + 1 == v_.vectors) reduced_at_[r] = s.engine_free;
    if (p_ > 1) {
      if (s.out[r] == kNone) s.out[r] = fabric_.open_message(at(root_), broadcast_color(r));
      fabric_.append_wavelets(s.out[r], static_cast<std::uint32_t>(rounds_[r].broadcast_wavelets),
                              s.engine_free);
      if (vec + 1 == v_.vectors) broadcast_sent_[r] = s.engine_free;
    }
    after_broadcast(root_, r, vec, s.engine_free);
  }

  // Round r's reduction at PE j: adds the waiting wavelets whose own part is final, and
  // sends each completed sum on (or, at the root, finishes the round for that vector).
  void drain(std::uint32_t j, std::size_t r) {
    PeState& s = st_[j];
    const std::uint64_t n = rounds_[r].reduce_wavelets;
    auto& q = s.arrivals[r];
    std::size_t used = 0;
    for (; used < q.size(); ++used) {
      const auto [arrived, msg] = q[used];
      auto stream = std::find_if(s.streams[r].begin(), s.streams[r].end(),
                                 [&wanted = msg](const auto& x) { return x.first == wanted; });
      const std::uint64_t k = stream == s.streams[r].end() ? 0 : stream->second;
      const std::uint64_t own = s.own_ready[r * v_.vectors + k / n];
      if (own == kUnknown) break;  // this PE's own part of that vector is not computed yet
      if (stream == s.streams[r].end()) {
        s.streams[r].emplace_back(msg, 0);
        stream = s.streams[r].end() - 1;
      }
      ++stream->second;
      s.engine_free = std::max({arrived + 1, own, s.engine_free}) + add_cycles(pe_, Accumulate::kFp32, 1);
      if (++s.contributions[r][k] < n_in_[j]) continue;
      if (k != s.next_final[r]++) throw std::logic_error(what_ + ": sums completed out of order");
      if (j == root_) {
        if (k % n == n - 1) root_sum(r, static_cast<std::uint32_t>(k / n));
      } else {
        if (s.out[r] == kNone) s.out[r] = fabric_.open_message(at(j), out_color_[r][j]);
        fabric_.append_wavelets(s.out[r], 1, s.engine_free);
      }
    }
    q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(used));
  }

  void own_part_ready(std::uint32_t j, std::size_t r, std::uint32_t vec) {
    PeState& s = st_[j];
    if (n_in_[j] > 0) {
      drain(j, r);
    } else if (j == root_) {  // one PE: its own part is the sum
      root_sum(r, vec);
    } else {  // a leaf: send its part as soon as it is computed
      if (s.out[r] == kNone) s.out[r] = fabric_.open_message(at(j), out_color_[r][j]);
      fabric_.append_wavelets(s.out[r], static_cast<std::uint32_t>(rounds_[r].reduce_wavelets),
                              s.own_ready[r * v_.vectors + vec]);
    }
  }

  void deliver(PeCoord at_pe, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t j = at_pe.x - v_.origin.x;
    const auto [kind, r] = color_role_[fabric_.message(msg).color];
    PeState& s = st_[j];
    if (kind == Kind::kReduce) {
      s.arrivals[r].emplace_back(cycle, msg);
      drain(j, r);
    } else if (kind == Kind::kBroadcast) {
      const std::uint64_t n = ++s.broadcast_received[r];
      if (n % rounds_[r].broadcast_wavelets != 0) return;
      const auto vec = static_cast<std::uint32_t>(n / rounds_[r].broadcast_wavelets - 1);
      if (vec + 1 == v_.vectors) broadcast_last_[r] = std::max(broadcast_last_[r], cycle + 1);
      after_broadcast(j, r, vec, cycle + 1);
    } else {
      throw std::logic_error(what_ + ": a wavelet of an unknown color reached PE " + std::to_string(j));
    }
  }

  // Every PE first computes its first local stage of all vectors (its data is there),
  // then serves the fabric in arrival order.
  void start_local_work() {
    const std::size_t n_rounds = rounds_.size();
    for (std::uint32_t j = 0; j < p_; ++j) {
      PeState& s = st_[j];
      s.engine_free = start_;
      for (std::uint32_t vec = 0; vec < v_.vectors; ++vec) {
        const std::uint64_t cost = local(0, elements_of(j));
        s.engine_free += cost;
        if (j == 0) local_fullest_ += cost;
        if (n_rounds == 0) {
          s.done[vec] = s.engine_free;
        } else {
          s.own_ready[vec] = s.engine_free;
        }
      }
    }
    for (std::uint32_t vec = 0; vec < v_.vectors && n_rounds > 0; ++vec) {
      for (std::uint32_t j = 0; j < p_; ++j) {
        if (n_in_[j] == 0) own_part_ready(j, 0, vec);
      }
    }
  }

  // --- The result -----------------------------------------------------------------------
  VectorKernelResult collect() const {
    const std::size_t n_rounds = rounds_.size();
    const std::uint32_t V = v_.vectors;
    VectorKernelResult res;
    std::vector<std::uint64_t> last_own(n_rounds, 0);
    for (std::uint32_t j = 0; j < p_; ++j) {
      for (std::uint32_t vec = 0; vec < V; ++vec) {
        if (st_[j].done[vec] == kUnknown) {
          throw std::logic_error(what_ + ": PE " + std::to_string(j) + " never finished vector " +
                                 std::to_string(vec));
        }
        res.total_cycles = std::max(res.total_cycles, st_[j].done[vec] - start_);
      }
      for (std::size_t r = 0; r < n_rounds; ++r)
        last_own[r] = std::max(last_own[r], st_[j].own_ready[r * V + V - 1]);
    }
    for (std::size_t r = 0; r < n_rounds; ++r) {
      res.reduce_cycles += reduced_at_[r] > last_own[r] ? reduced_at_[r] - last_own[r] : 0;
      if (p_ > 1) res.broadcast_cycles += broadcast_last_[r] - broadcast_sent_[r];
    }
    res.local_cycles = local_fullest_;
    return res;
  }

  Fabric& fabric_;
  const PeConfig& pe_;
  const VectorKernelConfig& v_;
  const std::uint32_t p_;  // PEs of the line
  const std::string what_;
  std::uint32_t bits_ = 0;
  std::uint32_t mul_simd_ = 0, add_simd_ = 0, sq_simd_ = 0;
  std::vector<Round> rounds_;
  std::uint32_t root_ = 0;
  std::uint32_t n_red_ = 0;  // colors of one round's reduction
  std::vector<std::uint32_t> parent_, n_in_;
  std::vector<std::vector<Color>> out_color_;  // [round][PE]
  std::array<std::pair<Kind, std::uint32_t>, 32> color_role_{};
  std::vector<PeState> st_;
  std::uint64_t start_ = 0;
  // Critical-path bookkeeping of the last vector.
  std::vector<std::uint64_t> reduced_at_, broadcast_sent_, broadcast_last_;
  std::uint64_t local_fullest_ = 0;
};

}  // namespace

VectorKernelResult run_vector_kernel(Fabric& fabric, const PeConfig& pe, const VectorKernelConfig& v) {
  return VectorKernelRun(fabric, pe, v).run();
}

VectorKernelResult run_vector_kernel(const FabricConfig& fc, const PeConfig& pe,
                                     const VectorKernelConfig& v) {
  FabricConfig sized = fc;
  sized.width = v.origin.x + v.pes;
  sized.height = v.origin.y + 1;
  Fabric fabric(sized);
  return run_vector_kernel(fabric, pe, v);
}

}  // namespace wse::wafer
