#include "wse_mesh/decode/placement.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <tuple>

#include "systemc_models/units/units.h"

#include "systemc_models/units/integer.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

namespace {

using workloads::DType;
using workloads::WeightRole;
using workloads::WeightTensor;

}  // namespace

std::string bytes_text(std::uint64_t bytes) {
  return pretty_binary(Size{bytes}) + " (" + std::to_string(bytes) + " B)";
}

namespace {

std::string shape_text(GridShape g) { return std::to_string(g.rows) + "x" + std::to_string(g.cols); }

// The tensors of one layer before they get positions.
struct LayerWeights {
  std::vector<TensorGrid> grids;
  std::uint64_t vector_bytes = 0;
  std::uint64_t bytes = 0;  // everything the layer's region holds
};

TensorGrid grid_of(const WeightTensor& w, std::string kind) {
  TensorGrid t;
  t.tensor = w.name;
  t.kind = std::move(kind);
  if (w.role == WeightRole::embedding) {
    // The table is dealt like a matrix of vocab rows by hidden columns: a token's row
    // lies on one grid row of PEs, split over its Q columns.
    t.rows = w.rows;
    t.cols = w.cols;
  } else {
    // WeightTensor is input features (rows) x output features (cols); a GEMV grid splits
    // the output features over its P rows and the input features over its Q columns.
    t.rows = w.cols;
    t.cols = w.rows;
  }
  t.copies = w.copies;
  t.dtype = w.dtype;
  t.weight_bytes = w.bytes();
  return t;
}

// The vocabulary tensors cut by rows into `slices` grids that compute at once.
TensorGrid sliced(TensorGrid t, std::uint32_t slices) {
  slices = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::max<std::uint32_t>(slices, 1), t.rows));
  t.rows = ceil_div(t.rows, slices);
  t.copies = slices;
  return t;
}

std::vector<LayerWeights> collect(const workloads::TransformerModel& model, std::uint32_t vocab_slices) {
  std::vector<LayerWeights> layers(model.layers);
  for (std::uint32_t l = 0; l < model.layers; ++l) {
    for (const WeightTensor& w : model.layer_specs[l].weights) {
      if (w.is_gemm()) {
        layers[l].grids.push_back(grid_of(w, grid_kind(w)));
      } else {
        layers[l].vector_bytes += w.bytes();
      }
      layers[l].bytes += w.bytes();
    }
  }
  // Outside the layers: the embedding table with layer 0 (first wafer), the final norm
  // and the LM head with the last layer (last wafer). A tied table is held twice (a copy
  // on each end of the pipeline; with one wafer that costs its bytes once more).
  const std::vector<WeightTensor> top = model.top_weights();
  const WeightTensor* table = nullptr;
  for (const WeightTensor& w : top) {
    if (w.role == WeightRole::embedding) table = &w;
  }
  LayerWeights& first = layers.front();
  LayerWeights& last = layers.back();
  bool have_head = false;
  for (const WeightTensor& w : top) {
    if (w.role == WeightRole::embedding) {
      first.grids.insert(first.grids.begin(), sliced(grid_of(w, "embedding"), vocab_slices));
      first.bytes += w.bytes();
    } else if (w.role == WeightRole::lm_head) {
      last.grids.push_back(sliced(grid_of(w, "lm_head"), vocab_slices));
      last.bytes += w.bytes();
      have_head = true;
    } else {
      last.vector_bytes += w.bytes();
      last.bytes += w.bytes();
    }
  }
  if (!have_head && table != nullptr) {
    WeightTensor head = *table;
    head.name = "lm_head";
    head.role = WeightRole::lm_head;
    std::swap(head.rows, head.cols);  // hidden in, vocab out
    last.grids.push_back(sliced(grid_of(head, "lm_head"), vocab_slices));
    last.bytes += head.bytes();
  }
  return layers;
}

// Splits n layers with the given bytes into `groups` contiguous groups, minimising the
// largest group (dynamic programme); returns the first layer of each group.
std::vector<std::uint32_t> split_layers(const std::vector<std::uint64_t>& bytes, std::uint32_t groups) {
  const std::size_t n = bytes.size();
  std::vector<std::uint64_t> prefix(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + bytes[i];
  constexpr std::uint64_t kInf = std::numeric_limits<std::uint64_t>::max();
  // best[g][i]: the smallest largest group of the first i layers in g groups.
  std::vector<std::vector<std::uint64_t>> best(groups + 1, std::vector<std::uint64_t>(n + 1, kInf));
  std::vector<std::vector<std::size_t>> cut(groups + 1, std::vector<std::size_t>(n + 1, 0));
  best[0][0] = 0;
  for (std::uint32_t g = 1; g <= groups; ++g) {
    for (std::size_t i = g; i <= n; ++i) {
      for (std::size_t j = g - 1; j < i; ++j) {
        if (best[g - 1][j] == kInf) continue;
        const std::uint64_t v = std::max(best[g - 1][j], prefix[i] - prefix[j]);
        if (v < best[g][i]) {
          best[g][i] = v;
          cut[g][i] = j;
        }
      }
    }
  }
  std::vector<std::uint32_t> first(groups);
  std::size_t i = n;
  for (std::uint32_t g = groups; g >= 1; --g) {
    first[g - 1] = static_cast<std::uint32_t>(cut[g][i]);
    i = cut[g][i];
  }
  return first;
}

}  // namespace

