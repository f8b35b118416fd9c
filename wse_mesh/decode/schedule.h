// The layer pipeline of a forward pass (docs/wse_mesh.md, "Decode on the wafer"):
//  - the pass is given as one lowered OperatorGraph per microbatch;
//  - a layer's work for a microbatch is its operators one after another on the layer's
//    region, except operators that run at once on disjoint PEs and take the slowest:
//    consecutive operators of the same kind and name (the attention of the microbatch's
//    sequences) and the routed experts' token-count groups (the gate projections of all
//    experts at once, then the up, then the down); the embedding belongs to layer 0, the
//    final norm and LM head to the last layer;
//  - a region runs one microbatch at a time, and a microbatch enters layer l when its
//    output of layer l-1 has arrived:
//        start(mb, l) = max(arrival(mb, l), done(mb - 1, l)),  done = start + work
//        arrival(mb, l) = done(mb, l-1) + move        (same wafer: fabric move)
//        arrival(mb, l) = max(done(mb, l-1), link free) + bytes / link bandwidth
//                         + link latency              (next wafer: the link is FIFO)
//  - cycles become seconds with the wafer clock; the critical path is walked back from
//    the last microbatch's last layer, and each step on it is charged to its kernel kind
//    ("gemm.qkv", "attention", "norm", ..., "activation_move", "link"): the charged times
//    add up to `seconds`.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "workloads/model/operators.h"
#include "wse_mesh/decode/kernel_timer.h"
#include "wse_mesh/decode/placement.h"
#include "wse_mesh/decode/wafer_decoder.h"

namespace wse::wafer {

struct ScheduleOptions {
  double clock_hz = 1.1e9;
  double link_bandwidth_bytes_per_s = 1.2e12 / 8;
  double link_latency_s = 10e-6;
  std::uint32_t wafers = 1;
  std::uint64_t pes_per_wafer = 0;              // for the busy fractions
  std::uint64_t link_directions_per_wafer = 0;  // router-to-router link directions
  std::uint64_t sram_port_bytes_per_cycle = 0;  // one PE: reads + writes
  std::uint32_t hidden = 0;                     // activations moved between layers
  std::uint32_t activation_bytes = 2;
  // The floor (WaferFloor): the PEs' peak multiply-accumulates per cycle (SIMD width of
  // the fp16 FMAC), SRAM port bytes per cycle for reads and for writes, the hop latency.
  std::uint64_t macs_per_cycle_per_pe = 0;
  std::uint64_t sram_read_bytes_per_cycle = 0;
  std::uint64_t sram_write_bytes_per_cycle = 0;
  std::uint32_t hop_latency_cycles = 1;
  std::uint64_t floor_sram_bytes_per_pe = 0;  // run_schedule: sizes the latency floor (microbatch_work)
};

// The kernel kind an operator is charged to ("gemm.<grid kind>" for GEMMs).
std::string kernel_kind(const workloads::Operator& op, const LayerPlan& layer);

// Every kind a layer's work is charged to, fixed: "gemm.<grid kind>" for each of
// kGridKinds and "gemm.other" (a GEMM without a grid), each other operator kind
// (workloads::to_string), and "kernel_move" (the hand-offs between a group's stages).
// MicrobatchWork::kind_cycles holds indices into it, so that the critical-path walk of
// every pass adds cycles by index, with no table shared between decoders.
inline constexpr std::string_view kKernelKinds[] = {
    "gemm.qkv",     "gemm.o",         "gemm.gate_up", "gemm.down",      "gemm.experts", "gemm.router",
    "gemm.lm_head", "gemm.embedding", "gemm.other",   "embedding",      "norm",         "rope",
    "attention",    "activation",     "router",       "expert_combine", "residual_add", "kernel_move"};
inline constexpr std::size_t kKernelKindCount = std::size(kKernelKinds);

// The index of `kind` in kKernelKinds; std::logic_error for a kind not in it.
std::uint16_t kernel_kind_index(std::string_view kind);

// One layer's work for one microbatch.
struct LayerWork {
  std::uint64_t cycles = 0;
  std::map<std::string, std::uint64_t> by_kind;  // adds up to `cycles`
};

// Everything a microbatch costs the layers, before the pipeline composes it: the work
// of each layer (its operators, grouped as above), the kernels' busy counts, and the
// bytes its operators read and write.
struct MicrobatchWork {
  std::uint64_t tokens = 0;
  std::vector<LayerWork> layers;
  KernelTiming totals;
  std::uint64_t weight_bytes_read = 0;
  std::uint64_t kv_bytes_read = 0;
  std::uint64_t kv_bytes_written = 0;
  std::uint64_t flops = 0;  // matrix FLOPs (GEMMs, attention)
  // Per layer: the fewest hops of its dependent collectives, one after another (the
  // latency floor; floor_hops of each level's operands).
  std::vector<std::uint64_t> floor_hops;
  // LayerWork::by_kind by index into kKernelKinds, every layer's in one
  // array for the critical-path walk: layer l's are [kind_begin[l], kind_begin[l + 1]).
  std::vector<std::pair<std::uint16_t, std::uint64_t>> kind_cycles;
  std::vector<std::uint32_t> kind_begin;
  // Each layer's cycles / clock_hz, divided once here rather than in every pass that
  // reuses this work (run_pipeline refuses work timed at another clock).
  double clock_hz = 0.0;
  std::vector<double> layer_seconds;
};
// `clock_hz`: the wafer clock (layer_seconds); `sram_bytes_per_pe` sizes the latency
// floor (0: none).
MicrobatchWork microbatch_work(const std::vector<LayerPlan>& plans, const workloads::OperatorGraph& mb,
                               KernelTimer& timer, double clock_hz, std::uint64_t sram_bytes_per_pe = 0);

// The fewest hops a collective whose operands fill ceil(bytes / SRAM) PEs can take: the
// smallest d with 2 d^2 + 2 d + 1 (the PEs within d hops of one PE) at least that many.
std::uint64_t floor_hops(std::uint64_t bytes, std::uint64_t sram_bytes_per_pe);

// Activation moves between consecutive layers on one wafer, by token count: entry l of a
// count is the move into layer l (left zero for layer 0 and for layers whose input
// crosses a link). The same for every pass of a placement, so a caller may keep it
// across passes; a count's moves are timed together, layer by layer, on first use.
using MoveMemo = std::unordered_map<std::uint64_t, std::vector<KernelTiming>>;

// The pipeline of microbatches whose work is known.
WaferRunResult run_pipeline(const std::vector<LayerPlan>& plans,
                            const std::vector<const MicrobatchWork*>& work, KernelTimer& timer,
                            const ScheduleOptions& opt, MoveMemo& moves);

// Both: the work of each lowered microbatch, then the pipeline.
WaferRunResult run_schedule(const std::vector<LayerPlan>& plans,
                            const std::vector<workloads::OperatorGraph>& mbs, KernelTimer& timer,
                            const ScheduleOptions& opt);

}  // namespace wse::wafer
