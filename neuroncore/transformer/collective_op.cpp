#include "neuroncore/transformer/collective_op.h"

#include <algorithm>
#include <vector>

#include "neuroncore/transformer/kernel_builders.h"

namespace wse::neuron {

namespace {

// Pieces per load of an in-chip reduce-scatter or all-gather of `share` bytes per core
// over c cores: each of a core's c - 1 loads takes enough queues that together they cover
// the core's queues, in pieces of at least `efficient` bytes when the share is large (a
// decode step's share is ~100 KiB: 4 KiB pieces would spend 3/4 of the time on
// instruction costs).
std::uint32_t in_chip_pieces_per_load(const ChipConfig& chip, std::uint32_t c, std::uint64_t share,
                                      std::uint64_t efficient) {
  const std::uint32_t queues = chip.core.dma.queues;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
      std::max<std::uint64_t>(queues / (c - 1), ceil_div(share, efficient)), 1, queues));
}

}  // namespace

EngineBusy CollectiveMapping::in_chip_reduce_scatter(std::uint64_t bytes) {
  // Each core reads its share of the other cores' partial sums, adds them (vector, fp32
  // accumulate of bf16 values), stores its share.
  const std::uint32_t c = ctx_.sim_cores();
  if (c <= 1) return {};
  const std::uint64_t share = ceil_div(bytes, c);
  const std::uint32_t per_load = in_chip_pieces_per_load(ctx_.chip(), c, share, ctx_.efficient_dma_piece());
  std::vector<Program> rs(c);
  for (std::uint32_t i = 0; i < c; ++i) {
    DmaEmitter dma{rs[i], ctx_.chip().core.dma.queues, 0, ctx_.base(i), ctx_.chip().hbm.capacity().bytes};
    std::vector<Program::Id> loads;
    for (std::uint32_t j = 0; j + 1 < c; ++j) {
      const auto l = dma.transfer(false, share, {}, per_load);
      const Program::Id add = rs[i].elementwise(Engine::kVector, share / 2, DType::kBf16);
      depend_all(rs[i], add, l);
      loads.push_back(add);
    }
    dma.transfer(true, share, loads);
  }
  return ctx_.run_programs(rs);
}

EngineBusy CollectiveMapping::in_chip_all_gather(std::uint64_t bytes) {
  // Each core loads the c - 1 other cores' shares.
  const std::uint32_t c = ctx_.sim_cores();
  if (c <= 1) return {};
  const std::uint64_t share = ceil_div(bytes, c);
  const std::uint32_t per_load = in_chip_pieces_per_load(ctx_.chip(), c, share, ctx_.efficient_dma_piece());
  std::vector<Program> ag(c);
  for (std::uint32_t i = 0; i < c; ++i) {
    DmaEmitter gather{ag[i], ctx_.chip().core.dma.queues, 0, ctx_.base(i), ctx_.chip().hbm.capacity().bytes};
    for (std::uint32_t j = 0; j + 1 < c; ++j) gather.transfer(false, share, {}, per_load);
  }
  return ctx_.run_programs(ag);
}

EngineBusy CollectiveMapping::link_collective(Collective c, std::uint64_t bytes) {
  EngineBusy b;
  if (ctx_.chips() <= 1) return b;
  const CollectiveResult& r = ctx_.group_collective(c, bytes);
  b.elapsed_ps = r.time_ps;
  b.collective_ps = static_cast<double>(r.time_ps);
  b.algorithm_ps[static_cast<std::size_t>(r.algorithm)] = static_cast<double>(r.time_ps);
  b.collective_floor_ps = collective_floor_seconds(ctx_.group(), c, bytes) * 1e12;
  b.link_ps = r.link_utilization * static_cast<double>(ctx_.group().chips() * ctx_.group().links_per_chip()) *
              static_cast<double>(r.time_ps);
  return b;
}

EngineBusy CollectiveMapping::all_reduce(std::uint64_t bytes) {
  // Reduce-scatter inside the chip through HBM, all-reduce between the chips on the
  // torus, all-gather inside the chip, one after another.
  EngineBusy b;
  if (ctx_.sim_cores() <= 1) return b;
  b += in_chip_reduce_scatter(bytes);
  b += link_collective(Collective::kAllReduce, bytes);
  b += in_chip_all_gather(bytes);
  return b;
}

}  // namespace wse::neuron