std::string grid_kind(const WeightTensor& w) {
  const auto has = [&](std::string_view s) { return w.name.find(s) != std::string::npos; };
  switch (w.role) {
    case WeightRole::embedding:
      return "embedding";
    case WeightRole::lm_head:
      return "lm_head";
    case WeightRole::attention:
      return has("o_proj") ? "o" : "qkv";
    case WeightRole::mlp:
    case WeightRole::shared_expert:
      return has("down_proj") ? "down" : "gate_up";
    case WeightRole::routed_expert:
      return "experts";
    case WeightRole::router:
      return "router";
    default:
      return "";
  }
}

std::uint64_t gemv_pe_bytes(std::uint64_t rows, std::uint64_t cols, GridShape g, DType dtype,
                            std::uint32_t vectors) {
  const std::uint64_t mt = ceil_div(rows, g.rows), kt = ceil_div(cols, g.cols);
  // The tile, and per vector in flight an fp16 x segment and fp32 accumulators.
  return workloads::bytes_of(mt * kt, dtype) + std::uint64_t{vectors} * (2 * kt + 4 * mt);
}

namespace {

// Fewest columns Q (0 if none within max_cols) for P grid rows: the largest Kt whose
// tile, x segment and accumulators fit the budget.
std::uint64_t cols_for_rows(std::uint64_t rows, std::uint64_t cols, DType dtype, std::uint64_t budget,
                            std::uint32_t p, std::uint32_t max_cols, std::uint32_t vectors) {
  const std::uint64_t mt = ceil_div(rows, p);
  const std::uint64_t v = vectors;
  if (4 * mt * v >= budget) return 0;
  const double value_bytes = workloads::bits_per_value(dtype) / 8.0;
  // Estimate, then correct (mxfp4 rounds to whole 32-value blocks).
  auto kt =
      static_cast<std::uint64_t>(static_cast<double>(budget - 4 * mt * v) /
                                 (static_cast<double>(mt) * value_bytes + 2.0 * static_cast<double>(v)));
  kt = std::min<std::uint64_t>(kt, cols);
  while (kt > 0 && workloads::bytes_of(mt * kt, dtype) + v * (2 * kt + 4 * mt) > budget) --kt;
  if (kt == 0) return 0;
  const std::uint64_t q = ceil_div(cols, kt);
  return q <= max_cols ? q : 0;
}

}  // namespace

GridShape smallest_grid(std::uint64_t rows, std::uint64_t cols, DType dtype, std::uint64_t budget,
                        std::uint32_t max_rows, std::uint32_t max_cols, std::uint32_t vectors) {
  GridShape best;
  std::uint64_t best_area = std::numeric_limits<std::uint64_t>::max();
  const auto p_max = static_cast<std::uint32_t>(std::min<std::uint64_t>(rows, max_rows));
  for (std::uint32_t p = 1; p <= p_max; ++p) {
    const std::uint64_t q = cols_for_rows(rows, cols, dtype, budget, p, max_cols, vectors);
    if (q == 0) continue;
    const std::uint64_t area = p * q;
    const auto better = [&] {
      if (area != best_area) return area < best_area;
      return p + q < std::uint64_t{best.rows} + best.cols;  // squarer: shorter multicast + reduction
    };
    if (better()) {
      best_area = area;
      best = {p, static_cast<std::uint32_t>(q)};
    }
  }
  return best;
}

GridShape narrowest_grid(std::uint64_t rows, std::uint64_t cols, DType dtype, std::uint64_t budget,
                         std::uint32_t max_rows, std::uint32_t max_cols, std::uint32_t vectors) {
  // Q does not grow with P (more rows: shorter tile rows, so more columns per PE).
  auto p = static_cast<std::uint32_t>(std::min<std::uint64_t>(rows, max_rows));
  if (p == 0) return {};
  const std::uint64_t q = cols_for_rows(rows, cols, dtype, budget, p, max_cols, vectors);
  if (q == 0) return {};
  while (p > 1 && cols_for_rows(rows, cols, dtype, budget, p - 1, max_cols, vectors) == q) --p;
  return {p, static_cast<std::uint32_t>(q)};
}

const TensorGrid* LayerPlan::grid(std::string_view tensor) const {
  for (const TensorGrid& g : grids) {
    if (g.holds(tensor)) return &g;
  }
  return nullptr;
}

const TensorGrid* LayerPlan::input_grid() const {
  for (const TensorGrid& g : grids) {
    if (g.kind == "qkv") return &g;
  }
  return nullptr;
}

