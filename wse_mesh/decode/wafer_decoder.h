// A transformer served by one or more Cerebras systems: every layer's weights and KV
// cache placed on a region of a wafer (layers split over several wafers as a pipeline,
// activations passed between wafers over a configured link), and forward passes (decode
// steps, prefill chunks) run as the kernels of wse_mesh (GEMV/GEMM, attention, vector
// kernels) on those regions, in a pipeline of microbatches across the layer regions.
//
// Documented in docs/wse_mesh.md, "Decode on the wafer": placement rules, the schedule,
// per-kernel breakdown, capacity errors, and what is simulated versus composed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "systemc_models/config/config.h"
#include "systemc_models/stats/stats.h"
#include "systemc_models/units/units.h"
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"
#include "wse_mesh/decode/kernel_timer.h"
#include "wse_mesh/decode/placement.h"
#include "wse_mesh/kernels/gemm_cannon.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/pe.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer {

// How a batch's KV cache shares a layer region's PEs (docs/wse_mesh.md, "KV layout").
//  - balanced: a head's tokens per PE is the fewest with which the whole batch fits the
//    region (no PE holds more than it must), kept from step to step while it fits; when it
//    changes, the cache is shifted into the new layout along each head's chain of PEs,
//    and that move is timed (`kv_relayout` on the critical path).
//  - doubling (ablation, the earlier layout): tokens per PE doubled until the batch fits,
//    chosen afresh every pass, the moves between layouts untimed.
enum class KvLayout { kBalanced, kDoubling };

// How a model is mapped on its wafers (YAML section `decode:`; see read_decode_config).
struct DecodeConfig {
  std::uint32_t wafers = 1;              // systems one copy of the model spans (layers pipelined)
  Bandwidth link_bandwidth{1.2e12 / 8};  // activation link between consecutive wafers (assumption)
  Duration link_latency{10e-6};          // its one-way latency (assumption)
  std::uint32_t microbatch = 1;          // sequences per microbatch in the layer pipeline
  // A prompt (or prefill chunk) is cut into pieces of this many tokens, each its own
  // microbatch, so that its tokens flow through the layer regions as a pipeline.
  std::uint32_t prefill_chunk_tokens = 1;
  // Everything else (grid per kernel, KV tokens per PE, SRAM shares) is the decoder's
  // documented choice, read by read_decode_config with its defaults.

  // --- the decoder's choices (docs/wse_mesh.md, "Decode on the wafer") -------------------
  Mapping mapping = Mapping::kSpread;         // spread (the best public mapping) or packed (ablation)
  GridShape region;                           // rows x columns of each wafer used (0 x 0: all)
  std::uint32_t region_columns = 0;           // spread: column strips of layers (0: auto, square regions)
  Accumulate accumulate = Accumulate::kFp16;  // GEMV partial sums (SDK fp16 GEMV, WaferLLM: @fmach)
  bool reduction_auto = true;                 // GEMV reduction: the fastest of chain, tree, K-tree per kernel
  Reduction reduction = Reduction::kTree;     // when not auto
  GemmAlgorithm gemm_algorithm = GemmAlgorithm::kAuto;  // GEMMs of m > 1 tokens: GEMV passes or Cannon
  std::map<std::string, GridShape> grids;               // per weight kind (kGridKinds); missing = auto
  double weight_sram_share = 0.9;            // auto grids: a weight PE's tile + buffers <= share x SRAM
  std::uint64_t reserved_sram_bytes = 2048;  // per PE, never used for weights or KV (program, stack)
  std::uint32_t gemm_vectors = 1;            // tokens a weight PE buffers at once; larger GEMMs run in passes
  std::uint32_t vocab_slices = 8;            // embedding table and LM head cut by rows into this many grids
  std::uint32_t tokens_per_pe = 16;          // attention: cached tokens of one KV head per PE (at least)
  std::uint32_t attention_max_grid_cols = 256;      // attention: PE columns per KV-head row
  Reduction attention_combine = Reduction::kChain;  // attention: combine along a head's rows
  // attention of a prefill chunk: streamed K/V past stationary queries, or the decode kernel
  PrefillAttention prefill_attention = PrefillAttention::kAuto;
  std::uint32_t attention_block_grain = 16;  // attention: decode block counts sampled at multiples (0: exact)
  bool attention_tiled = true;  // attention: decode on tiled fidelity when wafer.tile > 1 (false: per_pe)
  KvLayout kv_layout = KvLayout::kBalanced;  // attention: how a batch's KV heads share the region's PEs
  std::uint32_t kv_layout_steps = 0;         // balanced layout: tokens-per-PE values per doubling (0: exact)

  PlacementOptions placement() const;
};

DecodeConfig read_decode_config(config::Section& decode);

