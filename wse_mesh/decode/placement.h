// Placement of a transformer's layers on one or more wafers (docs/wse_mesh.md, "Decode
// on the wafer"):
//  - the layers are split into `wafers` contiguous groups whose weight bytes (the
//    embedding counted with layer 0, the final norm and LM head with the last layer) are
//    as even as possible (the largest group is minimised);
//  - on a wafer each layer gets a band of full-width PE rows (its region); the bands are
//    stacked north to south;
//  - inside a band every GEMM weight gets its own P x Q grid per copy (routed experts: one
//    per expert; the embedding table and LM head: one per vocabulary slice). Configured
//    grids ("PxQ") are shelf-packed at the top; the `auto` ones take the fewest rows r in
//    which they fit s shelves of r / s rows, each grid as narrow as its shelf allows with
//    its fullest PE's tile, x segments and accumulators within `weight_sram_share` of the
//    PE's SRAM;
//  - the rows the weight grids leave are shared out so that every layer of the wafer can
//    hold the same KV bytes; the KV cache takes all SRAM of the region that weights, GEMV
//    buffers, vector weights (norms, biases) and the per-PE reserve leave.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "workloads/model/transformer.h"
#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer {

// Where one layer lives (the serving layer's view; LayerPlan has the details).
struct LayerRegion {
  std::uint32_t layer = 0;
  std::uint32_t wafer = 0;              // index in the pipeline
  std::uint32_t x0 = 0, y0 = 0;         // north-west PE
  std::uint32_t width = 0, height = 0;  // PEs
  std::uint64_t weight_bytes = 0;       // placed in the region's SRAM
  std::uint64_t kv_capacity_bytes = 0;  // SRAM left in the region for this layer's KV cache
};

// A grid shape: P rows (north to south, splitting the output features) by Q columns
// (west to east, splitting the input features). 0 x 0 means `auto`.
struct GridShape {
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  bool is_auto() const { return rows == 0 && cols == 0; }
  bool operator==(const GridShape&) const = default;
};

// The weight kinds a grid can be configured for (`decode.grids`).
inline constexpr std::string_view kGridKinds[] = {"qkv",     "o",      "gate_up", "down",
                                                  "experts", "router", "lm_head", "embedding"};

// How a layer's weights are laid out on its region (`decode.mapping`).
//  - kSpread (default): every weight matrix is tiled in two dimensions over the whole
//    region of its layer (copies of a tensor, such as routed experts or vocabulary
//    slices, over a partition of it), so every PE holds its tile of each matrix of its
//    layer plus its share of the KV cache; projections that read the same input (q, k,
//    v; gate, up) are fused into one matrix, as serving software does. A wafer (or
//    decode.region) is cut into column strips of layers so that a layer's region is
//    close to square (decode.region_columns).
//  - kPacked: each matrix on the fewest PEs that hold it within weight_sram_share
//    (narrowest grids shelf-packed at the top of the band), the rest of the band for KV:
//    kept as an ablation.
enum class Mapping : std::uint8_t { kSpread, kPacked };

// Placement choices (the part of DecodeConfig the placement reads).
struct PlacementOptions {
  Mapping mapping = Mapping::kSpread;
  // The rectangle of each wafer the model may use: P rows x Q columns at the north-west
  // corner (0 x 0: the whole wafer).
  GridShape region;
  // kSpread: column strips per wafer, each holding consecutive layers as bands stacked
  // north to south (0 = the count that makes a layer's region closest to square).
  std::uint32_t region_columns = 0;
  // kSpread: kernel grids are whole multiples of this many PEs a side where the area
  // allows (the wafer's simulation tile, so that layers whose regions differ by a few rows
  // share one simulated kernel; the rows left hold KV).
  std::uint32_t grid_quantum = 1;
  std::uint32_t wafers = 1;
  std::map<std::string, GridShape> grids;    // by kind; missing or 0 x 0 = auto
  double weight_sram_share = 0.9;            // auto grids: tile + x segment + accumulators <= share x SRAM
  std::uint64_t reserved_sram_bytes = 2048;  // per PE: program, stack, in-flight activations (never KV)
  std::uint32_t gemm_vectors = 1;  // vectors (tokens) a weight PE buffers at once (x segments, accumulators)
  std::uint32_t vocab_slices = 8;  // embedding table and LM head: grids of vocab / slices rows each
};

// The SRAM one PE of a GEMV grid needs: tile Mt x Kt of `dtype`, and for each of
// `vectors` vectors in flight the fp16 x segment (Kt) and the fp32 accumulators (Mt), on
// the fullest (north-west) PE (as the kernel places them: gemv_pe_engine.h).
std::uint64_t gemv_pe_bytes(std::uint64_t rows, std::uint64_t cols, GridShape g, workloads::DType dtype,
                            std::uint32_t vectors = 1);

