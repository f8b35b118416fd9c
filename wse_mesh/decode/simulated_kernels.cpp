#include "wse_mesh/decode/simulated_kernels.h"

#include "systemc_models/sim/key_writer.h"

#include <cmath>

#include <algorithm>
#include <bit>
#include <limits>
#include <optional>
#include <stdexcept>

#include "systemc_models/units/integer.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

namespace {

using workloads::Operator;
using workloads::OpKind;

std::uint32_t to_u32(std::uint64_t v, const char* what) {
  if (v > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument(std::string("decode: ") + what + " " + std::to_string(v) +
                                " exceeds 32 bits");
  }
  return static_cast<std::uint32_t>(v);
}

std::uint64_t distance(PeCoord a, PeCoord b) {
  const auto d = [](std::uint32_t u, std::uint32_t v) { return u > v ? u - v : v - u; };
  return std::uint64_t{d(a.x, b.x)} + d(a.y, b.y);
}

}  // namespace

std::uint64_t gemv_root_engine_floor(const PeConfig& pe, const GemvConfig& c) {
  if (c.grid_rows == 0 || c.grid_cols == 0) return 0;
  const std::uint64_t mt = ceil_div(c.rows, c.grid_rows);  // the first PE row's tiles
  const std::uint64_t kt = c.cols / c.grid_cols;           // the narrowest tile
  const std::uint64_t per = 4 / accumulator_bytes(c.accumulate);
  std::uint64_t adds = 0;  // one stream of this row's sums, wavelet by wavelet
  for (std::uint64_t w = 0; w * per < mt; ++w)
    adds += add_cycles(pe, c.accumulate, std::min(per, mt - w * per));
  const std::uint64_t streams = c.grid_cols <= 1                  ? 0
                                : c.reduction == Reduction::kTree ? tree_rounds(c.grid_cols)
                                                                  : 1;
  return std::uint64_t{c.vectors} * (kt * fmac_cycles(pe, c.accumulate, mt) + streams * adds);
}

SimulatedKernels::SimulatedKernels(const WaferConfig& wafer, const SimulatedKernelOptions& opt,
                                   KernelCache& cache)
    : wafer_(wafer), opt_(opt), cache_(cache) {}

std::uint64_t SimulatedKernels::message_cycles(std::uint64_t hops, std::uint64_t wavelets) const {
  return hops * wafer_.fabric.hop_latency_cycles + wavelets + 2ULL * wafer_.fabric.ramp_latency_cycles;
}

KernelTiming SimulatedKernels::time(const Operator& op, const LayerPlan& layer) {
  switch (op.kind) {
    case OpKind::gemm:
      return gemm(op, layer);
    case OpKind::attention:
      return attention(op, layer);
    case OpKind::embedding:
      return embedding(op, layer);
    case OpKind::norm:
    case OpKind::router:
    case OpKind::rope:
    case OpKind::activation:
    case OpKind::residual_add:
    case OpKind::expert_combine:
      return vector(op, layer);
  }
  throw std::logic_error("SimulatedKernels: unknown operator kind");
}

GemvConfig SimulatedKernels::gemv_config(const Operator& op, const LayerPlan& layer) const {
  GridShape g;
  std::uint64_t rows = op.n;
  const TensorGrid* t = layer.grid(op.name);
  if (t != nullptr && !t->members.empty() && t->cols == op.k) {
    // A fused grid (q, k, v; gate, up): one GEMV over all its members' rows.
    g = t->grid;
    rows = t->rows;
  } else if (t != nullptr && t->rows == op.n && t->cols == op.k) {
    g = t->grid;
  } else if (t != nullptr && t->cols == op.k && op.count == 1 && t->copies > 1 &&
             t->rows * t->copies >= op.n) {
    // A tensor cut by rows into slices (LM head): the slices compute at once; time one.
    g = t->grid;
    rows = t->rows;
  } else {
    // No placed tensor of this shape (MLA's absorbed per-head products): the auto grid.
    const PlacementOptions& p = opt_.placement;
    const auto share =
        static_cast<std::uint64_t>(p.weight_sram_share * static_cast<double>(wafer_.pe.sram_bytes));
    const std::uint64_t budget = std::min(share, wafer_.pe.sram_bytes - p.reserved_sram_bytes);
    g = smallest_grid(op.n, op.k, op.weight_dtype, budget, wafer_.height, wafer_.width, p.gemm_vectors);
    if (g.is_auto()) {
      throw CapacityError("decode: layer " + std::to_string(op.layer) + " GEMM '" + op.name + "' (" +
                              std::to_string(op.n) + " x " + std::to_string(op.k) + ") has no grid on " +
                              wafer_.name,
                          0);
    }
  }
  GemvConfig c;
  c.rows = rows;
  c.cols = op.k;
  c.grid_rows = g.rows;
  c.grid_cols = g.cols;
  c.accumulate = opt_.accumulate;
  c.reduction = opt_.reduction_auto ? Reduction::kChain : opt_.reduction;  // auto: fastest_gemv tries each
  // A pass carries at most gemm_vectors tokens (what the weight PEs buffer).
  c.vectors = to_u32(std::min<std::uint64_t>(op.m, opt_.placement.gemm_vectors), "GEMM vectors");
  return c;
}