const TensorGrid* LayerPlan::output_grid() const {
  const TensorGrid* out = nullptr;
  for (const TensorGrid& g : grids) {
    if (g.kind == "down" || (g.kind == "experts" && g.tensor.find("down") != std::string::npos)) out = &g;
  }
  return out;
}

namespace {

// The grids that read the same input and are fused under kSpread: consecutive single
// copies of the same kind (q, k, v; gate, up), input features and weight type.
bool fusable(const TensorGrid& a, const TensorGrid& b) {
  return a.copies == 1 && b.copies == 1 && a.kind == b.kind && (a.kind == "qkv" || a.kind == "gate_up") &&
         a.cols == b.cols && a.dtype == b.dtype;
}

TensorGrid fuse(const std::vector<TensorGrid>& group) {
  TensorGrid f = group.front();
  const std::string& first = group.front().tensor;
  const std::size_t dot = first.rfind('.');
  f.tensor = (dot == std::string::npos ? std::string() : first.substr(0, dot + 1)) +
             (f.kind == "qkv" ? "qkv_proj" : "gate_up_proj");
  f.rows = 0;
  f.weight_bytes = 0;
  for (const TensorGrid& t : group) {
    f.members.push_back(t.tensor);
    f.rows += t.rows;
    f.weight_bytes += t.weight_bytes;
  }
  return f;
}

// The partition of a rows x cols rectangle into `copies` equal rectangles of a grid
// rr x cc (rr cc >= copies) with the largest rectangle; ties: the squarer.
GridShape copy_area(std::uint32_t rows, std::uint32_t cols, std::uint32_t copies, std::uint32_t& per_row) {
  GridShape best;
  per_row = 1;
  std::uint64_t best_area = 0;
  for (std::uint32_t cc = 1; cc <= std::min(copies, cols); ++cc) {
    const std::uint32_t rr = static_cast<std::uint32_t>(ceil_div(copies, cc));
    if (rr > rows) continue;
    const GridShape g{rows / rr, cols / cc};
    const std::uint64_t area = std::uint64_t{g.rows} * g.cols;
    const auto squarer = [&] {
      const auto skew = [](GridShape x) { return x.rows > x.cols ? x.rows - x.cols : x.cols - x.rows; };
      return skew(g) < skew(best);
    };
    if (area > best_area || (area == best_area && squarer())) {
      best = g;
      best_area = area;
      per_row = cc;
    }
  }
  return best;
}

// A band's place: wafer w, north-west PE (x0, y0), W x height PEs.
void set_band(LayerRegion& r, std::uint32_t w, std::uint32_t x0, std::uint32_t y0, std::uint32_t W,
              std::uint32_t height) {
  r.wafer = w;
  r.x0 = x0;
  r.y0 = y0;
  r.width = W;
  r.height = height;
}

// kSpread: the layer's weights laid over its whole region (docs/wse_mesh.md, "Mappings").
// Fuses the projections that read one input, gives every tensor (each copy) its share
// of the region, and checks that each PE holds its tiles of all the layer's tensors (the
// fullest PE of every tile, all on one PE: the grids share their north-west corner).
// Returns false, leaving `p` as the packing placed it, when they do not.
bool spread_layer(LayerPlan& p, std::uint64_t usable, std::uint32_t vectors, std::uint32_t quantum) {
  std::vector<TensorGrid> grids;
  for (std::size_t i = 0; i < p.grids.size();) {
    std::size_t j = i + 1;
    while (j < p.grids.size() && fusable(p.grids[i], p.grids[j])) ++j;
    if (j - i > 1) {
      grids.push_back(fuse({p.grids.begin() + static_cast<std::ptrdiff_t>(i),
                            p.grids.begin() + static_cast<std::ptrdiff_t>(j)}));
    } else {
      grids.push_back(p.grids[i]);  // a copy: p is left whole if the spread does not fit
    }
    i = j;
  }
  const LayerRegion& r = p.region;
  const std::uint64_t region_pes = std::uint64_t{r.width} * r.height;
  // A layer that also holds the embedding table or the LM head gives those vocabulary
  // tensors their own rows at the bottom of its region, in proportion to their bytes, and
  // its other matrices the rows above: so that its projections run on a region like every
  // other layer's (and share their simulated kernels), not stretched over the table's rows.
  const auto vocab = [](const TensorGrid& t) { return t.kind == "embedding" || t.kind == "lm_head"; };
  std::uint64_t vocab_bytes = 0, other_bytes = 0;
  for (const TensorGrid& t : grids) (vocab(t) ? vocab_bytes : other_bytes) += t.weight_bytes;
  std::uint32_t vocab_rows = 0;
  if (vocab_bytes > 0 && other_bytes > 0 && r.height > 1) {
    const double share = static_cast<double>(vocab_bytes) / static_cast<double>(vocab_bytes + other_bytes);
    vocab_rows =
        std::clamp<std::uint32_t>(static_cast<std::uint32_t>(std::lround(share * r.height)), 1, r.height - 1);
  } else if (vocab_bytes > 0) {
    vocab_rows = r.height;
  }
  const std::uint64_t vector_share =
      ceil_div(p.vector_weight_bytes, region_pes);  // norms, biases: spread evenly
  std::uint64_t per_pe_top = vector_share, per_pe_bottom = vector_share;
  std::uint64_t grid_pe_bytes = 0;
  for (TensorGrid& t : grids) {
    const bool bottom = vocab(t);
    const std::uint32_t rows = bottom ? vocab_rows : r.height - vocab_rows;
    const std::uint32_t y0 = bottom ? r.y0 + r.height - vocab_rows : r.y0;
    std::uint32_t per_row = 1;
    t.area = copy_area(rows, r.width, t.copies, per_row);
    if (rows == 0 || t.area.rows == 0 || t.area.cols == 0) return false;  // more copies than PEs
    // The kernel grid in the default orientation, and turned (P along the rectangle's
    // columns): the SRAM of the fuller of the two is counted, so either may run.
    const auto whole = [&](std::uint64_t side) { return side >= quantum ? side / quantum * quantum : side; };
    const auto kernel_grid = [&](std::uint32_t p_side, std::uint32_t q_side) {
      return GridShape{static_cast<std::uint32_t>(std::min<std::uint64_t>(whole(p_side), t.rows)),
                       static_cast<std::uint32_t>(std::min<std::uint64_t>(whole(q_side), t.cols))};
    };
    t.grid = kernel_grid(t.area.rows, t.area.cols);
    t.turned = kernel_grid(t.area.cols, t.area.rows);
    t.pe_bytes = std::max(gemv_pe_bytes(t.rows, t.cols, t.grid, t.dtype, vectors),
                          gemv_pe_bytes(t.rows, t.cols, t.turned, t.dtype, vectors));
    t.origins.assign(t.copies, PeCoord{0, 0});
    for (std::uint32_t c = 0; c < t.copies; ++c) {
      t.origins[c] = PeCoord{r.x0 + (c % per_row) * t.area.cols, y0 + (c / per_row) * t.area.rows};
    }
    if (t.kind == "embedding") {
      // A lookup table, not a GEMV: its rows are dealt over the area with no buffers.
      t.pe_bytes = ceil_div(t.weight_bytes, std::uint64_t{t.copies} * t.grid.rows * t.grid.cols);
    }
    grid_pe_bytes += std::uint64_t{t.copies} * t.grid.rows * t.grid.cols * t.pe_bytes;
    (bottom ? per_pe_bottom : per_pe_top) += t.pe_bytes;
  }
  if (per_pe_top > usable || per_pe_bottom > usable) return false;
  p.grids = std::move(grids);
  p.grid_pe_bytes = grid_pe_bytes;
  p.spread = true;
  return true;
}

}  // namespace

