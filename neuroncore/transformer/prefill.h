// The prefill (or decode step) of a transformer batch on a Trainium instance: every
// operator of a workloads::OperatorGraph lowered to NeuronCore programs, run on the chip
// model, with the tensor-parallel all-reduces as traffic on the NeuronLink torus.
//
// Mapping (docs/neuroncore.md, "Transformer prefill"):
//  - P = tp_degree x lnc physical cores take part; a logical core is `lnc` physical cores.
//    Chips are symmetric, so one chip (min(P, cores) cores sharing its HBM) is simulated
//    and its time stands for every chip of the group.
//  - GEMMs: column-parallel (N / P per core: q/k/v, gate/up, experts' gate/up, router,
//    LM head) or row-parallel (K / P per core: o_proj, down_proj), lowered with the tiled
//    GEMM of core/gemm.h, weights stationary (C^T = W^T X^T: the weight slice is the
//    128-column stationary side, tokens stream 512 at a time). `count` instances (experts)
//    run one after another. Token rows are simulated in blocks of gemm_token_block.
//  - After a row-parallel GEMM: all-reduce of the partial outputs = reduce-scatter inside
//    the chip through HBM (DMA + vector adds), all-reduce between chips on the torus
//    (instance/torus.h, link-level messages), all-gather inside the chip through HBM.
//  - GEMMs of few token rows (M <= one moving pass, 512: decode steps, the LM head of a
//    prefill) run as a weight-streaming kernel instead: the core's weight slice is cut into
//    large DMA instructions spread over the load queues (a share of the queues, in
//    proportion to the bytes, carries the output stores), streamed once through a ring of
//    SBUF buffers, each 128 x 128 weight tile stationary while the M tokens stream.
//  - Decode attention (query_len 1): the attention operators of one layer's decode
//    sequences run as one kernel. A chip holds the query heads of its logical cores (as
//    for prefill); its (sequence, kv head) pairs, each with all of the chip's query heads
//    of that kv head (GQA rows stacked), are dealt over the chip's physical cores (longest
//    first, to the least loaded core); each core streams the K and V blocks of its pairs
//    through a ring of SBUF buffers.
//  - Prefill attention (one operator per sequence): heads over logical cores, the 128-query tiles
//    of a head over the lnc physical cores of its logical core. Per query tile and block
//    of keys: QK^T matmuls, softmax (vector: max and subtract, plus the causal mask on
//    blocks that cross the diagonal; scalar: exp with row sums), PV matmuls accumulating in
//    PSUM; blocks above the diagonal are skipped; then a vector normalisation and a store.
//  - Element-wise operators (norms, RoPE, activations, residual adds, router, combine)
//    are sequence-parallel: each core takes 1/P of the values, in tiles (load, engine
//    passes, store). Embedding: one DMA gather per token row.
//  - Operators run one after another (each a fresh chip run: an operator boundary is a
//    synchronisation point). With `overlap`, a row-parallel GEMM of at least two chunks of
//    overlap_chunk_tokens rows, its all-reduce and the residual add and norm after it run
//    as a pipeline of token chunks: the all-reduce split sequence-parallel into a
//    reduce-scatter and an all-gather around the element-wise operators (on the chunk's
//    shard), the chip and the NeuronLink each working on one chunk at a time, so a
//    chunk's collective overlaps the next chunk's GEMM (overlap_makespan).
//  - Repeated work is simulated once (`reuse`): an operator or a whole decoder layer whose
//    key (every field that decides its time) was seen before takes the cached result; a
//    batched decode attention is keyed by its sorted sequence lengths.
//  - Token counts sampled (`token_grain` g > 0): an operator whose time depends on a
//    token count (GEMM rows, prefill attention chunk and offset, per-token element-wise
//    operators) is simulated only at sample points (token_sample_interval) and its busy
//    times are interpolated linearly between the two neighbouring points (bilinearly in
//    chunk and offset for attention); matmul flops are counted exactly for the true count.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "neuroncore/core/chip_sim.h"
#include "neuroncore/core/gemm.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "workloads/model/operators.h"

namespace wse::config {
class Section;
}