KernelTiming SimulatedKernels::gemm(const Operator& op, const LayerPlan& layer) {
  const GemvConfig full = gemv_config(op, layer);
  PeConfig pe = wafer_.pe;
  // Narrower weights pack more values per PE than the fp16 kernel assumes: widen its
  // SRAM by the packing factor so that its capacity check sees the placed tile.
  const double bits = workloads::bits_per_value(op.weight_dtype);
  if (bits < 16.0)
    pe.sram_bytes = static_cast<std::uint64_t>(static_cast<double>(pe.sram_bytes) * 16.0 / bits);
  const std::uint32_t k = wafer_.tile;
  const TensorGrid* placed = layer.grid(op.name);
  // Instances at once on their own grids: experts (count), or the slices of a tensor
  // cut by rows.
  const std::uint64_t instances = std::uint64_t{op.count} * ceil_div(op.n, full.rows);
  KernelTiming t;
  // m > 1 tokens: the weight-stationary Cannon GEMM when it is the faster (auto) or asked
  // for, and its buffers fit beside the weights.
  const GemmAlgorithm algo = opt_.gemm_algorithm;
  bool cannon = false;
  GemmCannonResult cr;
  if (op.m > 1 && algo != GemmAlgorithm::kGemv) {
    try {
      cr = fastest_cannon(full, op.m, placed, layer, pe);
      cannon = true;
    } catch (const CapacityError&) {
    } catch (const std::invalid_argument&) {
    }
  }
  if (!cannon || algo == GemmAlgorithm::kAuto) {
    const auto run = [&](const GemvConfig& c) { return fastest_gemv(c, placed, pe); };
    // m tokens in passes of `full.vectors`, one after another on the grid.
    const std::uint64_t passes = op.m / full.vectors;
    const std::uint64_t rest = op.m % full.vectors;
    const auto add = [&](const GemvConfig& c, std::uint64_t times) {
      const GemvResult g = run(c);
      t.cycles += times * g.total_cycles;
      t.link_cycles += times * instances * g.wavelet_hops * k;  // a tiled hop crosses k PE links
      t.pe_busy_cycles += times * instances * g.compute_cycles * c.grid_rows * c.grid_cols;
    };
    if (passes > 0) add(full, passes);
    if (rest > 0) {
      GemvConfig c = full;
      c.vectors = static_cast<std::uint32_t>(rest);
      add(c, 1);
    }
  }
  if (cannon && (algo == GemmAlgorithm::kCannon || cr.total_cycles < t.cycles)) {
    t.cycles = cr.total_cycles;
    t.link_cycles = instances * cr.wavelet_hops;  // counted in PE links at either fidelity
    t.pe_busy_cycles = instances * cr.busy_cycles;
  } else {
    cannon = false;
  }
  if (op.m > 1) {
    const std::string key = std::to_string(full.rows) + "x" + std::to_string(full.cols) + " on " +
                            std::to_string(full.grid_rows) + "x" + std::to_string(full.grid_cols) + " m " +
                            std::to_string(op.m);
    algorithm_[key] = cannon ? "cannon" : "gemv";
    ++choices_version_;
    if (placed != nullptr) {
      if (cannon) {
        cannon_outputs_.insert({placed, op.m});
      } else {
        cannon_outputs_.erase({placed, op.m});  // the hand-off is the GEMV's again (an ablation)
      }
    }
  }
  // Per multiply-accumulate: the fp16 weight and the accumulator read, the accumulator
  // written (pe.h: fmac_cycles). A fused grid computes all its members' rows.
  const std::uint64_t acc = accumulator_bytes(full.accumulate);
  const std::uint64_t rows = placed != nullptr && !placed->members.empty() ? placed->rows : op.n;
  const std::uint64_t macs = std::uint64_t{op.count} * op.m * rows * op.k;
  t.sram_read_bytes = macs * (2 + acc);
  t.sram_write_bytes = macs * acc;
  return t;
}