// The physical lower bound of a pass on the hardware that ran it (docs/wse_mesh.md, "The
// floor"): no mapping can beat any of the three terms.
struct WaferFloor {
  double compute_s = 0.0;  // matrix FLOPs / (all PEs x fp16 FMAC SIMD width x 2 x clock)
  double sram_s = 0.0;     // SRAM bytes read (written) / all PEs' read (write) port bytes per second
  double latency_s = 0.0;  // dependent collectives x their fewest hops x hop latency, + link crossings
  double step_s = 0.0;     // the largest of the three

  // Term by term: the floors of several passes, summed.
  WaferFloor& operator+=(const WaferFloor& f) {
    compute_s += f.compute_s;
    sram_s += f.sram_s;
    latency_s += f.latency_s;
    step_s += f.step_s;
    return *this;
  }
};

// The result of one forward pass (decode step or prefill batch).
struct WaferRunResult {
  WaferFloor floor;
  double floor_ratio = 0.0;                      // seconds / floor.step_s
  double seconds = 0.0;                          // first microbatch in to last output out
  std::vector<double> layer_done_s;              // per layer: when its last microbatch is done
  std::map<std::string, double> kernel_seconds;  // per kernel kind: busy time on the critical path
  std::uint64_t weight_bytes_read = 0;
  std::uint64_t kv_bytes_read = 0;
  std::uint64_t kv_bytes_written = 0;
  std::uint64_t link_bytes = 0;  // activations between wafers
  // The work of the pass, all wafers (the energy model's counts, apps/experiments/energy.h).
  std::uint64_t flops = 0;                // matrix FLOPs (the floor's)
  std::uint64_t sram_read_bytes = 0;      // read by the PEs' instructions
  std::uint64_t sram_write_bytes = 0;     // written by the PEs' instructions
  std::uint64_t fabric_wavelet_hops = 0;  // PE-to-PE link directions busy, summed
  // Busy fractions over `seconds` (0..1), for the utilization report.
  double fabric_link_busy = 0.0;   // router-to-router link directions
  double sram_port_busy = 0.0;     // SRAM read/write ports of all PEs
  double pe_busy = 0.0;            // PE compute engines
  double link_busy = 0.0;          // inter-wafer activation links
  std::uint32_t microbatches = 0;  // the pass was split into this many
};

class WaferDecoder : public stats::Provider {
 public:
  // Places `model` on the wafers; throws CapacityError (naming the layer, tensor and
  // shortfall) when the weights do not fit.
  WaferDecoder(const WaferConfig& wafer, const DecodeConfig& cfg, const workloads::TransformerModel& model);
  // The same with another kernel timer (tests: hand-set cycles) instead of the simulated
  // wse_mesh kernels.
  WaferDecoder(const WaferConfig& wafer, const DecodeConfig& cfg, const workloads::TransformerModel& model,
               std::unique_ptr<KernelTimer> timer);
  ~WaferDecoder() override;

  // KV-cache bytes the placement leaves free, all layers together (the admission limit).
  // = kv_capacity_tokens() x the KV bytes per token of the full-attention layers (all
  // layers when none slides): requests admitted while the sum of model.kv_bytes(context)
  // stays under it fit every layer's region.
  std::uint64_t kv_capacity_bytes() const;
  const std::vector<LayerRegion>& regions() const;
  // Tokens every layer can cache (the minimum over layers of region capacity / bytes
  // per token of that layer).
  std::uint64_t kv_capacity_tokens() const;
  // Placement details: grids and their positions per layer.
  const std::vector<LayerPlan>& plans() const;

  // One decode step: one new token for each sequence with the given cached context.
  WaferRunResult decode_step(const std::vector<std::uint64_t>& contexts);
  // A prefill batch: chunk_tokens[i] tokens of prompt i at offsets[i] (empty: from 0).
  WaferRunResult prefill(const std::vector<std::uint64_t>& chunk_tokens,
                         const std::vector<std::uint64_t>& offsets = {});
  // Any batch (decode steps and prefill chunks mixed), as workloads::lower takes it.
  WaferRunResult forward(const std::vector<workloads::Sequence>& batch);

  // Forgets the KV layout kept from earlier decode steps (balanced layout): the next step
  // finds its batch's cache laid out for it, as after its prefill, and moves nothing.
  // Benches use it so that each row is a steady step of its own batch.
  void reset_kv_layout();
  // The GEMM algorithm of later passes (DecodeConfig::gemm_algorithm), keeping every
  // kernel result simulated so far: an ablation on the same decoder.
  void set_gemm_algorithm(GemmAlgorithm a);
  // The prefill attention of later passes (DecodeConfig::prefill_attention), keeping the
  // kernel results: an ablation on the same decoder.
  void set_prefill_attention(PrefillAttention a);
  // DecodeConfig::prefill_chunk_tokens of later passes, keeping the kernel results.
  void set_prefill_chunk_tokens(std::uint32_t tokens);

  const stats::Group& stats() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wse::wafer