namespace wse::neuron {

struct PrefillConfig {
  std::uint32_t tp_degree = 64;  // logical cores a layer is sharded over (trn2.48xlarge: all)
  std::uint32_t lnc = 2;         // physical cores per logical core (Trainium2 default LNC=2)
  bool reuse = true;             // simulate identical layers / operators once
  // Consecutive column-parallel GEMMs of the same input (q/k/v, gate/up) run as one GEMM
  // of the summed N, as fused kernels do: the activations are read once.
  bool fuse_projections = true;
  std::uint64_t gemm_token_block = 16384;  // token rows of one simulated GEMM piece
  std::uint64_t elementwise_tile = 128 * 2048;  // values per tile of an element-wise operator
  std::uint32_t attention_key_block = 512;  // keys per QK^T matmul (one PSUM bank)
  // Smallest DMA instruction of a GEMM operand transfer: a 128 x 512 bf16 slice (128 KiB)
  // goes as one instruction, so the 600 ns instruction cost is amortised (the GEMM
  // lowering's 4 KiB default makes 8 KiB pieces that spend 2/3 of a queue's time on it).
  // Also the largest weight piece of the weight-streaming GEMM of few token rows.
  std::uint64_t gemm_dma_piece = 128 * 1024;
  HbmFidelity hbm_fidelity = HbmFidelity::kStreaming;  // for the whole-model runs
  // Token counts simulated only at sample points (token_sample_interval), times
  // interpolated between them; 0: every token count simulated exactly.
  std::uint64_t token_grain = 128;
  // The runtime around each pass (one graph invocation): see TrainiumPrefill::run. Off,
  // a pass is its operators alone.
  bool runtime = true;
  Duration host_overhead{437e-6};  // host work per invocation (dispatch, tensor allocation)
  bool async_execution = true;     // the host prepares the next invocation while this one runs
  std::uint32_t sampling_vector_passes = 2;  // over the logits: the max, then the scan to the sampled token
  // Row-parallel GEMMs of more than one chunk run as a pipeline of token chunks whose
  // inter-chip collectives overlap the next chunk's compute (docs/neuroncore.md, "Overlap").
  bool overlap = true;
  std::uint64_t overlap_chunk_tokens = 2048;  // token rows of one chunk of that pipeline
  std::uint32_t physical_cores() const { return tp_degree * lnc; }
};

// The two sample points around a token count x for a grain g > 0. The grid: steps of g up
// to 32 g, then 16 steps per octave (in [16 g 2^j, 16 g 2^(j+1)) steps of g 2^j). A count
// strictly between two grid points L and L + step is interpolated between L + 1 and
// L + step (the counts of (L, L + step] have the same number of 128-token tiles when the
// step is a multiple of 128); a grid point or L + 1 is its own sample (lo == hi == x).
// x < g gives {1, g}. grain 0: {x, x}.
struct SampleInterval {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  bool exact() const { return lo == hi; }
  double weight(std::uint64_t x) const {  // of hi
    return exact() ? 0.0 : static_cast<double>(x - lo) / static_cast<double>(hi - lo);
  }
};
SampleInterval token_sample_interval(std::uint64_t x, std::uint64_t grain);

// One token chunk of an overlapped row-parallel GEMM (PrefillConfig::overlap), in ps: the
// stages run in this order, each after the previous one of the chunk, on the chip or on
// the NeuronLink.
struct OverlapChunk {
  std::uint64_t gemm_ps = 0;     // chip: the GEMM on the chunk's rows (partial sums)
  std::uint64_t rs_chip_ps = 0;  // chip: reduce-scatter of the partial sums inside the chip, through HBM
  std::uint64_t rs_link_ps = 0;  // NeuronLink: reduce-scatter between the chips
  std::uint64_t shard_ps = 0;    // chip: the residual add and norm after the GEMM, on the chunk's shard
  std::uint64_t ag_link_ps = 0;  // NeuronLink: all-gather between the chips
  std::uint64_t ag_chip_ps = 0;  // chip: all-gather inside the chip, through HBM
};

// The end of the pipeline of `chunks` on two resources, the chip and the NeuronLink, each
// running one stage at a time, without preemption: whenever a resource is free it starts
// the stage that can start first (a stage waits for the previous stage of its chunk),
// ties to the lower chunk, then to the earlier stage. With one chunk: the sum of its stages.
std::uint64_t overlap_makespan(const std::vector<OverlapChunk>& chunks);

// Reads the `prefill:` section (configs/hardware/trn2_48xlarge.yaml).
PrefillConfig read_prefill_config(config::Section& s);

// Busy times of one engine class (per simulated core, averaged), in ps.
struct EngineBusy {
  std::uint64_t elapsed_ps = 0;  // time of the work (pieces add: they run one after another)
  double tensor_ps = 0;  // stream time weighted by the fraction of the array used
  double vector_ps = 0;
  double scalar_ps = 0;
  double gpsimd_ps = 0;
  double dma_ps = 0;     // averaged over the core's DMA queues
  double hbm_ps = 0;     // data-bus time of one chip's HBM
  double link_ps = 0;    // summed over the directed NeuronLink links of the group
  double collective_ps = 0;  // time spent in inter-chip collectives
  // collective_ps by the algorithm that ran (index: CollectiveAlgorithm, auto excluded).
  std::array<double, kCollectiveAlgorithms.size()> algorithm_ps{};
  double collective_floor_ps = 0;  // the collectives' bandwidth-only floor (collective_floor_seconds)
  double runtime_ps = 0;     // launch barrier, logits gather, sampling, host overhead not hidden
  std::uint64_t flops = 0;   // matmul flops of the whole group of cores
  std::uint64_t instructions = 0;  // simulated (not reused) instructions
  std::uint64_t chip_runs = 0;     // chip simulations run
  EngineBusy& operator+=(const EngineBusy& o);
  EngineBusy scaled(std::uint64_t times) const;  // a repeated piece of work
  // Busy times (elapsed included) interpolated between a and b, w in [0, 1] of the way to
  // b; flops left to the caller (counted exactly); instructions and chip runs summed
  // (what was simulated for the two points).
  static EngineBusy interpolated(const EngineBusy& a, const EngineBusy& b, double w);
};

struct OperatorTime {
  std::string name;  // fused operators are joined by '+'
  std::string kind;
  EngineBusy busy;   // busy.elapsed_ps: the operator's time (its all-reduces included)
};

struct LayerTime {
  std::int32_t layer = -1;  // -1: before the first layer (embedding) or after the last
  std::uint64_t start_ps = 0;
  std::uint64_t end_ps = 0;  // when the layer's output is ready, from the start
  bool reused = false;       // taken from an identical layer simulated before
  std::vector<OperatorTime> operators;  // in execution order
};

// The physical floor of a pass: each term a time the instance cannot beat.
struct TrainiumFloor {
  double compute_s = 0.0;     // matmul flops / (physical cores x tensor-engine peak of the weights' type)
  double hbm_s = 0.0;         // (weights + KV read + KV written) / chips / one chip's HBM peak
  double collective_s = 0.0;  // inter-chip collectives, bandwidth only (collective_floor_seconds)
  double step_s = 0.0;        // the largest of the three
  TrainiumFloor& operator+=(const TrainiumFloor& f) {
    compute_s += f.compute_s;
    hbm_s += f.hbm_s;
    collective_s += f.collective_s;
    step_s += f.step_s;
    return *this;
  }
};

struct PrefillResult {
  std::uint64_t total_ps = 0;
  TrainiumFloor floor;
  std::vector<LayerTime> layers;  // in execution order, including the -1 parts
  EngineBusy busy;
  std::uint32_t physical_cores = 0;
  std::uint32_t chips = 0;
  std::uint32_t links = 0;  // directed links of the chips' sub-torus
  std::uint64_t reused_layers = 0;
  std::uint64_t reused_operators = 0;
  double seconds() const { return static_cast<double>(total_ps) * 1e-12; }
  double tensor_utilization() const { return ratio(busy.tensor_ps); }
  double vector_utilization() const { return ratio(busy.vector_ps); }
  double scalar_utilization() const { return ratio(busy.scalar_ps); }
  double gpsimd_utilization() const { return ratio(busy.gpsimd_ps); }
  double dma_utilization() const { return ratio(busy.dma_ps); }
  double hbm_utilization() const { return ratio(busy.hbm_ps); }
  double link_utilization() const { return links == 0 ? 0.0 : ratio(busy.link_ps) / links; }