GemmCannonResult SimulatedKernels::fastest_cannon(const GemvConfig& c, std::uint64_t tokens,
                                                  const TensorGrid* t, const LayerPlan& layer,
                                                  const PeConfig& pe) {
  // SRAM a weight PE has for the blocks and outputs beside its weights: spread, the share
  // of the region its layer's weights leave (what the KV cache otherwise takes); packed
  // (or an unplaced GEMM), its SRAM less the reserve and its grid's placed bytes.
  std::uint64_t budget = 0;
  const std::uint64_t reserve = std::min(wafer_.pe.sram_bytes, opt_.placement.reserved_sram_bytes);
  if (layer.spread && t != nullptr && !t->area.is_auto()) {
    const std::uint64_t pes = std::uint64_t{layer.region.width} * layer.region.height;
    budget = pes > 0 ? layer.region.kv_capacity_bytes / pes : 0;
  } else {
    const std::uint64_t held =
        t != nullptr ? t->pe_bytes : ceil_div(c.rows, c.grid_rows) * ceil_div(c.cols, c.grid_cols) * 2;
    budget = wafer_.pe.sram_bytes - reserve - std::min(wafer_.pe.sram_bytes - reserve, held);
  }
  if (budget == 0) {
    throw CapacityError("decode: no SRAM beside the weights of a " + std::to_string(c.rows) + " x " +
                            std::to_string(c.cols) + " GEMM for Cannon's blocks",
                        1);
  }
  GemmCannonConfig g;
  g.rows = c.rows;
  g.cols = c.cols;
  g.tokens = tokens;
  g.grid_rows = c.grid_rows;
  g.grid_cols = c.grid_cols;
  g.accumulate = c.accumulate;
  g.buffer_bytes = budget;
  std::vector<GemmCannonConfig> grids = {g};
  if (t != nullptr && !t->turned.is_auto() && t->turned != t->grid) {
    g.grid_rows = t->turned.rows;
    g.grid_cols = t->turned.cols;
    grids.push_back(g);
  }
  // Fewer tokens than a ring has PEs: also split K into G rings of Q / G (G dividing Q),
  // the smallest G with rings of at most m / 2 and of at most m / 4 PEs (two or four
  // tokens a block, enough to hide a shift behind the FMACs).
  std::vector<GemmCannonConfig> shapes;
  for (const GemmCannonConfig& x : grids) {
    shapes.push_back(x);
    for (std::uint64_t per : {2, 4}) {
      if (tokens >= std::uint64_t{x.grid_cols} * per) continue;
      for (std::uint32_t groups = 2; groups <= x.grid_cols; ++groups) {
        if (x.grid_cols % groups == 0 &&
            std::uint64_t{x.grid_cols / groups} * per <= std::max<std::uint64_t>(tokens, per)) {
          GemmCannonConfig split = x;
          split.groups = groups;
          if (split.groups != shapes.back().groups) shapes.push_back(split);
          break;
        }
      }
    }
  }
  bool found = false;
  GemmCannonResult best;
  std::string misfit;
  for (const GemmCannonConfig& x : shapes) {
    // A shape whose buffers did not fit is not tried again (nor counted as simulated).
    const std::string key = KernelCache::key(wafer_.fabric, wafer_.tile, pe, x);
    if (cannon_misfits_.count(key) > 0) continue;
    try {
      const GemmCannonResult r = cache_.gemm_cannon(wafer_.fabric, wafer_.tile, pe, x);
      if (!found || r.total_cycles < best.total_cycles) best = r;
      found = true;
    } catch (const CapacityError& e) {
      cannon_misfits_.insert(key);
      misfit = e.what();
    }
  }
  if (!found) {
    throw CapacityError("decode: the Cannon GEMM of " + std::to_string(c.rows) + " x " +
                            std::to_string(c.cols) + " does not fit beside the weights" +
                            (misfit.empty() ? "" : ": " + misfit),
                        1);
  }
  return best;
}

std::map<std::string, std::uint64_t> SimulatedKernels::gemm_algorithms_chosen() const {
  std::map<std::string, std::uint64_t> n;
  for (const auto& [kernel, algo] : algorithm_) ++n[algo];
  return n;
}

