#include "neuroncore/transformer/mapping_context.h"

#include <algorithm>
#include <stdexcept>

#include "neuroncore/transformer/kernel_builders.h"

namespace wse::neuron {

MappingContext::MappingContext(const ChipConfig& chip, const InstanceConfig& instance,
                               const PrefillConfig& prefill)
    : chip_(chip), instance_(instance), cfg_(prefill) {
  chip_.hbm_fidelity = cfg_.hbm_fidelity;
  const std::uint32_t p = cfg_.physical_cores();
  const std::uint32_t available = chip_.cores * instance_.chips();
  if (cfg_.tp_degree == 0 || cfg_.lnc == 0)
    throw std::invalid_argument("prefill: tp_degree and lnc must be >= 1");
  if (p > available) {
    throw std::invalid_argument("prefill: tp_degree " + std::to_string(cfg_.tp_degree) + " x lnc " +
                                std::to_string(cfg_.lnc) + " = " + std::to_string(p) +
                                " physical cores, but the instance has " + std::to_string(available));
  }
  if (p > chip_.cores && p % chip_.cores != 0) {
    throw std::invalid_argument("prefill: " + std::to_string(p) +
                                " physical cores is not a whole number of " + std::to_string(chip_.cores) +
                                "-core chips");
  }
  chips_ = p > chip_.cores ? p / chip_.cores : 1;
  sim_cores_ = std::min(p, chip_.cores);
  // The group's chips as a sub-torus: whole rows of X first.
  group_ = instance_;
  group_.chips_x = std::min(instance_.chips_x, chips_);
  group_.chips_y = chips_ / group_.chips_x;
  if (group_.chips_x * group_.chips_y != chips_ || group_.chips_y > instance_.chips_y) {
    throw std::invalid_argument("prefill: " + std::to_string(chips_) + " chips do not form a sub-torus of " +
                                std::to_string(instance_.chips_x) + " x " +
                                std::to_string(instance_.chips_y));
  }
  if (!algorithm_applies(group_, group_.algorithm)) {
    throw std::invalid_argument(
        "prefill: the group's " + std::to_string(group_.chips_x) + " x " + std::to_string(group_.chips_y) +
        " chips cannot run the collective algorithm " + std::string(to_string(group_.algorithm)) +
        " (instance.collective_algorithm); use auto, ring, mesh or torus2d");
  }
  if (cfg_.attention_key_block == 0 || cfg_.attention_key_block > chip_.core.tensor.max_moving ||
      cfg_.gemm_token_block == 0 || cfg_.elementwise_tile == 0) {
    throw std::invalid_argument("prefill: attention_key_block must be in 1.." +
                                std::to_string(chip_.core.tensor.max_moving) +
                                ", gemm_token_block and elementwise_tile >= 1");
  }
}

EngineBusy MappingContext::run_programs(const std::vector<Program>& programs) const {
  ChipSim sim(chip_);
  const ChipResult r = sim.run(programs);
  EngineBusy b;
  const double n = static_cast<double>(programs.size());
  for (const CoreResult& c : r.cores) {
    b.tensor_ps += c.tensor_full_array_ps / n;
    b.vector_ps += static_cast<double>(c.vector_busy_ps) / n;
    b.scalar_ps += static_cast<double>(c.scalar_busy_ps) / n;
    b.gpsimd_ps += static_cast<double>(c.gpsimd_busy_ps) / n;
    b.dma_ps += static_cast<double>(c.dma_busy_ps) / chip_.core.dma.queues / n;
    b.flops += c.flops * chips_;
  }
  for (const Program& p : programs) b.instructions += p.size();
  b.hbm_ps = static_cast<double>(r.hbm_busy_ps) / r.hbm_lanes;
  b.chip_runs = 1;
  b.elapsed_ps = r.end_ps;
  return b;
}

std::uint64_t MappingContext::efficient_dma_piece() const {
  // When the queues cannot outrun the HBM at all (Trainium3: "DMA 4.9 TB/s" against 4.9
  // TB/s of HBM), no piece is large enough: pieces as large as allowed, gemm_dma_piece.
  const std::uint64_t efficient = smallest_efficient_dma_piece(chip_);
  return efficient == 0 ? cfg_.gemm_dma_piece : std::max<std::uint64_t>(efficient, 4096);
}

const CollectiveResult& MappingContext::group_collective(Collective c, std::uint64_t bytes) {
  const auto key = std::make_pair(c, bytes);
  if (auto it = collective_cache_.find(key); it != collective_cache_.end()) return it->second;
  return collective_cache_.emplace(key, run_collective(group_, c, bytes)).first->second;
}

}  // namespace wse::neuron