// The smallest grid (fewest PEs; ties: the squarest) for a rows x cols matrix whose
// fullest PE needs at most `budget_bytes`, with P <= max_rows and Q <= max_cols. Returns
// 0 x 0 when none exists.
GridShape smallest_grid(std::uint64_t rows, std::uint64_t cols, workloads::DType dtype,
                        std::uint64_t budget_bytes, std::uint32_t max_rows, std::uint32_t max_cols,
                        std::uint32_t vectors = 1);

// The grid of fewest columns Q with P <= max_rows (then the fewest rows P with that Q):
// what a shelf of max_rows rows packs best. Returns 0 x 0 when none exists.
GridShape narrowest_grid(std::uint64_t rows, std::uint64_t cols, workloads::DType dtype,
                         std::uint64_t budget_bytes, std::uint32_t max_rows, std::uint32_t max_cols,
                         std::uint32_t vectors = 1);

// One weight tensor's GEMV grid(s).
struct TensorGrid {
  std::string tensor;        // weight name as in the model ("self_attn.q_proj", "lm_head", "embed_tokens")
  std::string kind;          // one of kGridKinds
  std::uint64_t rows = 0;    // M: output features of one copy (embedding: table rows of one slice)
  std::uint64_t cols = 0;    // K: input features (embedding: hidden)
  GridShape grid;            // one copy
  std::uint32_t copies = 1;  // routed experts: one grid per expert; vocabulary tensors: one per slice
  workloads::DType dtype = workloads::DType::bf16;
  std::uint64_t pe_bytes = 0;      // fullest PE of a copy (gemv_pe_bytes)
  std::uint64_t weight_bytes = 0;  // the tensor, all copies
  std::vector<PeCoord> origins;    // north-west PE of each copy, wafer coordinates
  // kSpread: the weights fused into this grid (q, k, v; gate, up), in row order; empty
  // when the grid holds `tensor` alone.
  std::vector<std::string> members;
  // kSpread: the rectangle (rows x columns of PEs, wafer orientation) one copy is spread
  // over; `grid` is then its kernel grid in the default orientation (P along the
  // rectangle's rows), and the kernel may also run it turned by 90 degrees. 0 x 0 under
  // kPacked (the grid is the footprint).
  GridShape area;
  // kSpread: the kernel grid turned by 90 degrees (P along the area's columns), which the
  // kernel may run instead of `grid`; 0 x 0 under kPacked.
  GridShape turned;

  // The PEs one copy covers, in wafer orientation.
  GridShape footprint() const { return area.is_auto() ? grid : area; }
  // Whether `name` is this grid's tensor or one of its fused members.
  bool holds(std::string_view name) const;
};

// Everything the schedule and the kernels need about one layer's region.
struct LayerPlan {
  LayerRegion region;
  std::vector<TensorGrid> grids;          // in the model's weight order (embedding first, LM head last)
  std::uint64_t vector_weight_bytes = 0;  // norms, biases, sinks (spread over the region)
  std::uint64_t grid_pe_bytes = 0;        // sum over grid PEs of pe_bytes (what the grids occupy)
  std::uint64_t kv_bytes_per_token = 0;   // this layer's cache per token (model)
  std::uint32_t window_tokens = 0;        // sliding window (0: full attention)
  std::uint32_t weight_rows = 0;          // rows of the band the weight grids take
  // kSpread: the layer's weights are spread over its region. False under kPacked, and for
  // a layer whose PEs could not hold their spread tiles (the packed grids kept).
  bool spread = false;
  // Attention mapping of the current pass: cached tokens of one KV head per PE (set per
  // pass by the decoder: the configured value, raised when the batch needs more).
  std::uint32_t attention_tokens_per_pe = 16;

  // The grid of a tensor (or the fused grid that holds it), or null.
  const TensorGrid* grid(std::string_view tensor) const;
  // The grid that receives the layer's input (the first q/kv projection), or null.
  const TensorGrid* input_grid() const;
  // The grid that produces the layer's output (the last down projection), or null.
  const TensorGrid* output_grid() const;
};

// Places `model`; throws CapacityError naming the wafer, layer, tensor and the shortfall
// (and the number of wafers that would be needed) when the weights do not fit.
std::vector<LayerPlan> place_model(const WaferConfig& wafer, const PlacementOptions& opt,
                                   const workloads::TransformerModel& model);

// The number of column strips decode.region_columns = 0 picks for `layers` layers on a
// width x height rectangle: the count c (1 .. min(layers, width)) whose layer regions,
// (width / c) x (height c / layers), are closest to square.
std::uint32_t auto_region_columns(std::uint32_t layers, std::uint32_t width, std::uint32_t height);

// Whether two grids' footprints (all copies) share a PE.
bool overlaps(const TensorGrid& a, const TensorGrid& b);

// "1.50 GiB (1610612736 B)": region-sized byte counts in messages.
std::string bytes_text(std::uint64_t bytes);

// The weight kind of a tensor (kGridKinds), from its role and name.
std::string grid_kind(const workloads::WeightTensor& w);

}  // namespace wse::wafer