 private:
  double ratio(double busy_ps) const {
    return total_ps == 0 ? 0.0 : busy_ps / static_cast<double>(total_ps);
  }
};

// What one chip of the group holds in HBM.
struct HbmFootprint {
  std::uint64_t weight_bytes = 0;
  std::uint64_t kv_bytes = 0;
  std::uint64_t activation_bytes = 0;
  std::uint64_t total() const { return weight_bytes + kv_bytes + activation_bytes; }
};

class TrainiumPrefill {
 public:
  // `chip` and `instance` as read from configs/hardware/trn2_48xlarge.yaml; the chip's HBM
  // fidelity is replaced by prefill.hbm_fidelity. Throws std::invalid_argument when the
  // tensor-parallel group does not fit the instance.
  TrainiumPrefill(const ChipConfig& chip, const InstanceConfig& instance, const PrefillConfig& prefill);

  // Per chip: weights (model_weight_bytes, or the graph's when 0) and KV cache sharded
  // over the chips of the group, plus the largest operator's activations. Throws
  // CapacityError naming the parts and how much they exceed one chip's HBM.
  HbmFootprint check_capacity(const workloads::OperatorGraph& g, std::uint64_t model_weight_bytes = 0) const;

  PrefillResult run(const workloads::OperatorGraph& g, std::uint64_t model_weight_bytes = 0);
  // Lowers whole prompts of `prompt_tokens` and runs them, capacity checked against the
  // model's full weights.
  PrefillResult run(const workloads::TransformerModel& m, const std::vector<std::uint64_t>& prompt_tokens);