GemvResult SimulatedKernels::fastest_gemv(const GemvConfig& c, const TensorGrid* t, const PeConfig& pe) {
  const std::uint32_t k = wafer_.tile;
  const auto run = [&](const GemvConfig& x) {
    return k > 1 ? cache_.gemv_tiled(wafer_.fabric, k, pe, x) : cache_.gemv(wafer_.fabric, pe, x);
  };
  std::vector<GemvConfig> shapes = {c};
  if (t != nullptr && !t->turned.is_auto() && t->turned != t->grid) {
    // Spread: the kernel may run the tile grid turned (placement.h, TensorGrid::turned).
    GemvConfig turned = c;
    turned.grid_rows = t->turned.rows;
    turned.grid_cols = t->turned.cols;
    shapes.push_back(turned);
  }
  std::vector<Reduction> reductions = {c.reduction};
  if (opt_.reduction_auto) reductions = {Reduction::kChain, Reduction::kTree, Reduction::kKTree};
  // The choice (orientation, reduction) made for a matrix on a grid is reused for the
  // same matrix on grids within a quarter octave of it on both sides (layers whose regions
  // differ by a few rows): only the chosen run is simulated for them. Off with kernel
  // reuse, and whenever that run does not go through.
  const auto bucket = [](std::uint32_t side) {
    return static_cast<std::uint64_t>(
        std::floor(4.0 * std::log2(static_cast<double>(std::max<std::uint32_t>(1, side)))));
  };
  const std::string family =
      std::to_string(c.rows) + "x" + std::to_string(c.cols) + " m" + std::to_string(c.vectors) + " a" +
      std::to_string(static_cast<int>(c.accumulate)) + " b" + std::to_string(bucket(c.grid_rows)) + "," +
      std::to_string(bucket(c.grid_cols)) + " s" + std::to_string(shapes.size());
  if (cache_.enabled() && shapes.size() * reductions.size() > 1) {
    const auto it = choice_.find(family);
    if (it != choice_.end() && it->second.first < shapes.size()) {
      GemvConfig x = shapes[it->second.first];
      x.reduction = it->second.second;
      try {
        return run(x);
      } catch (const std::invalid_argument&) {
      } catch (const CapacityError&) {
      }
    }
  }
  // The search skips a candidate whose root-engine floor (gemv_root_engine_floor) cannot
  // beat the best result found so far: the choice is the one trying every candidate would
  // make, ties included (the earlier orientation, then chain before tree before K-tree).
  const auto attempt = [&](const GemvConfig& x) -> std::optional<GemvResult> {
    try {
      return run(x);
    } catch (const std::invalid_argument&) {
      return std::nullopt;  // a reduction not mapped at this fidelity or for this grid
    } catch (const CapacityError&) {
      return std::nullopt;  // buffers that do not fit in this orientation
    }
  };
  // Two orientations: the tree (the usual winner on spread grids) picks the orientation,
  // then the other reductions run on that one only (4 runs at most, not 6).
  std::size_t only_shape = shapes.size();
  std::optional<GemvResult> tree_on[2];
  if (shapes.size() == 2 && reductions.size() > 1) {
    GemvConfig x[2] = {shapes[0], shapes[1]};
    std::uint64_t floor[2], cycles[2] = {UINT64_MAX, UINT64_MAX};
    for (std::size_t i = 0; i < 2; ++i) {
      x[i].reduction = Reduction::kTree;
      floor[i] = gemv_root_engine_floor(pe, x[i]);
    }
    const std::size_t first = floor[1] < floor[0] ? 1 : 0, second = 1 - first;
    tree_on[first] = attempt(x[first]);
    if (tree_on[first]) cycles[first] = tree_on[first]->total_cycles;
    // The second wins only by fewer cycles if it is shape 1, by as many if it is shape 0.
    const bool can_win = second == 1 ? floor[1] < cycles[first] : floor[0] <= cycles[first];
    if (can_win) tree_on[second] = attempt(x[second]);
    if (tree_on[second]) cycles[second] = tree_on[second]->total_cycles;
    if (cycles[0] != UINT64_MAX || cycles[1] != UINT64_MAX) only_shape = cycles[1] < cycles[0] ? 1 : 0;
  }
  GemvResult best;
  std::optional<GemvConfig> best_cfg;
  std::size_t best_rank = 0;  // the candidate's place in the order of trying every one
  for (std::size_t si = 0; si < shapes.size(); ++si) {
    if (only_shape < shapes.size() && si != only_shape) continue;
    // The tree's result on the chosen orientation is known: it bounds the others first.
    const auto known = [&](std::size_t ri) { return reductions[ri] == Reduction::kTree && tree_on[si]; };
    std::vector<std::size_t> order(reductions.size());
    for (std::size_t ri = 0; ri < order.size(); ++ri) order[ri] = ri;
    std::stable_partition(order.begin(), order.end(), known);
    for (std::size_t ri : order) {
      GemvConfig x = shapes[si];
      x.reduction = reductions[ri];
      const std::size_t rank = si * reductions.size() + ri;
      if (best_cfg) {
        const std::uint64_t floor = gemv_root_engine_floor(pe, x);
        if (floor > best.total_cycles || (floor == best.total_cycles && rank > best_rank)) continue;
      }
      const std::optional<GemvResult> r = known(ri) ? tree_on[si] : attempt(x);
      if (!r) continue;
      if (!best_cfg || r->total_cycles < best.total_cycles ||
          (r->total_cycles == best.total_cycles && rank < best_rank)) {
        best = *r;
        best_cfg = x;
        best_rank = rank;
        choice_[family] = {si, x.reduction};
      }
    }
  }
  if (!best_cfg) return run(c);  // none ran: the error of the configured one
  const std::string key = std::to_string(c.rows) + "x" + std::to_string(c.cols) + " on " +
                          std::to_string(c.grid_rows) + "x" + std::to_string(c.grid_cols) + " m " +
                          std::to_string(c.vectors);
  chosen_[key] = reduction_name(best_cfg->reduction);
  ++choices_version_;
  return best;
}

std::map<std::string, std::uint64_t> SimulatedKernels::reductions_chosen() const {
  std::map<std::string, std::uint64_t> n;
  for (const auto& [kernel, red] : chosen_) ++n[red];
  return n;
}

