#include "wse_mesh/kernels/vector_kernels.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
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

}  // namespace

VectorKernelResult run_vector_kernel(Fabric& fabric, const PeConfig& pe, const VectorKernelConfig& v) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(pe);
  const FabricConfig& fc = fabric.config();
  const std::uint32_t p = v.pes;
  const std::string what = std::string("vector kernel ") + op_name(v.op);
  require_mapped(v.reduction, {Reduction::kChain, Reduction::kTree}, what.c_str());
  if (p == 0) throw std::invalid_argument(what + ": pes must be at least 1");
  if (v.vectors == 0) throw std::invalid_argument(what + ": vectors must be at least 1");
  if (v.elements < p) {
    throw std::invalid_argument(what + ": " + std::to_string(v.elements) + " elements cannot be split over " +
                                std::to_string(p) + " PEs");
  }
  if (v.op == VectorOp::kElementwise && v.ops_per_element == 0) {
    throw std::invalid_argument(what + ": ops_per_element must be at least 1");
  }
  if (v.origin.x + p > fc.width || v.origin.y >= fc.height) {
    throw std::invalid_argument(what + ": a line of " + std::to_string(p) + " PEs at (" + std::to_string(v.origin.x) +
                                "," + std::to_string(v.origin.y) + ") does not fit the " + std::to_string(fc.width) +
                                " x " + std::to_string(fc.height) + " fabric");
  }
  auto elements_of = [&](std::uint32_t j) { return v.elements / p + (j < v.elements % p ? 1 : 0); };
  const std::uint64_t e_max = elements_of(0);
  const std::uint32_t bits = 8 * accumulator_bytes(v.dtype);
  const bool fp16 = v.dtype == Accumulate::kFp16;
  const std::uint32_t mul_simd = fp16 ? pe.simd_fp16_fmac : pe.simd_fp32_fmac;   // x * y (+ z) in the storage type
  const std::uint32_t add_simd = fp16 ? pe.simd_fp16_add : pe.simd_fp32_add;     // max, sum in the storage type
  const std::uint32_t sq_simd = fp16 ? pe.simd_fp16_fp32_fmac : pe.simd_fp32_fmac;  // sum of squares, fp32 accumulator

  // The kernel as rounds (docs/wse_mesh.md, "Vector kernels").
  std::vector<Round> rounds;
  auto local = [&](std::size_t stage, std::uint64_t e) -> std::uint64_t {
    switch (v.op) {
      case VectorOp::kRmsNorm:
        // sum of x^2 (x read twice, scalar accumulator); then y = (x * scale) * w.
        if (stage == 0) return vector_cycles(pe, sq_simd, e, 2 * bits, 0);
        return vector_cycles(pe, mul_simd, e, bits, bits) + vector_cycles(pe, mul_simd, e, 2 * bits, bits);
      case VectorOp::kLayerNorm:
        // sum of x and sum of x^2; then t = x * rstd - mean * rstd, y = t * w + bias.
        if (stage == 0) return vector_cycles(pe, add_simd, e, bits, 0) + vector_cycles(pe, sq_simd, e, 2 * bits, 0);
        return vector_cycles(pe, mul_simd, e, bits, bits) + vector_cycles(pe, mul_simd, e, 3 * bits, bits);
      case VectorOp::kSoftmax:
        // max; then exp(x - m) in place and its sum; then y = p * (1 / sum).
        if (stage == 0) return vector_cycles(pe, add_simd, e, bits, 0);
        if (stage == 1) return exp_cycles(pe, e) + vector_cycles(pe, pe.simd_fp32_add, e, 32, 0);
        return vector_cycles(pe, mul_simd, e, bits, bits);
      case VectorOp::kElementwise:
        // ops_per_element two-operand instructions over the PE's values.
        return v.ops_per_element * vector_cycles(pe, mul_simd, e, 2 * bits, bits);
    }
    return 0;
  };
  switch (v.op) {
    case VectorOp::kRmsNorm:
      // mean + eps as one multiply-add, then rsqrt.
      rounds.push_back({1, fp32_scale_cycles(pe, 1) + rsqrt_cycles(pe, 1), 1});
      break;
    case VectorOp::kLayerNorm:
      // mean = s / n, var = q / n - mean^2, + eps: three multiply-adds, then rsqrt.
      rounds.push_back({2, 3 * fp32_scale_cycles(pe, 1) + rsqrt_cycles(pe, 1), 2});
      break;
    case VectorOp::kSoftmax:
      rounds.push_back({1, 0, 1});                          // global max
      rounds.push_back({1, reciprocal_cycles(pe, 1), 1});  // 1 / global sum
      break;
    case VectorOp::kElementwise:
      break;
  }
  const std::size_t n_rounds = rounds.size();
  const std::uint32_t V = v.vectors;

  // SRAM: the fullest PE (the first) holds its share of every vector, and the norm's
  // weight (and LayerNorm's bias).
  SramPlacement sram(v.origin, pe.sram_bytes);
  const std::string type = fp16 ? " fp16)" : " fp32)";
  sram.place("vector slices (" + std::to_string(V) + " x " + std::to_string(e_max) + type,
             V * e_max * accumulator_bytes(v.dtype));
  if (v.op == VectorOp::kRmsNorm || v.op == VectorOp::kLayerNorm) {
    sram.place("norm weight (" + std::to_string(e_max) + type, e_max * accumulator_bytes(v.dtype));
  }
  if (v.op == VectorOp::kLayerNorm) {
    sram.place("norm bias (" + std::to_string(e_max) + type, e_max * accumulator_bytes(v.dtype));
  }

  // Routes: each round's reduction (chain to the east, tree to the west, as collectives.h)
  // on its own colors, then its broadcast from the root back along the line on one color.
  const std::uint32_t n_red = reduction_colors(v.reduction, p);
  const std::uint32_t colors_used = static_cast<std::uint32_t>(n_rounds) * (n_red + (p > 1 ? 1 : 0));
  if (colors_used > fc.colors) {
    throw std::invalid_argument(what + " over " + std::to_string(p) + " PEs needs " + std::to_string(colors_used) +
                                " colors, beyond the " + std::to_string(fc.colors) + " colors");
  }
  const std::uint32_t root = v.reduction == Reduction::kChain ? p - 1 : 0;
  std::vector<std::uint32_t> parent(p, kNone), n_in(p, 0);
  std::vector<std::vector<Color>> out_color(n_rounds, std::vector<Color>(p, 0));
  enum class Kind : std::uint8_t { kNone, kReduce, kBroadcast };
  std::array<std::pair<Kind, std::uint32_t>, 32> color_role{};
  auto at = [&](std::uint32_t j) { return PeCoord{v.origin.x + j, v.origin.y}; };
  for (std::size_t r = 0; r < n_rounds && p > 1; ++r) {
    const auto base = static_cast<Color>(r * (n_red + 1));
    const auto bcast = static_cast<Color>(base + n_red);
    for (std::uint32_t c = 0; c < n_red; ++c) color_role[base + c] = {Kind::kReduce, static_cast<std::uint32_t>(r)};
    color_role[bcast] = {Kind::kBroadcast, static_cast<std::uint32_t>(r)};
    auto link = [&](std::uint32_t from, std::uint32_t to, Color c) {
      const Port fwd = to > from ? Port::kEast : Port::kWest;
      const Port back = to > from ? Port::kWest : Port::kEast;
      fabric.set_route(at(from), c, mask(Port::kRamp), mask(fwd));
      for (std::uint32_t m = std::min(from, to) + 1; m < std::max(from, to); ++m) {
        fabric.set_route(at(m), c, mask(back), mask(fwd));
      }
      fabric.set_route(at(to), c, mask(back), mask(Port::kRamp));
      out_color[r][from] = c;
      if (r == 0) {
        parent[from] = to;
        ++n_in[to];
      }
    };
    if (v.reduction == Reduction::kChain) {
      for (std::uint32_t k = 0; k + 1 < p; ++k) link(k, k + 1, static_cast<Color>(base + k % 2));
    } else {
      for (std::uint32_t s = 0; (1u << s) < p; ++s) {
        const std::uint32_t span = 1u << s;
        for (std::uint32_t k = span; k < p; k += 2 * span) link(k, k - span, static_cast<Color>(base + s));
      }
    }
    // Broadcast: from the root toward the other end, every PE copying to its RAMP.
    for (std::uint32_t j = 0; j < p; ++j) {
      const bool west = root == p - 1;  // the root is at the east end: send west
      if (j == root) {
        fabric.set_route(at(j), bcast, mask(Port::kRamp), mask(west ? Port::kWest : Port::kEast));
      } else {
        const bool end = west ? j == 0 : j + 1 == p;
        const PortMask tx = static_cast<PortMask>(mask(Port::kRamp) | (end ? 0 : mask(west ? Port::kWest : Port::kEast)));
        fabric.set_route(at(j), bcast, mask(west ? Port::kEast : Port::kWest), tx);
      }
    }
  }

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
  std::vector<PeState> st(p);
  const std::uint64_t start = fabric.now();
  for (std::uint32_t j = 0; j < p; ++j) {
    PeState& s = st[j];
    s.own_ready.assign(n_rounds * V, kUnknown);
    s.done.assign(V, kUnknown);
    s.arrivals.resize(n_rounds);
    s.streams.resize(n_rounds);
    s.contributions.resize(n_rounds);
    for (std::size_t r = 0; r < n_rounds; ++r) s.contributions[r].assign(rounds[r].reduce_wavelets * V, 0);
    s.next_final.assign(n_rounds, 0);
    s.broadcast_received.assign(n_rounds, 0);
    s.out.assign(n_rounds, kNone);
  }
  // Critical-path bookkeeping of the last vector.
  std::vector<std::uint64_t> reduced_at(n_rounds, 0), broadcast_sent(n_rounds, 0), broadcast_last(n_rounds, 0);
  std::uint64_t local_fullest = 0;

  // Round r's reduction at PE j: adds the waiting wavelets whose own part is final, and
  // sends each completed sum on (or, at the root, finishes the round for that vector).
  std::function<void(std::uint32_t, std::size_t)> drain;
  std::function<void(std::uint32_t, std::size_t, std::uint32_t)> own_part_ready;
  // Local work after round r's broadcast of vector `vec` (or the root's own after its sum).
  auto after_broadcast = [&](std::uint32_t j, std::size_t r, std::uint32_t vec, std::uint64_t usable) {
    PeState& s = st[j];
    const std::uint64_t cost = local(r + 1, elements_of(j));
    s.engine_free = std::max(usable, s.engine_free) + cost;
    if (j == 0) local_fullest += cost;
    if (r + 1 < n_rounds) {
      s.own_ready[(r + 1) * V + vec] = s.engine_free;
      own_part_ready(j, r + 1, vec);
    } else {
      s.done[vec] = s.engine_free;
    }
  };
  auto root_sum = [&](std::size_t r, std::uint32_t vec) {
    PeState& s = st[root];
    s.engine_free += rounds[r].root_cycles;
    if (vec + 1 == V) reduced_at[r] = s.engine_free;
    if (p > 1) {
      if (s.out[r] == kNone) s.out[r] = fabric.open_message(at(root), static_cast<Color>(r * (n_red + 1) + n_red));
      fabric.append_wavelets(s.out[r], static_cast<std::uint32_t>(rounds[r].broadcast_wavelets), s.engine_free);
      if (vec + 1 == V) broadcast_sent[r] = s.engine_free;
    }
    after_broadcast(root, r, vec, s.engine_free);
  };
  drain = [&](std::uint32_t j, std::size_t r) {
    PeState& s = st[j];
    const std::uint64_t n = rounds[r].reduce_wavelets;
    auto& q = s.arrivals[r];
    std::size_t used = 0;
    for (; used < q.size(); ++used) {
      const auto [arrived, msg] = q[used];
      auto stream =
          std::find_if(s.streams[r].begin(), s.streams[r].end(), [&wanted = msg](const auto& x) { return x.first == wanted; });
      const std::uint64_t k = stream == s.streams[r].end() ? 0 : stream->second;
      const std::uint64_t own = s.own_ready[r * V + k / n];
      if (own == kUnknown) break;  // this PE's own part of that vector is not computed yet
      if (stream == s.streams[r].end()) {
        s.streams[r].emplace_back(msg, 0);
        stream = s.streams[r].end() - 1;
      }
      ++stream->second;
      s.engine_free = std::max({arrived + 1, own, s.engine_free}) + add_cycles(pe, Accumulate::kFp32, 1);
      if (++s.contributions[r][k] < n_in[j]) continue;
      if (k != s.next_final[r]++) throw std::logic_error(what + ": sums completed out of order");
      if (j == root) {
        if (k % n == n - 1) root_sum(r, static_cast<std::uint32_t>(k / n));
      } else {
        if (s.out[r] == kNone) s.out[r] = fabric.open_message(at(j), out_color[r][j]);
        fabric.append_wavelets(s.out[r], 1, s.engine_free);
      }
    }
    q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(used));
  };
  own_part_ready = [&](std::uint32_t j, std::size_t r, std::uint32_t vec) {
    PeState& s = st[j];
    if (n_in[j] > 0) {
      drain(j, r);
    } else if (j == root) {  // one PE: its own part is the sum
      root_sum(r, vec);
    } else {  // a leaf: send its part as soon as it is computed
      if (s.out[r] == kNone) s.out[r] = fabric.open_message(at(j), out_color[r][j]);
      fabric.append_wavelets(s.out[r], static_cast<std::uint32_t>(rounds[r].reduce_wavelets), s.own_ready[r * V + vec]);
    }
  };

  fabric.on_delivery([&](PeCoord at_pe, MessageId msg, std::uint64_t cycle) {
    const std::uint32_t j = at_pe.x - v.origin.x;
    const auto [kind, r] = color_role[fabric.message(msg).color];
    PeState& s = st[j];
    if (kind == Kind::kReduce) {
      s.arrivals[r].emplace_back(cycle, msg);
      drain(j, r);
    } else if (kind == Kind::kBroadcast) {
      const std::uint64_t n = ++s.broadcast_received[r];
      if (n % rounds[r].broadcast_wavelets != 0) return;
      const auto vec = static_cast<std::uint32_t>(n / rounds[r].broadcast_wavelets - 1);
      if (vec + 1 == V) broadcast_last[r] = std::max(broadcast_last[r], cycle + 1);
      after_broadcast(j, r, vec, cycle + 1);
    } else {
      throw std::logic_error(what + ": a wavelet of an unknown color reached PE " + std::to_string(j));
    }
  });

  const std::uint64_t hops0 = fabric.wavelet_hops();
  const std::uint64_t sim0 = fabric.cycles_simulated();
  // Every PE first computes its first local stage of all vectors (its data is there),
  // then serves the fabric in arrival order.
  for (std::uint32_t j = 0; j < p; ++j) {
    PeState& s = st[j];
    s.engine_free = start;
    for (std::uint32_t vec = 0; vec < V; ++vec) {
      const std::uint64_t cost = local(0, elements_of(j));
      s.engine_free += cost;
      if (j == 0) local_fullest += cost;
      if (n_rounds == 0) {
        s.done[vec] = s.engine_free;
      } else {
        s.own_ready[vec] = s.engine_free;
      }
    }
  }
  for (std::uint32_t vec = 0; vec < V && n_rounds > 0; ++vec) {
    for (std::uint32_t j = 0; j < p; ++j) {
      if (n_in[j] == 0) own_part_ready(j, 0, vec);
    }
  }
  fabric.run_until_idle();
  fabric.on_delivery(nullptr);

  VectorKernelResult res;
  std::vector<std::uint64_t> last_own(n_rounds, 0);
  for (std::uint32_t j = 0; j < p; ++j) {
    for (std::uint32_t vec = 0; vec < V; ++vec) {
      if (st[j].done[vec] == kUnknown) {
        throw std::logic_error(what + ": PE " + std::to_string(j) + " never finished vector " + std::to_string(vec));
      }
      res.total_cycles = std::max(res.total_cycles, st[j].done[vec] - start);
    }
    for (std::size_t r = 0; r < n_rounds; ++r) last_own[r] = std::max(last_own[r], st[j].own_ready[r * V + V - 1]);
  }
  for (std::size_t r = 0; r < n_rounds; ++r) {
    res.reduce_cycles += reduced_at[r] > last_own[r] ? reduced_at[r] - last_own[r] : 0;
    if (p > 1) res.broadcast_cycles += broadcast_last[r] - broadcast_sent[r];
  }
  res.local_cycles = local_fullest;
  res.wavelet_hops = fabric.wavelet_hops() - hops0;
  res.fabric_cycles_simulated = fabric.cycles_simulated() - sim0;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

VectorKernelResult run_vector_kernel(const FabricConfig& fc, const PeConfig& pe, const VectorKernelConfig& v) {
  FabricConfig sized = fc;
  sized.width = v.origin.x + v.pes;
  sized.height = v.origin.y + 1;
  Fabric fabric(sized);
  return run_vector_kernel(fabric, pe, v);
}

}  // namespace wse::wafer