  // The chunks of the pipeline that ops[from] (a row-parallel GEMM) and the residual adds
  // and norms after it run as with `overlap` (their parts simulated, or from the cache);
  // empty when ops[from] does not run overlapped.
  std::vector<OverlapChunk> overlap_pipeline(const std::vector<workloads::Operator>& ops, std::size_t from);

  std::uint32_t simulated_cores() const { return sim_cores_; }
  std::uint32_t chips() const { return chips_; }
  // One chip's HBM peak, and one NeuronLink link's bandwidth in each direction: a
  // result's busy times (hbm_ps per chip, link_ps over the links) at these rates are the
  // bytes moved.
  double hbm_bytes_per_s() const { return chip_.hbm.peak_bandwidth().bytes_per_s; }
  double link_bytes_per_s() const { return group_.link_bandwidth.bytes_per_s; }

 private:
  EngineBusy run_operator(const workloads::Operator& op);
  EngineBusy run_gemm_op(const workloads::Operator& op);
  // A GEMM of `tokens` rows (K = k per core) runs as the weight-streaming kernel: tokens
  // within one moving pass, X^T and the C buffers within half of SBUF.
  bool streams_weights(std::uint64_t k, std::uint64_t tokens, DType t) const;
  EngineBusy run_attention(const workloads::Operator& op);
  // Prefill attention with token_grain: bilinear in (query_len, context_offset) between
  // the simulated corners of the sample cell.
  EngineBusy run_attention_sampled(const workloads::Operator& op);
  // Per-token operators (element-wise, embedding) with token_grain: linear in the batch's
  // token count between two sample operators of the same per-token shape.
  EngineBusy run_per_token_sampled(const workloads::Operator& op);
  EngineBusy run_per_token(const workloads::Operator& op);
  // The result under `key` in the reuse cache, or `simulate()` (then cached when reuse is
  // on); a cached result reports no instructions and no chip runs. `count_reuse`: a hit
  // counts as a reused operator (whole operators; not the sample points of one).
  template <typename F>
  EngineBusy cached(const std::string& key, F&& simulate, bool count_reuse = false);
  // The decode attention operators (query_len 1) of one layer as one kernel.
  EngineBusy run_decode_attention(const std::vector<workloads::Operator>& sequences);
  EngineBusy run_decode_attention_cached(const std::vector<workloads::Operator>& sequences);
  // A GEMM of `tokens` <= max_moving rows on every simulated core: C^T[out x tokens] =
  // W^T[out x k] X^T[k x tokens], the weights streamed once; `count` instances in one kernel.
  EngineBusy streamed_gemm(std::uint64_t out_features, std::uint64_t k, std::uint64_t tokens, DType t,
                           std::uint64_t count);
  EngineBusy run_elementwise(const workloads::Operator& op);
  EngineBusy run_embedding(const workloads::Operator& op);
  EngineBusy all_reduce(std::uint64_t bytes);
  // The two chip runs of an all-reduce of `bytes` inside the chip (through HBM).
  EngineBusy in_chip_reduce_scatter(std::uint64_t bytes);
  EngineBusy in_chip_all_gather(std::uint64_t bytes);
  // An inter-chip collective of the group with its busy times (collective, links, floor).
  EngineBusy link_collective(Collective c, std::uint64_t bytes);
  // ops[from] is a row-parallel GEMM that runs overlapped (overlap on, tiled, at least two
  // chunks, more than one chip): how many of the operators after it (residual adds and
  // norms over the same tokens) join its pipeline; -1 when it does not run overlapped.
  std::ptrdiff_t overlap_segment(const std::vector<workloads::Operator>& ops, std::size_t from) const;
  // The GEMM ops[from] and the `shard` operators after it as a pipeline of token chunks.
  // `pipeline`, when given, receives the chunks.
  EngineBusy run_overlapped(const std::vector<workloads::Operator>& ops, std::size_t from, std::size_t shard,
                            std::vector<OverlapChunk>* pipeline = nullptr);
  // One inter-chip collective of the group (cfg algorithm, auto: the fastest), memoised.
  const CollectiveResult& group_collective(Collective c, std::uint64_t bytes);
  // The runtime's work around a pass: the launch barrier before it; after it the logits'
  // all-gather, on-device sampling and the host overhead the device time does not hide.
  LayerTime runtime_before(std::uint64_t start_ps);
  LayerTime runtime_after(const workloads::OperatorGraph& g, std::uint64_t start_ps, std::uint64_t device_ps);
  TrainiumFloor floor_of(const workloads::OperatorGraph& g, const EngineBusy& busy) const;
  EngineBusy run_programs(const std::vector<Program>& programs);
  // The smallest DMA piece of K/V loads and in-chip collectives that keeps the queues
  // ahead of the HBM (at least 4 KiB), or gemm_dma_piece when none does.
  std::uint64_t efficient_dma_piece() const;
  EngineBusy gemm_piece(const GemmShape& s);
  // Start of core `c`'s share of the chip's HBM address space.
  std::uint64_t base(std::uint32_t c) const { return chip_.hbm.capacity().bytes / sim_cores_ * c; }