KernelTiming SimulatedKernels::handoff(const TensorGrid& grid, std::uint64_t tokens) {
  if (cannon_outputs_.count({&grid, tokens}) > 0) {
    // A Cannon GEMM's outputs left their PEs through the ramps in its drain (spread: into
    // the next kernel's layout, as below); packed, they then cross the grid's span.
    KernelTiming t;
    if (grid.area.is_auto()) {
      const std::uint64_t hops = grid.grid.rows + grid.grid.cols - 2;
      t.cycles = hops * wafer_.fabric.hop_latency_cycles;
      t.link_cycles = tokens * ceil_div(grid.rows * 2, 4) * hops;
    }
    return t;
  }
  // The results lie on the root line of the grid, one block of about M / P values (each
  // of `tokens` vectors) per PE of it. Spread: the next kernel's grid is laid out so that
  // this line is its input line (alternating orientations, as WaferLLM lays out its
  // layers): the block leaves and re-enters through the PE's ramp only. Packed: it
  // crosses to the next grid, bounded by the grid's own span (P - 1) + (Q - 1) hops.
  const std::uint64_t p = std::max<std::uint32_t>(1, grid.grid.rows);
  const std::uint64_t block = ceil_div(grid.rows, p) * tokens * 2;  // fp16 activations
  const std::uint64_t wavelets = ceil_div(block, 4);
  const std::uint64_t hops = grid.area.is_auto() ? grid.grid.rows + grid.grid.cols - 2 : 0;
  KernelTiming t;
  t.cycles = message_cycles(hops, wavelets);
  t.link_cycles = p * wavelets * hops;
  return t;
}

AttentionConfig SimulatedKernels::attention_config(const Operator& op, const LayerPlan& layer) const {
  AttentionConfig a;
  a.q_heads = op.q_heads;
  a.kv_heads = op.kv_heads;
  a.head_dim = op.qk_head_dim;
  a.context = op.kv_len - std::min(op.kv_len, op.query_len);
  a.query_tokens = to_u32(op.query_len, "attention query tokens");
  a.tokens_per_pe = layer.attention_tokens_per_pe;
  if (a.query_tokens == 1) {
    // Decode: the time depends on the number of token blocks, not on how full the last
    // (never the fullest) block is (docs/wse_mesh.md, "Attention"): round the context up
    // to a full last block so that one simulated result serves every context of it.
    const std::uint64_t blocks = ceil_div(a.context + 1, a.tokens_per_pe);
    a.context = blocks * a.tokens_per_pe - 1;
  }
  // A head's PEs stay inside the layer's region: no wider than it.
  a.max_grid_cols = std::min(opt_.attention_max_grid_cols, std::max<std::uint32_t>(1, layer.region.width));
  a.kv_bytes = workloads::bytes_per_value(op.weight_dtype);  // the lowering gives attention the KV dtype
  a.reduction = opt_.attention_combine;
  return a;
}

std::uint64_t SimulatedKernels::attention_floor(const Operator& op, const LayerPlan& layer) const {
  if (op.kind != workloads::OpKind::attention || op.query_len != 1) return 0;
  return attention_decode_floor(wafer_.pe, attention_config(op, layer));
}

std::uint32_t SimulatedKernels::attention_tile(const AttentionConfig& a) const {
  const std::uint32_t k = wafer_.tile;
  if (!opt_.attention_tiled || k <= 1 || a.query_tokens != 1) return 0;
  if (a.reduction == Reduction::kTree && !std::has_single_bit(k)) return 0;
  return k;
}

SimulatedKernels::AttentionCost SimulatedKernels::attention_cost(const AttentionConfig& part) {
  if (!cache_.enabled()) return sampled_attention_cost(part);
  std::string key = KernelCache::shape_key(part);
  sim::KeyWriter{key} << "|tile:" << attention_tile(part);
  if (const auto it = attention_costs_.find(key); it != attention_costs_.end()) return it->second;
  const AttentionCost c = sampled_attention_cost(part);
  attention_costs_.emplace(std::move(key), c);
  return c;
}

