// What every operator kind of the transformer mapping works on: the chip and the
// tensor-parallel group of an instance (how many chips, how many cores of one chip are
// simulated, the sub-torus of the group's chips), the configuration, and the caches shared
// by the operator kinds (simulated results by key, collectives by size). The operator
// kinds (gemm_op.h, attention_op.h, decode_attention_op.h, elementwise_op.h,
// collective_op.h, overlap_op.h, runtime_op.h) are small classes over one context;
// TrainiumPrefill (prefill.h) owns it and runs a pass with them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "neuroncore/core/chip_sim.h"
#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/core/program.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/operator_time.h"
#include "neuroncore/transformer/prefill_config.h"

namespace wse::neuron {

class MappingContext {
 public:
  // `chip` and `instance` as read from configs/hardware/trn2_48xlarge.yaml; the chip's HBM
  // fidelity is replaced by prefill.hbm_fidelity. Throws std::invalid_argument when the
  // tensor-parallel group does not fit the instance.
  MappingContext(const ChipConfig& chip, const InstanceConfig& instance, const PrefillConfig& prefill);

  const ChipConfig& chip() const { return chip_; }
  const InstanceConfig& instance() const { return instance_; }
  const PrefillConfig& cfg() const { return cfg_; }
  // The sub-torus of the chips in the group.
  const InstanceConfig& group() const { return group_; }
  std::uint32_t chips() const { return chips_; }
  // Cores of one chip simulated: min(P, cores per chip); chips are symmetric.
  std::uint32_t sim_cores() const { return sim_cores_; }
  // Start of core `c`'s share of the chip's HBM address space.
  std::uint64_t base(std::uint32_t c) const { return chip_.hbm.capacity().bytes / sim_cores_ * c; }

  // One chip run of a program per simulated core: its busy times per core (averaged), the
  // HBM's data-bus time, the matmul flops of the whole group.
  EngineBusy run_programs(const std::vector<Program>& programs) const;
  // The result under `key` in the reuse cache, or `simulate()` (then cached when reuse is
  // on); a cached result reports no instructions and no chip runs. `count_reuse`: a hit
  // counts as a reused operator (whole operators; not the sample points of one).
  template <typename F>
  EngineBusy cached(const std::string& key, F&& simulate, bool count_reuse = false) {
    if (cfg_.reuse) {
      if (auto it = op_cache_.find(key); it != op_cache_.end()) {
        if (count_reuse) ++reused_operators_;
        EngineBusy b = it->second;
        b.instructions = 0;
        b.chip_runs = 0;
        return b;
      }
    }
    const EngineBusy b = simulate();
    if (cfg_.reuse) op_cache_.emplace(key, b);
    return b;
  }
  // The smallest DMA piece of K/V loads and in-chip collectives that keeps the queues
  // ahead of the HBM (at least 4 KiB), or gemm_dma_piece when none does.
  std::uint64_t efficient_dma_piece() const;
  // One inter-chip collective of the group (cfg algorithm, auto: the fastest), memoised.
  const CollectiveResult& group_collective(Collective c, std::uint64_t bytes);

  // A pass starts: its new tokens (the sequences' sum), the reuse count from zero.
  void start_pass(std::uint64_t graph_tokens) {
    reused_operators_ = 0;
    graph_tokens_ = graph_tokens;
  }
  std::uint64_t graph_tokens() const { return graph_tokens_; }
  std::uint64_t reused_operators() const { return reused_operators_; }

 private:
  ChipConfig chip_;
  InstanceConfig instance_;
  PrefillConfig cfg_;
  InstanceConfig group_;
  std::uint32_t chips_ = 1;
  std::uint32_t sim_cores_ = 1;
  std::map<std::string, EngineBusy> op_cache_;
  std::map<std::pair<Collective, std::uint64_t>, CollectiveResult> collective_cache_;
  std::uint64_t reused_operators_ = 0;
  std::uint64_t graph_tokens_ = 0;
};

}  // namespace wse::neuron