  ChipConfig chip_;
  InstanceConfig instance_;
  PrefillConfig cfg_;
  InstanceConfig group_;  // the sub-torus of the chips in the group
  std::uint32_t chips_ = 1;
  std::uint32_t sim_cores_ = 1;
  std::map<std::string, EngineBusy> op_cache_;
  std::map<std::pair<Collective, std::uint64_t>, CollectiveResult> collective_cache_;
  std::map<std::string, std::vector<OperatorTime>> layer_cache_;
  std::uint64_t reused_operators_ = 0;
  std::uint64_t graph_tokens_ = 0;  // new tokens of the graph being run (sequences' sum)
};

// Key of everything that decides an operator's time on a given configuration.
std::string operator_key(const workloads::Operator& op);
// Key of a batched decode attention: the shape of the first operator and the sorted key
// counts (kv_len) with the KV bytes of every sequence; the order of the sequences and
// their positions do not change the kernel's time.
std::string decode_attention_key(const std::vector<workloads::Operator>& sequences);
// A decode attention operator: one query token of one sequence.
bool is_decode_attention(const workloads::Operator& op);
// Matmul flops of one chip's cores (min(tp_degree x lnc, cores_per_chip)) for a prefill
// attention operator as run_attention issues them: whole key blocks of `key_block` from
// the window's edge to the diagonal, QK^T and PV.
std::uint64_t attention_matmul_flops(const workloads::Operator& op, std::uint32_t tp_degree, std::uint32_t lnc,
                                     std::uint32_t chip_cores, std::uint32_t q_tile, std::uint32_t key_block);

}  // namespace wse::neuron