SimulatedKernels::AttentionCost SimulatedKernels::sampled_attention_cost(const AttentionConfig& part) {
  const std::uint32_t tile = attention_tile(part);
  const auto exact = [&](const AttentionConfig& a) {
    const AttentionResult res = tile > 0 ? cache_.attention_tiled(wafer_.fabric, tile, wafer_.pe, a)
                                         : cache_.attention(wafer_.fabric, wafer_.pe, a);
    return AttentionCost{static_cast<double>(res.total_cycles), static_cast<double>(res.wavelet_hops),
                         static_cast<double>(res.compute_cycles) * res.grid_rows * res.grid_cols};
  };
  // The part simulated at another context (a sample point).
  const auto at_context = [&](std::uint64_t context) {
    AttentionConfig a = part;
    a.context = context;
    return exact(a);
  };
  // The part at several contexts, simulated side by side on host threads ahead of the
  // calls that use them (KernelCache::prefetch_attention: the results are the same).
  const auto prefetch = [&](std::initializer_list<std::uint64_t> contexts) {
    std::vector<AttentionConfig> kernels;
    for (const std::uint64_t context : contexts) {
      kernels.push_back(part);
      kernels.back().context = context;
    }
    cache_.prefetch_attention(wafer_.fabric, wafer_.pe, kernels, tile);
  };
  // A fraction w of the way from x to y.
  const auto lerp = [](const AttentionCost& x, const AttentionCost& y, double w) {
    return AttentionCost{x.cycles + w * (y.cycles - x.cycles), x.hops + w * (y.hops - x.hops),
                         x.pe_busy + w * (y.pe_busy - x.pe_busy)};
  };
  // The part's cost a fraction w of the way from its cost at context lo to that at hi
  // (each simulated), or simulated itself where a sample point does not fit.
  const auto between = [&](std::uint64_t lo, std::uint64_t hi, double w) {
    AttentionCost c_lo, c_hi;
    prefetch({lo, hi});
    try {
      c_lo = at_context(lo);
      c_hi = at_context(hi);
    } catch (const CapacityError&) {
      return exact(part);
    }
    return lerp(c_lo, c_hi, w);
  };
  const std::uint64_t g = opt_.attention_block_grain;
  const std::uint64_t tpp = part.tokens_per_pe, qt = part.query_tokens;
  const std::uint64_t cols = part.max_grid_cols;
  if (g > 0 && qt > 1) {
    // A prefill sub-chunk: its time is linear in the tokens N = context + qt while a
    // head's blocks wrap onto the same number of PE rows (measured: to the cycle at tpp 16,
    // within 0.1% at tpp 4; docs/wse_mesh.md, "Prefill as a GEMM"), so it is simulated at
    // the two ends of that range of block counts and interpolated in tokens.
    const std::uint64_t n = part.context + qt;
    const std::uint64_t rows = ceil_div(ceil_div(n, tpp), cols);
    const std::uint64_t lo = std::max((rows - 1) * cols + 1, ceil_div(qt, tpp)) * tpp;  // tokens
    const std::uint64_t hi = rows * cols * tpp;
    if (n <= lo || n >= hi) return exact(part);
    return between(lo - qt, hi - qt, static_cast<double>(n - lo) / static_cast<double>(hi - lo));
  }
  const std::uint64_t blocks = ceil_div(part.context + 1, tpp);
  // Decode only, between two multiples of the grain, or, where a head's blocks wrap onto
  // one more PE row between them, between the block counts on either side of the wrap
  // that have this count's rows (the kernel's time is close to linear in the columns
  // with the rows fixed: the query multicast and the combine chain grow by one hop each).
  if (g == 0 || qt != 1 || blocks <= g) return exact(part);
  // The grain doubles with each doubling of the blocks past 32 grains: the interval stays
  // between 1/32 and 1/16 of the blocks.
  const std::uint64_t grain =
      g << static_cast<unsigned>(std::max(
          0.0, std::floor(std::log2(static_cast<double>(blocks) / (16.0 * static_cast<double>(g))))));
  const std::uint64_t rows = ceil_div(blocks, cols);
  std::uint64_t lo = blocks / grain * grain, hi = lo + grain;  // lo == hi: b is a sample point
  if (blocks % grain == 0) {
    hi = lo;
  } else if (ceil_div(lo, cols) != ceil_div(hi, cols)) {
    lo = std::max(lo, (rows - 1) * cols + 1);
    hi = std::min(hi, rows * cols);
    if (blocks == lo || blocks == hi) lo = hi = blocks;
  }
  // Plateaus. With the rows fixed, one more block adds a PE at the end of the last row:
  // its work, its hops and its combine stage come on top of the others', so the time
  // does not fall as the blocks grow, from the second block of a new row on (the first
  // is the new row's column-0 PE, whose append runs down column 0: measured slower, by
  // 22-29 cycles of 9,500 with the chain). This is checked block by block in the test.
  // Where the time is the same at both ends of an interval, it is that time all along
  // the interval. The interval is b's stretch of block counts with its rows, from the
  // second (for one row, between two powers of two: one tree level), halved at
  // multiples of the grain toward b while its ends differ, down to [lo, hi]. On a
  // plateau the cycles are exact; the hops and PE busy, which do grow, are interpolated
  // between its ends.
  std::uint64_t a = rows > 1 ? (rows - 1) * cols + 2 : (std::bit_floor(blocks - 1) + 1);
  std::uint64_t c = rows > 1 ? rows * cols : std::min<std::uint64_t>(cols, 2 * (a - 1));
  const auto point = [&](std::uint64_t b) { return at_context(b * tpp - 1); };  // b full blocks
  // Across row bands. Past the first row the time does not fall as blocks are added,
  // whatever row they start, bar a row's first block and the folded rows' 0.1% (checked
  // block by block in the test), so where the times at the ends of rows ra and rc agree,
  // every block count between them (not a row's first) takes that time too, within 0.1%.
  // The stretch runs from the end of row 2 to that of the power-of-two row count at or
  // above b's rows, and is halved in rows toward b's while its ends differ, down to one
  // row band (b's own, below). Its ends are shared by every context in it, so a decode
  // over many contexts simulates few points.
  if (rows > 2 && blocks != (rows - 1) * cols + 1) {
    std::uint64_t ra = 2, rc = std::bit_ceil(rows);
    try {
      while (rc - ra > 1) {
        const std::uint64_t ba = ra * cols, bc = rc * cols;
        prefetch({ba * tpp - 1, bc * tpp - 1});
        const AttentionCost ca = point(ba), cc = point(bc);
        if (ca.cycles == cc.cycles) {
          return lerp(ca, cc, static_cast<double>(blocks - ba) / static_cast<double>(bc - ba));
        }
        const std::uint64_t rm = (ra + rc) / 2;
        (rows <= rm ? rc : ra) = rm;
      }
    } catch (const CapacityError&) {
      // an end of the stretch does not fit the PEs: b's own row band, below
    }
  }
  // (A chain along one row grows by one stage a block: no plateau to look for there.)
  const bool look = rows > 1 || part.reduction != Reduction::kChain;
  try {
    while (look && c - a > std::max(hi - lo, grain) && a <= blocks && blocks <= c) {
      prefetch({a * tpp - 1, c * tpp - 1});
      const AttentionCost ca = point(a), cc = point(c);
      if (ca.cycles == cc.cycles)
        return lerp(ca, cc, static_cast<double>(blocks - a) / static_cast<double>(c - a));
      if (rows == 1) break;  // one row: the tree's stretch only (the chain grows along it)
      const std::uint64_t mid = (a + c) / 2 / grain * grain;
      if (mid <= a || mid >= c) break;
      (blocks <= mid ? c : a) = mid;
    }
  } catch (const CapacityError&) {
    // an end of the stretch does not fit the PEs: the interval [lo, hi] alone
  }
  if (lo == hi) return exact(part);
  return between(lo * tpp - 1, hi * tpp - 1, static_cast<double>(blocks - lo) / static_cast<double>(hi - lo));
}