std::uint32_t auto_region_columns(std::uint32_t layers, std::uint32_t width, std::uint32_t height) {
  std::uint32_t best = 1;
  double best_skew = 0.0;
  for (std::uint32_t c = 1; c <= std::min(layers, width); ++c) {
    const double w = static_cast<double>(width) / c;
    const double h = static_cast<double>(height) * c / layers;
    const double skew = std::max(w, h) / std::min(w, h);
    if (c == 1 || skew < best_skew) {
      best = c;
      best_skew = skew;
    }
  }
  return best;
}

bool TensorGrid::holds(std::string_view name) const {
  if (tensor == name) return true;
  return std::find(members.begin(), members.end(), name) != members.end();
}

bool overlaps(const TensorGrid& a, const TensorGrid& b) {
  const GridShape fa = a.footprint(), fb = b.footprint();
  for (const PeCoord& oa : a.origins) {
    for (const PeCoord& ob : b.origins) {
      const bool apart = oa.x + fa.cols <= ob.x || ob.x + fb.cols <= oa.x || oa.y + fa.rows <= ob.y ||
                         ob.y + fb.rows <= oa.y;
      if (!apart) return true;
    }
  }
  return false;
}

std::vector<LayerPlan> place_model(const WaferConfig& wafer, const PlacementOptions& opt,
                                   const workloads::TransformerModel& model) {
  if (model.layers == 0) throw std::invalid_argument("decode placement: the model has no layers");
  if (opt.wafers == 0 || opt.wafers > model.layers) {
    throw std::invalid_argument("decode.wafers = " + std::to_string(opt.wafers) +
                                " must be between 1 and the " + std::to_string(model.layers) + " layers of " +
                                model.name);
  }
  const std::uint64_t sram = wafer.pe.sram_bytes;
  if (opt.reserved_sram_bytes >= sram) {
    throw std::invalid_argument("decode.reserved_sram (" + format_bytes(opt.reserved_sram_bytes) +
                                ") must be smaller than a PE's SRAM (" + format_bytes(sram) + ")");
  }
  const std::uint64_t usable = sram - opt.reserved_sram_bytes;  // per PE: weights, buffers, KV
  const auto share_budget = static_cast<std::uint64_t>(opt.weight_sram_share * static_cast<double>(sram));
  const std::uint64_t budget = std::min(share_budget, usable);
  const std::uint32_t wafer_w = opt.region.is_auto() ? wafer.width : opt.region.cols;
  const std::uint32_t H = opt.region.is_auto() ? wafer.height : opt.region.rows;
  if (wafer_w > wafer.width || H > wafer.height) {
    throw std::invalid_argument("decode.region " + shape_text(opt.region) + " (rows x columns) exceeds the " +
                                std::to_string(wafer.height) + " x " + std::to_string(wafer.width) +
                                " PEs of " + wafer.name);
  }

  std::vector<LayerWeights> weights = collect(model, opt.vocab_slices);

  // Contiguous groups of layers per wafer, balanced by weight bytes.
  std::vector<std::uint64_t> layer_bytes(model.layers);
  for (std::uint32_t l = 0; l < model.layers; ++l) layer_bytes[l] = weights[l].bytes;
  const std::vector<std::uint32_t> first = split_layers(layer_bytes, opt.wafers);

  std::vector<LayerPlan> plans(model.layers);
  for (std::uint32_t l = 0; l < model.layers; ++l) {
    LayerPlan& p = plans[l];
    p.region.layer = l;
    p.vector_weight_bytes = weights[l].vector_bytes;
    p.kv_bytes_per_token = model.kv_bytes_per_token_per_layer();
    p.window_tokens = model.layer_specs[l].window_tokens;
    p.region.weight_bytes = weights[l].bytes;
  }
  // For the error messages: the PEs the smallest grid of every tensor would take.
  std::uint64_t all_min_pes = 0;
  for (const LayerWeights& lw : weights) {
    for (const TensorGrid& t : lw.grids) {
      const GridShape g = smallest_grid(t.rows, t.cols, t.dtype, budget, H, wafer_w, opt.gemm_vectors);
      all_min_pes += std::uint64_t{t.copies} *
                     (g.is_auto() ? std::uint64_t{H} * wafer_w : std::uint64_t{g.rows} * g.cols);
    }
  }
  const auto suggest_wafers = [&] {
    return std::max<std::uint64_t>(opt.wafers + 1, ceil_div(all_min_pes, std::uint64_t{wafer_w} * H));
  };
  const auto too_big = [&](std::uint32_t l, const TensorGrid& t, const std::string& why) {
    return CapacityError("decode placement: layer " + std::to_string(l) + " tensor '" + t.tensor + "' (" +
                             std::to_string(t.rows) + " x " + std::to_string(t.cols) + " " +
                             workloads::to_string(t.dtype) + ") " + why,
                         0);
  };

  // One strip: layers [a, b) of wafer w as bands of full strip width W (columns x0 ..
  // x0 + W - 1), stacked north to south (south to north when `upward`).
  const auto place_strip = [&](std::uint32_t w, std::uint32_t a, std::uint32_t b, std::uint32_t x0,
                               std::uint32_t W, bool upward, bool spread) {
    const std::uint64_t row_bytes = std::uint64_t{W} * usable;
    const std::uint32_t n_layers = b - a;
    const std::string wafer_text = "wafer " + std::to_string(w) + " (" + wafer.name + ", " +
                                   std::to_string(W) + " x " + std::to_string(H) + " PEs" +
                                   (W != wafer.width || H != wafer.height ? " of the region used" : "") + ")";

    // Configured grids are shelf-packed at the top of their layer's band, tallest first.
    std::vector<std::uint32_t> fixed_rows(n_layers, 0);
    std::vector<std::vector<std::size_t>> auto_grids(n_layers);
    for (std::uint32_t l = a; l < b; ++l) {
      std::vector<TensorGrid>& grids = weights[l].grids;
      std::vector<std::size_t> fixed;
      for (std::size_t g = 0; g < grids.size(); ++g) {
        TensorGrid& t = grids[g];
        t.origins.assign(t.copies, PeCoord{0, 0});
        const auto it = opt.grids.find(t.kind);
        if (it != opt.grids.end() && !it->second.is_auto()) {
          t.grid = it->second;
          if (t.grid.rows > H || t.grid.cols > W) {
            throw too_big(l, t,
                          "on the configured " + t.kind + " grid " + shape_text(t.grid) + " exceeds the " +
                              std::to_string(W) + " x " + std::to_string(H) + " PEs of " + wafer.name);
          }
          t.pe_bytes = gemv_pe_bytes(t.rows, t.cols, t.grid, t.dtype, opt.gemm_vectors);
          if (t.pe_bytes > usable) {
            CapacityError e = too_big(l, t, "");
            throw CapacityError(
                std::string(e.what()) + "on the configured " + t.kind + " grid " + shape_text(t.grid) +
                    " needs " + format_bytes(t.pe_bytes) + " per PE, more than the " + format_bytes(usable) +
                    " a PE offers after its reserve; short by " + format_bytes(t.pe_bytes - usable) +
                    ". Use a larger decode.grids." + t.kind + " or `auto`.",
                t.pe_bytes - usable);
          }
          fixed.push_back(g);
        } else {
          auto_grids[l - a].push_back(g);
        }
      }
      std::vector<std::pair<std::size_t, std::uint32_t>> copies;  // (grid, copy)
      for (std::size_t g : fixed) {
        for (std::uint32_t c = 0; c < grids[g].copies; ++c) copies.emplace_back(g, c);
      }
      std::stable_sort(copies.begin(), copies.end(), [&](const auto& x, const auto& y) {
        return grids[x.first].grid.rows > grids[y.first].grid.rows;
      });
      std::uint32_t x = 0, shelf_y = 0, shelf_h = 0;
      for (const auto& [g, c] : copies) {
        TensorGrid& t = grids[g];
        if (x + t.grid.cols > W) {
          shelf_y += shelf_h;
          x = 0;
          shelf_h = 0;
        }
        t.origins[c] = PeCoord{x, shelf_y};
        x += t.grid.cols;
        shelf_h = std::max(shelf_h, t.grid.rows);
      }
      fixed_rows[l - a] = shelf_y + shelf_h;
    }

    // Auto grids (the embedding table and LM head included): each layer gets the fewest
    // rows r for which its auto grids fit below its fixed grids in s shelves of r / s rows
    // (s = 1 .. 16), each grid on the fewest columns within the shelf's height (and then the
    // fewest rows: narrowest_grid), first fit, widest first. The rows left on the wafer then go to the KV
    // cache.
    std::vector<std::uint32_t> weight_rows(n_layers, 0);
    const auto try_pack = [&](std::uint32_t l, std::uint32_t r) {
      std::vector<TensorGrid>& grids = weights[l].grids;
      const std::vector<std::size_t>& autos = auto_grids[l - a];
      for (std::uint32_t s = 1; s <= std::min<std::uint32_t>(16, r); ++s) {
        const std::uint32_t shelf_h = r / s;
        bool ok = true;
        std::uint64_t cols = 0;
        for (std::size_t g : autos) {
          TensorGrid& t = grids[g];
          t.grid = narrowest_grid(t.rows, t.cols, t.dtype, budget, shelf_h, W, opt.gemm_vectors);
          if (t.grid.is_auto()) {
            ok = false;
            break;
          }
          t.pe_bytes = gemv_pe_bytes(t.rows, t.cols, t.grid, t.dtype, opt.gemm_vectors);
          cols += std::uint64_t{t.copies} * t.grid.cols;
        }
        if (!ok || cols > std::uint64_t{s} * W) continue;
        std::vector<std::pair<std::size_t, std::uint32_t>> copies;
        for (std::size_t g : autos) {
          for (std::uint32_t c = 0; c < grids[g].copies; ++c) copies.emplace_back(g, c);
        }
        std::stable_sort(copies.begin(), copies.end(), [&](const auto& x, const auto& y) {
          return grids[x.first].grid.cols > grids[y.first].grid.cols;
        });
        std::vector<std::uint32_t> used(s, 0);
        for (const auto& [g, c] : copies) {
          TensorGrid& t = grids[g];
          std::uint32_t k = 0;
          while (k < s && used[k] + t.grid.cols > W) ++k;
          if (k == s) {
            ok = false;
            break;
          }
          t.origins[c] = PeCoord{used[k], fixed_rows[l - a] + k * shelf_h};
          used[k] += t.grid.cols;
        }
        if (ok) return true;
      }
      return false;
    };
    for (std::uint32_t l = a; l < b; ++l) {
      const std::vector<std::size_t>& autos = auto_grids[l - a];
      weight_rows[l - a] = fixed_rows[l - a];
      if (autos.empty()) continue;
      // No fewer rows than the auto grids' PEs at their smallest, a full row at a time.
      std::uint64_t min_pes = 0;
      for (std::size_t g : autos) {
        const TensorGrid& t = weights[l].grids[g];
        const GridShape m = smallest_grid(t.rows, t.cols, t.dtype, budget, H, W, opt.gemm_vectors);
        if (m.is_auto()) {
          throw too_big(l, t,
                        "has no grid within the " + std::to_string(W) + " x " + std::to_string(H) +
                            " PEs of " + wafer.name + " whose PEs hold their tile in " +
                            format_bytes(budget) + " (decode.weight_sram_share)");
        }
        min_pes += std::uint64_t{t.copies} * m.rows * m.cols;
      }
      const std::uint64_t free_rows = H > fixed_rows[l - a] ? H - fixed_rows[l - a] : 0;
      std::uint32_t r = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, ceil_div(min_pes, W)));
      while (r <= free_rows && !try_pack(l, r)) ++r;
      if (r > free_rows) {
        const std::uint64_t short_bytes = min_pes > free_rows * W ? (min_pes - free_rows * W) * sram : 0;
        throw CapacityError(
            "decode placement: " + wafer_text + " cannot hold layer " + std::to_string(l) + " of " +
                model.name + ": its weight grids do not fit in " + std::to_string(free_rows) + " rows of " +
                std::to_string(W) + " PEs (they take at least " + std::to_string(min_pes) + " PEs)" +
                (short_bytes > 0 ? "; short by " + bytes_text(short_bytes) : std::string()) +
                ". Set decode.wafers to at least " + std::to_string(suggest_wafers()) + " (now " +
                std::to_string(opt.wafers) + "), or raise decode.weight_sram_share.",
            short_bytes);
      }
      weight_rows[l - a] = fixed_rows[l - a] + r;
    }

    for (std::uint32_t l = a; l < b; ++l) {
      LayerPlan& p = plans[l];
      for (const TensorGrid& t : weights[l].grids) {
        p.grid_pe_bytes += std::uint64_t{t.copies} * t.grid.rows * t.grid.cols * t.pe_bytes;
      }
      // The band must also hold the vector weights and the grids' buffers within `usable`.
      const std::uint64_t used = p.grid_pe_bytes + p.vector_weight_bytes;
      p.weight_rows =
          std::max<std::uint32_t>(weight_rows[l - a], static_cast<std::uint32_t>(ceil_div(used, row_bytes)));
      p.grids = std::move(weights[l].grids);
    }
    std::uint64_t rows = 0;
    for (std::uint32_t l = a; l < b; ++l) rows += plans[l].weight_rows;
    if (rows > H) {
      // Name the first tensor that lies beyond the last PE row.
      std::uint64_t y = 0;
      std::string where;
      for (std::uint32_t l = a; l < b && where.empty(); ++l) {
        for (const TensorGrid& t : plans[l].grids) {
          for (const PeCoord& o : t.origins) {
            if (where.empty() && y + o.y + t.grid.rows > H) {
              where = "layer " + std::to_string(l) + " tensor '" + t.tensor + "' (grid " +
                      shape_text(t.grid) + ", " + format_bytes(t.pe_bytes) + " per PE) would end at PE row " +
                      std::to_string(y + o.y + t.grid.rows) + " of " + std::to_string(H);
            }
          }
        }
        y += plans[l].weight_rows;
      }
      if (where.empty()) where = "layer " + std::to_string(b - 1) + " (its vector weights and buffers)";
      const std::uint64_t short_rows = rows - H;
      throw CapacityError("decode placement: " + wafer_text + " cannot hold the weights of layers " +
                              std::to_string(a) + "-" + std::to_string(b - 1) + " of " + model.name + ": " +
                              where + "; their weight grids need " + std::to_string(rows) + " PE rows (" +
                              bytes_text(rows * W * sram) + " of SRAM) against " + std::to_string(H) + " (" +
                              bytes_text(std::uint64_t{H} * W * sram) + "): short by " +
                              bytes_text(short_rows * W * sram) + ". Set decode.wafers to at least " +
                              std::to_string(suggest_wafers()) + " (now " + std::to_string(opt.wafers) + ").",
                          short_rows * W * sram);
    }
    // Share the remaining rows so that every layer holds the same KV bytes: the largest C
    // with sum over layers of max(weight rows, ceil((C + used) / row bytes)) <= H.
    const auto rows_for = [&](const LayerPlan& p, std::uint64_t c) {
      return std::max<std::uint64_t>(p.weight_rows,
                                     ceil_div(c + p.grid_pe_bytes + p.vector_weight_bytes, row_bytes));
    };
    std::uint64_t lo = 0, hi = std::uint64_t{H} * row_bytes;
    while (lo < hi) {
      const std::uint64_t mid = lo + (hi - lo + 1) / 2;
      std::uint64_t total = 0;
      for (std::uint32_t l = a; l < b; ++l) total += rows_for(plans[l], mid);
      if (total <= H) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    std::vector<std::uint64_t> band(b - a);
    std::uint64_t used_rows = 0;
    for (std::uint32_t l = a; l < b; ++l) used_rows += band[l - a] = rows_for(plans[l], lo);
    for (std::uint64_t i = 0; used_rows < H; ++i, ++used_rows) ++band[i % band.size()];  // leftover rows
    std::uint32_t y0 = upward ? H : 0;
    for (std::uint32_t l = a; l < b; ++l) {
      LayerPlan& p = plans[l];
      const auto height = static_cast<std::uint32_t>(band[l - a]);
      if (upward) y0 -= height;
      set_band(p.region, w, x0, y0, W, height);
      for (TensorGrid& t : p.grids) {
        for (PeCoord& o : t.origins) {
          o.x += x0;
          o.y += y0;
        }
      }
      if (spread) spread_layer(p, usable, opt.gemm_vectors, std::max<std::uint32_t>(1, opt.grid_quantum));
      p.region.kv_capacity_bytes = p.region.height * row_bytes - p.grid_pe_bytes - p.vector_weight_bytes;
      if (!upward) y0 += height;
    }
  };

  // Spread: layers [a, b) of wafer w as bands of the strip (columns x0 .. x0 + W - 1)
  // whose heights are proportional to the layers' weight bytes (largest remainders, at
  // least one row each), every layer spread over its band. False when a band's PEs do not
  // hold their tiles (or there are more layers than rows).
  const auto spread_strip = [&](std::uint32_t w, std::uint32_t a, std::uint32_t b, std::uint32_t x0,
                                std::uint32_t W, bool upward) {
    const std::uint32_t n = b - a;
    if (n > H) return false;
    std::uint64_t total = 0;
    for (std::uint32_t l = a; l < b; ++l) total += std::max<std::uint64_t>(1, layer_bytes[l]);
    // In units of the kernel-grid quantum (so that layers of equal bytes get equal
    // regions and share their simulated kernels): one unit each, the rest in proportion
    // to the bytes, the units left over one each to the layers of most bytes first; rows
    // short of a whole unit go to the strip's last layer.
    const std::uint32_t quantum = std::max<std::uint32_t>(1, opt.grid_quantum);
    const std::uint32_t u = quantum <= H / n ? quantum : 1;
    const std::uint32_t units = H / u;
    std::vector<std::uint32_t> rows(n, 1);
    std::uint32_t given = n;
    for (std::uint32_t i = 0; i < n; ++i) {
      const double share = static_cast<double>(units - n) *
                           static_cast<double>(std::max<std::uint64_t>(1, layer_bytes[a + i])) /
                           static_cast<double>(total);
      const auto whole = static_cast<std::uint32_t>(share);
      rows[i] += whole;
      given += whole;
    }
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      return layer_bytes[a + x] > layer_bytes[a + y];
    });
    for (std::size_t i = 0; given < units; ++i, ++given) ++rows[order[i % n]];
    for (std::uint32_t& r : rows) r *= u;
    rows.back() += H - units * u;
    std::uint32_t y0 = upward ? H : 0;
    for (std::uint32_t l = a; l < b; ++l) {
      LayerPlan& p = plans[l];
      const std::uint32_t height = rows[l - a];
      if (upward) y0 -= height;
      set_band(p.region, w, x0, y0, W, height);
      p.grids = weights[l].grids;
      p.grid_pe_bytes = 0;
      p.weight_rows = height;
      if (!spread_layer(p, usable, opt.gemm_vectors, quantum)) return false;
      const std::uint64_t region_bytes = std::uint64_t{W} * height * usable;
      if (p.grid_pe_bytes + p.vector_weight_bytes > region_bytes) return false;
      p.region.kv_capacity_bytes = region_bytes - p.grid_pe_bytes - p.vector_weight_bytes;
      if (!upward) y0 += height;
    }
    return true;
  };

  for (std::uint32_t w = 0; w < opt.wafers; ++w) {
    const std::uint32_t a = first[w];
    const std::uint32_t b = (w + 1 < opt.wafers ? first[w + 1] : model.layers);  // [a, b)
    if (opt.mapping == Mapping::kPacked) {
      place_strip(w, a, b, 0, wafer_w, false, false);
      continue;
    }
    // Spread: the layers in column strips of bands whose heights follow the layers' weight
    // bytes (so every PE holds about the same weight bytes, whatever the SRAM), the most
    // strips up to the square-region count whose PEs hold their tiles. Should none, the
    // bands are sized as the packed placement sizes them (its capacity errors, which
    // speak of the whole wafer, are the ones raised) and each layer spread where it fits.
    const std::vector<LayerWeights> kept(weights.begin() + a, weights.begin() + b);
    const auto restore = [&] {
      for (std::uint32_t l = a; l < b; ++l) {
        weights[l] = kept[l - a];
        plans[l].grids.clear();
        plans[l].grid_pe_bytes = 0;
        plans[l].spread = false;
      }
    };
    std::uint32_t strips =
        opt.region_columns > 0 ? opt.region_columns : auto_region_columns(b - a, wafer_w, H);
    strips = std::min({strips, b - a, wafer_w});
    // Consecutive layers per strip, balanced by weight bytes; strips snake (north to
    // south, then south to north) so that consecutive layers stay neighbours.
    const std::vector<std::uint64_t> strip_bytes(layer_bytes.begin() + a, layer_bytes.begin() + b);
    bool placed = false;
    for (; strips >= 1 && !placed; --strips) {
      const std::vector<std::uint32_t> strip_first = split_layers(strip_bytes, strips);
      placed = true;
      std::uint32_t x0 = 0;
      for (std::uint32_t s = 0; s < strips && placed; ++s) {
        const std::uint32_t sa = a + strip_first[s];
        const std::uint32_t sb = s + 1 < strips ? a + strip_first[s + 1] : b;
        const std::uint32_t width = wafer_w / strips + (s < wafer_w % strips ? 1 : 0);
        placed = spread_strip(w, sa, sb, x0, width, s % 2 == 1);
        x0 += width;
      }
      if (!placed) restore();
    }
    if (!placed) place_strip(w, a, b, 0, wafer_w, false, true);
  }
  return plans;
}

}  // namespace wse::wafer
