// The all-reduce of a row-parallel GEMM (collective_op.h): inside the chip through HBM and
// between the chips on the NeuronLink torus.
#include <gtest/gtest.h>

#include "neuroncore/transformer/collective_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

TEST(CollectiveOp, OneCoreHasNothingToReduce) {
  MappingContext ctx = context(exact());
  const EngineBusy b = CollectiveMapping(ctx).all_reduce(1 << 20);
  EXPECT_EQ(b.elapsed_ps, 0u);
  EXPECT_EQ(b.chip_runs, 0u);
}

TEST(CollectiveOp, InChipReduceScatterAddsTheOtherCoresSharesByHand) {
  // TP 8 x LNC 1 = one chip's 8 cores, 262,144 B of bf16 partial sums: each core's share is
  // 32,768 B = 16,384 values; it adds the 7 other cores' shares, each one vector instruction
  // of 16,384 bf16 values = 64 + 16,384 / 512 = 96 cycles at 0.96 GHz = 100,000 ps:
  // 700,000 ps per core. The all-gather only moves data; nothing crosses a link.
  MappingContext ctx = context(exact(8));
  CollectiveMapping c(ctx);
  EXPECT_DOUBLE_EQ(c.in_chip_reduce_scatter(262144).vector_ps, 700000.0);
  EXPECT_DOUBLE_EQ(c.in_chip_all_gather(262144).vector_ps, 0.0);
  const EngineBusy ar = c.all_reduce(262144);
  EXPECT_DOUBLE_EQ(ar.vector_ps, 700000.0);
  EXPECT_DOUBLE_EQ(ar.collective_ps, 0.0);
  EXPECT_EQ(ar.chip_runs, 2u);
}

TEST(CollectiveOp, BetweenTheChipsOnTheTorus) {
  // TP 16 x LNC 1 = 2 chips, a 2 x 1 sub-torus: the link part is the torus model's
  // collective of the same bytes, and its bandwidth floor collective_floor_seconds.
  MappingContext ctx = context(exact(16));
  ASSERT_EQ(ctx.chips(), 2u);
  InstanceConfig two;
  two.chips_x = 2;
  two.chips_y = 1;
  const std::uint64_t bytes = 128 * 1024 * 2;
  const CollectiveResult r = run_collective(two, Collective::kAllReduce, bytes);
  const EngineBusy l = CollectiveMapping(ctx).link_collective(Collective::kAllReduce, bytes);
  EXPECT_EQ(l.elapsed_ps, r.time_ps);
  EXPECT_DOUBLE_EQ(l.collective_ps, static_cast<double>(r.time_ps));
  EXPECT_DOUBLE_EQ(l.algorithm_ps[static_cast<std::size_t>(r.algorithm)], static_cast<double>(r.time_ps));
  EXPECT_DOUBLE_EQ(l.collective_floor_ps,
                   collective_floor_seconds(two, Collective::kAllReduce, bytes) * 1e12);
  // The whole all-reduce: reduce-scatter in the chip, the link collective, all-gather.
  CollectiveMapping c(ctx);
  EXPECT_EQ(c.all_reduce(bytes).elapsed_ps,
            c.in_chip_reduce_scatter(bytes).elapsed_ps + r.time_ps + c.in_chip_all_gather(bytes).elapsed_ps);
}

}  // namespace
}  // namespace wse::neuron