KernelTiming SimulatedKernels::attention(const Operator& op, const LayerPlan& layer) {
  const AttentionConfig a = attention_config(op, layer);
  const PrefillAttention mode = opt_.prefill_attention;
  if (a.query_tokens <= 1 || mode == PrefillAttention::kCombine) {
    KernelTiming t = attention_combine(a);
    t.sram_read_bytes = op.kv_read_bytes;
    t.sram_write_bytes = op.kv_write_bytes;
    return t;
  }
  // A prefill chunk: K and V streamed past stationary queries (attention_stream.h), where
  // its queries fit; auto also times the decode kernel's sub-chunks and takes the faster.
  // The stream blocks are the cache's blocks or pieces of them (half, a quarter, ... as
  // many tokens), spreading each head over more of the layer's PEs: the planner takes the
  // fastest whose heads fit the region's rows.
  AttentionStreamConfig s = stream_config(a);
  const std::string key = KernelCache::key(wafer_.fabric, wafer_.pe, s);
  std::optional<KernelTiming> stream;
  for (std::uint32_t tpp = a.tokens_per_pe; tpp >= 1; tpp /= 2) {
    s.stream_tokens_per_pe = tpp;
    AttentionConfig grid = a;
    grid.tokens_per_pe = tpp;
    if (tpp < a.tokens_per_pe && attention_grid(grid).first > std::max<std::uint32_t>(1, layer.region.height))
      break;
    try {
      const AttentionStreamResult r = cache_.attention_stream(wafer_.fabric, wafer_.pe, s);
      if (!stream || r.total_cycles < stream->cycles) {
        KernelTiming t;
        t.cycles = r.total_cycles;
        t.link_cycles = r.wavelet_hops;
        t.pe_busy_cycles = r.busy_cycles;
        stream = t;
      }
    } catch (const CapacityError&) {
      // one query a PE does not fit beside its blocks and buffers
    }
  }
  KernelTiming t;
  if (stream && mode == PrefillAttention::kStream) {
    t = *stream;
  } else {
    t = attention_combine(a);
    if (stream && stream->cycles < t.cycles) t = *stream;
  }
  prefill_attention_[key] = stream && t.cycles == stream->cycles ? "stream" : "combine";
  ++choices_version_;
  t.sram_read_bytes = op.kv_read_bytes;
  t.sram_write_bytes = op.kv_write_bytes;
  return t;
}

std::map<std::string, std::uint64_t> SimulatedKernels::prefill_attention_chosen() const {
  std::map<std::string, std::uint64_t> n;
  for (const auto& [kernel, name] : prefill_attention_) ++n[name];
  return n;
}

KernelTiming SimulatedKernels::attention_combine(const AttentionConfig& a) {
  KernelTiming t;
  // Query vectors that do not fit the PEs beside their K and V run in parts one after
  // another on the same PEs: a prefill chunk as sub-chunks of half the tokens (then a
  // quarter, ...), each seeing the cache up to its first token; then the query heads
  // sharing a KV head in groups of half as many (MLA decode: 128 heads on one latent).
  std::uint32_t sub = a.query_tokens;
  std::uint32_t groups = 1;
  for (;;) {
    try {
      AttentionConfig part = a;
      part.q_heads = a.q_heads / groups;
      for (std::uint32_t done = 0; done < a.query_tokens; done += sub) {
        part.context = a.context + done;
        part.query_tokens = std::min(sub, a.query_tokens - done);
        const AttentionCost c = attention_cost(part);
        t.cycles += groups * static_cast<std::uint64_t>(std::llround(c.cycles));
        t.link_cycles += groups * static_cast<std::uint64_t>(std::llround(c.hops));
        t.pe_busy_cycles += groups * static_cast<std::uint64_t>(std::llround(c.pe_busy));
      }
      break;
    } catch (const CapacityError&) {
      t = KernelTiming{};
      const std::uint32_t group_heads = a.q_heads / groups;
      if (sub > 1) {
        sub = (sub + 1) / 2;
      } else if (group_heads % 2 == 0 && (group_heads / 2) % a.kv_heads == 0) {
        groups *= 2;
      } else {
        throw;
      }
    }
  }
  return t;
}

