// The prefill (or decode step) of a transformer batch on a Trainium instance: every
// operator of a workloads::OperatorGraph lowered to NeuronCore programs, run on the chip
// model, with the tensor-parallel all-reduces as traffic on the NeuronLink torus.
//
// Mapping (docs/neuroncore.md, "Transformer prefill"):
//  - P = tp_degree x lnc physical cores take part; a logical core is `lnc` physical cores.
//    Chips are symmetric, so one chip (min(P, cores) cores sharing its HBM) is simulated
//    and its time stands for every chip of the group (mapping_context.h).
//  - Each operator kind is a class of its own over that context: GEMMs (gemm_op.h),
//    prefill attention (attention_op.h), the decode attentions of a layer as one kernel
//    (decode_attention_op.h), element-wise operators and the embedding (elementwise_op.h),
//    the all-reduce of a row-parallel GEMM's partial sums (collective_op.h), a row-parallel
//    GEMM's collective overlapped with the next chunk's compute (overlap_op.h), the runtime
//    around a pass (runtime_op.h).
//  - Operators run one after another (each a fresh chip run: an operator boundary is a
//    synchronisation point), but for the overlapped segments.
//  - Repeated work is simulated once (`reuse`): an operator or a whole decoder layer whose
//    key (operator_keys.h: every field that decides its time) was seen before takes the
//    cached result; a batched decode attention is keyed by its sorted sequence lengths.
//  - Token counts sampled (`token_grain` g > 0, token_sampling.h): an operator whose time
//    depends on a token count (GEMM rows, prefill attention chunk and offset, per-token
//    element-wise operators) is simulated only at sample points and its busy times are
//    interpolated linearly between the two neighbouring points (bilinearly in chunk and
//    offset for attention); matmul flops are counted exactly for the true count.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "neuroncore/core/chip_sim.h"
#include "neuroncore/core/gemm.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/attention_op.h"
#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_keys.h"
#include "neuroncore/transformer/operator_time.h"
#include "neuroncore/transformer/overlap_op.h"
#include "neuroncore/transformer/prefill_config.h"
#include "neuroncore/transformer/token_sampling.h"
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"

namespace wse::neuron {

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
  double ratio(double busy_ps) const { return total_ps == 0 ? 0.0 : busy_ps / static_cast<double>(total_ps); }
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
  // The same without the capacity check: for a graph of which the group holds a part (a
  // pipeline stage's layers; the caller checks that part, pipeline_op.h).
  PrefillResult run_unchecked(const workloads::OperatorGraph& g);
  // Lowers whole prompts of `prompt_tokens` and runs them, capacity checked against the
  // model's full weights.
  PrefillResult run(const workloads::TransformerModel& m, const std::vector<std::uint64_t>& prompt_tokens);

  // The chunks of the pipeline that ops[from] (a row-parallel GEMM) and the residual adds
  // and norms after it run as with `overlap` (their parts simulated, or from the cache);
  // empty when ops[from] does not run overlapped.
  std::vector<OverlapChunk> overlap_pipeline(const std::vector<workloads::Operator>& ops, std::size_t from);

  std::uint32_t simulated_cores() const { return ctx_.sim_cores(); }
  std::uint32_t chips() const { return ctx_.chips(); }
  // One chip's HBM peak, and one NeuronLink link's bandwidth in each direction: a
  // result's busy times (hbm_ps per chip, link_ps over the links) at these rates are the
  // bytes moved.
  double hbm_bytes_per_s() const { return ctx_.chip().hbm.peak_bandwidth().bytes_per_s; }
  double link_bytes_per_s() const { return ctx_.group().link_bandwidth.bytes_per_s; }

 private:
  // One operator by its kind (through the reuse cache).
  EngineBusy run_operator(const workloads::Operator& op);
  TrainiumFloor floor_of(const workloads::OperatorGraph& g, const EngineBusy& busy) const;

  MappingContext ctx_;
  std::map<std::string, std::vector<OperatorTime>> layer_cache_;
};

}  // namespace wse::neuron
