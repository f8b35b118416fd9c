// A forward pass (a prefill batch or a decode step) of a transformer on a group of
// `tp_degree` x `pp_degree` GPUs: `pp_degree` pipeline stages of contiguous decoder layers,
// each on `tp_degree` GPUs with tensor parallelism (a tensor-parallel group may span several
// nodes, tp_degree a multiple of the node's GPUs: its all-reduces are hierarchical,
// NVSwitch then EFA, gpu/node/nvswitch.h). Every operator of a
// workloads::OperatorGraph becomes a kernel of one GPU's share of the work, timed from
// the GPU's structure (gpu/core/gemm.h, the HBM pipe), and the all-reduces of tensor
// parallelism run on the node's NVSwitch (gpu/node/nvswitch.h). docs/gpu.md gives the
// equations; in short:
//  - GEMMs: column-parallel (N / tp per GPU: q/k/v, gate/up, experts' gate/up, router,
//    LM head) or row-parallel (K / tp: o_proj, down_proj, followed by an all-reduce of
//    the M x N output); q/k/v and gate/up fused into one GEMM each (`fuse_projections`);
//    each timed by best_gemm over the configured CTA tiles.
//  - Prefill attention (one operator per sequence), FlashAttention-style: one CTA per
//    (query tile of `attention_query_tile` rows, head of this GPU), looping over key
//    blocks of `attention_key_block` up to the causal diagonal (whole blocks: the masked
//    part of a diagonal block is computed); CTAs placed longest first on the least
//    loaded SM; time max(that makespan, its bytes through HBM).
//  - Decode attention: the decode sequences of a layer as one kernel; each (sequence,
//    KV head) pair's query heads padded to `decode_query_rows` rows, its key blocks spread
//    over all SMs (split-KV); time max(compute, the KV bytes through HBM). A speculative
//    verification pass (phase "verify") runs its sequences' k + 1 tokens so, each pair's
//    query heads x k + 1 rows padded likewise.
//  - Element-wise operators are memory-bound: their bytes through HBM; rope and the
//    activation are split over the GPUs (heads, intermediate columns), norms, residual
//    adds, embedding, router and expert combine run whole on every GPU.
//  - Every kernel adds `kernel_launch`; kernels run one after another.
//  - A decoder layer equal to the previous one but for its index takes its times.
//  - Stages run one after another (one microbatch: a decode token needs every layer);
//    between two, the activations cross to the next stage's GPUs (stage_transfer: EFA
//    when the boundary is between nodes, else NVLink).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "gpu/core/gemm.h"
#include "gpu/core/gpu_config.h"
#include "gpu/node/nvswitch.h"
#include "workloads/model/operators.h"

namespace wse::config {
class Section;
}