VectorKernelConfig SimulatedKernels::vector_config(const Operator& op, const LayerPlan& layer) const {
  VectorKernelConfig v;
  v.dtype = Accumulate::kFp16;
  v.reduction = Reduction::kTree;
  const TensorGrid* in = layer.input_grid();
  const std::uint64_t hidden = in != nullptr ? in->cols : op.elements;
  const std::uint32_t line = in != nullptr ? in->grid.cols : 1;
  std::uint64_t length = op.elements;  // values of one vector
  switch (op.kind) {
    case OpKind::norm:
      v.op = VectorOp::kRmsNorm;
      // The norm's scale vector is as long as the vector it normalises (q/k norms: a head).
      length = op.weight_bytes > 0 ? op.weight_bytes / workloads::bytes_per_value(op.weight_dtype) : hidden;
      break;
    case OpKind::router: {
      v.op = VectorOp::kSoftmax;
      const TensorGrid* gate = layer.grid("mlp.gate");
      length = gate != nullptr ? gate->rows : op.elements;
      break;
    }
    default:
      // Elementwise: no reduction, so the values are one long vector on the line.
      v.op = VectorOp::kElementwise;
      v.ops_per_element = to_u32(op.elements > 0 ? op.vector_ops / op.elements : 1, "operations per value");
      break;
  }
  if (length == 0 || op.elements % length != 0) length = op.elements;
  v.elements = length;
  v.vectors = to_u32(op.elements / length, "vectors");
  // The line holds every vector's slice (and the norm's weights) at once: at least as
  // many PEs as that takes within a PE's SRAM beside its reserve.
  // A PE holds e = ceil(length / pes) values of every vector and of the weight: at most
  // usable / (2 vectors + 4) bytes' worth, so pes >= ceil(length / that).
  const std::uint64_t usable =
      wafer_.pe.sram_bytes - std::min(wafer_.pe.sram_bytes - 1, opt_.placement.reserved_sram_bytes);
  const std::uint64_t per_pe = std::max<std::uint64_t>(1, usable / (2 * std::uint64_t{v.vectors} + 4));
  const std::uint64_t needed = ceil_div(length, per_pe);
  v.pes = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::max<std::uint64_t>(line, needed), length));
  return v;
}

KernelTiming SimulatedKernels::vector(const Operator& op, const LayerPlan& layer) {
  const VectorKernelConfig v = vector_config(op, layer);
  const VectorKernelResult res = cache_.vector_kernel(wafer_.fabric, wafer_.pe, v);
  KernelTiming t;
  t.cycles = res.total_cycles;
  t.link_cycles = res.wavelet_hops;
  t.pe_busy_cycles = res.local_cycles * v.pes;
  t.sram_read_bytes = op.input_bytes;
  t.sram_write_bytes = op.output_bytes;
  return t;
}

KernelTiming SimulatedKernels::embedding(const Operator& op, const LayerPlan& layer) const {
  const TensorGrid* table = layer.grid("embed_tokens");
  const TensorGrid* in = layer.input_grid();
  if (table == nullptr) throw std::logic_error("decode: the embedding runs on a layer without the table");
  const std::uint64_t hidden = table->cols;
  const std::uint64_t tokens = op.elements / hidden;
  const std::uint64_t kt = ceil_div(hidden, table->grid.cols);
  // Each of the table grid's Q columns sends Kt fp16 values per token (2 per wavelet).
  const std::uint64_t wavelets = tokens * ceil_div(kt * workloads::bytes_per_value(op.activation_dtype), 4);
  const std::uint64_t hops = in != nullptr ? distance(table->origins.front(), in->origins.front()) : 0;
  KernelTiming t;
  t.cycles = message_cycles(hops, wavelets);
  t.link_cycles = table->grid.cols * wavelets * hops;
  t.sram_read_bytes = op.weight_bytes;
  return t;
}

KernelTiming SimulatedKernels::move(const LayerPlan& from, const LayerPlan& to, std::uint64_t /*tokens*/,
                                    std::uint64_t bytes) {
  const TensorGrid* src = from.output_grid();
  const TensorGrid* dst = to.input_grid();
  PeCoord a{from.region.x0, from.region.y0}, b{to.region.x0, to.region.y0};
  std::uint64_t lanes = 1;
  if (src != nullptr && dst != nullptr) {
    // The output sits on the east column of the source grid, one share per PE row; the
    // input goes to the top row of the destination grid, one segment per PE column.
    a = src->origins.front();
    a.x += src->grid.cols - 1;
    b = dst->origins.front();
    lanes = std::min(src->grid.rows, dst->grid.cols);
  }
  const std::uint64_t wavelets = ceil_div(bytes, 4);
  const std::uint64_t hops = distance(a, b);
  KernelTiming t;
  t.cycles = message_cycles(hops, ceil_div(wavelets, lanes));
  t.link_cycles = wavelets * hops;
  return t;
}

}  // namespace wse::wafer
