// Overlap of a row-parallel GEMM's collective with compute (PrefillConfig::overlap;
// docs/neuroncore.md, "Overlap"): a row-parallel GEMM of at least two chunks of
// overlap_chunk_tokens rows, its all-reduce and the residual add and norm after it run as
// a pipeline of token chunks, the all-reduce split sequence-parallel into a reduce-scatter
// and an all-gather around the element-wise operators (on the chunk's shard), the chip and
// the NeuronLink each working on one chunk at a time, so that a chunk's collective overlaps
// the next chunk's GEMM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "neuroncore/transformer/mapping_context.h"
#include "neuroncore/transformer/operator_time.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

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

class OverlapMapping {
 public:
  explicit OverlapMapping(MappingContext& ctx) : ctx_(ctx) {}

  // ops[from] is a row-parallel GEMM that runs overlapped (overlap on, tiled, at least two
  // chunks, more than one chip): how many of the operators after it (residual adds and
  // norms over the same tokens) join its pipeline; -1 when it does not run overlapped.
  std::ptrdiff_t segment(const std::vector<workloads::Operator>& ops, std::size_t from) const;
  // The GEMM ops[from] and the `shard` operators after it as a pipeline of token chunks.
  // `pipeline`, when given, receives the chunks.
  EngineBusy run(const std::vector<workloads::Operator>& ops, std::size_t from, std::size_t shard,
                 std::vector<OverlapChunk>* pipeline = nullptr);
  // The chunks of the pipeline that ops[from] and the operators after it run as (their
  // parts simulated, or from the cache); empty when ops[from] does not run overlapped.
  std::vector<OverlapChunk> pipeline(const std::vector<workloads::Operator>& ops, std::size_t from);

 private:
  MappingContext& ctx_;
};

}  // namespace wse::neuron