namespace wse::gpu {

// The pipeline stage of decoder layer `layer` when `layers` layers are split into `pp`
// contiguous stages, the first layers mod pp stages one layer longer (as Trainium's
// neuron::stage_of_layer).
std::uint32_t stage_of_layer(std::uint32_t layer, std::uint32_t layers, std::uint32_t pp);

struct PassConfig {
  std::uint32_t tp_degree = 8;
  std::uint32_t pp_degree = 1;
  // The kernel library's CTA tiles (m x n x k), tried in this order for every GEMM.
  std::vector<CtaTile> gemm_tiles = {{128, 256, 64}, {128, 128, 64}, {64, 128, 64}};
  std::uint32_t attention_query_tile = 128;
  std::uint32_t attention_key_block = 128;
  std::uint32_t decode_query_rows = 64;
  Duration kernel_launch{1e-6};
  bool fuse_projections = true;
};

// Reads a `gpu_pass:` section.
PassConfig read_pass_config(config::Section& s);

// The physical floor of a pass on the group: each term a time it cannot beat.
struct GpuFloor {
  double compute_s = 0.0;     // matrix flops / (tp x the GPU's dense peak for the weights' type)
  double hbm_s = 0.0;         // (weights + KV read + KV written) / tp / one GPU's HBM peak
  double collective_s = 0.0;  // all-reduces (and stage transfers) on NVLink, bandwidth only
  double efa_s = 0.0;         // between nodes: all-reduces' and stage transfers' EFA, bandwidth only
  double step_s = 0.0;        // the largest of the four
  GpuFloor& operator+=(const GpuFloor& f) {
    compute_s += f.compute_s;
    hbm_s += f.hbm_s;
    collective_s += f.collective_s;
    efa_s += f.efa_s;
    step_s += f.step_s;
    return *this;
  }
};

// Busy seconds of one GPU of each stage, summed over the stages (all GPUs of a stage do
// the same work): the group's GPUs together are busy tp_degree x these; one GPU on
// average these / pp_degree.
struct GpuBusy {
  double tensor_s = 0.0;  // matrix flops of the GPU / its dense peak: time at full rate
  double hbm_s = 0.0;     // bytes / the HBM pipe's streaming bandwidth
  double nvlink_s = 0.0;  // all-reduces and stage transfers in the node
  double efa_s = 0.0;     // their phases between nodes
  double launch_s = 0.0;  // kernel launches
  std::array<double, kNodeAlgorithms.size()> algorithm_s{};  // nvlink_s by the algorithm that ran
  std::uint64_t kernels = 0;
  // The work behind the busy times (the energy model's counts, apps/experiments/energy.h).
  double flops = 0.0;              // matrix FLOPs of the GPU
  std::uint64_t hbm_bytes = 0;     // bytes of the GPU's HBM, read and written
  std::uint64_t nvlink_bytes = 0;  // all-reduce buffers sent: the floor's S per all-reduce
  std::uint64_t efa_bytes = 0;     // bytes the GPU sent over its EFA rail
  GpuBusy& operator+=(const GpuBusy& o);
};

struct GpuPassResult {
  double seconds = 0.0;
  std::vector<double> layer_done_s;  // per decoder layer: when its output is ready
  std::vector<double> stage_s;       // per pipeline stage: its kernels' time
  std::vector<double> transfer_s;    // per stage boundary: the activations' crossing
  GpuBusy busy;
  GpuFloor floor;
  std::uint64_t reused_layers = 0;
};

class GpuPass {
 public:
  // Throws std::invalid_argument unless tp_degree divides the node's GPUs or is a multiple
  // of them, pp_degree > 1 has tp_degree dividing them, and the group (tp x pp) divides
  // the node's GPUs or is a multiple of them.
  GpuPass(const GpuConfig& gpu, const NodeConfig& node, const PassConfig& pass);
  GpuPassResult run(const workloads::OperatorGraph& g);
  // GPUs of a stage's tensor-parallel group (a result's busy counts are one such GPU's per stage).
  std::uint32_t tp_degree() const { return cfg_.tp_degree; }
  std::uint32_t pp_degree() const { return cfg_.pp_degree; }
  // Nodes a tensor-parallel group spans (1 when it fits one node).
  std::uint32_t tp_nodes() const { return tp_nodes_; }
  const HbmPipe& hbm() const { return hbm_; }
  // One GPU's share of a GEMM operator (column- or row-parallel).
  GemmShape shard(const workloads::Operator& op) const;
  const GemmTiming& gemm(const GemmShape& s);
  // Compute time of one prefill attention operator on one GPU (the CTA makespan).
  double attention_compute_s(const workloads::Operator& op);

 private:
  struct Part {
    double seconds = 0.0;
    GpuBusy busy;
    double collective_floor_s = 0.0;
    double efa_floor_s = 0.0;
  };
  // `verify`: a speculative verification pass (graph phase "verify"), whose attention of
  // each cached sequence's k + 1 tokens runs in the batched decode kernel.
  Part run_ops(const std::vector<workloads::Operator>& ops, std::size_t from, std::size_t to, bool verify);
  // A kernel of `flops` matrix FLOPs of type `t` (its tensor-core busy time is flops / the
  // peak for t) moving `hbm_bytes`.
  void kernel(Part& p, double compute_s, double flops, workloads::DType t, std::uint64_t hbm_bytes) const;
  void all_reduce(Part& p, std::uint64_t bytes) const;
  void add_collective(Part& p, const NodeCollective& c) const;
  void decode_attention(Part& p, const std::vector<workloads::Operator>& seqs) const;

  GpuConfig gpu_;
  NodeConfig node_;
  PassConfig cfg_;
  HbmPipe hbm_;
  std::uint32_t tp_nodes_ = 1;
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::uint32_t, int>, GemmTiming>
      gemm_cache_;
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint32_t, std::uint32_t, std::uint32_t,
                      std::uint32_t, std::uint32_t, int>,
           double>
      attention_cache_;
};

}  // namespace wse::gpu
