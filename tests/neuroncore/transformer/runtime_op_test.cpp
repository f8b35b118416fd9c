// The runtime around a pass (runtime_op.h): the launch barrier and the host overhead.
#include <gtest/gtest.h>

#include "neuroncore/transformer/runtime_op.h"
#include "tests/neuroncore/transformer/op_test_util.h"

namespace wse::neuron {
namespace {

using namespace testing_ops;

TEST(RuntimeOp, LaunchBarrierIsAFourByteAllReduceBetweenTheChips) {
  // One chip: no barrier. The whole trn2.48xlarge (TP 64 x LNC 2, 16 chips): an
  // all-reduce of one 4-byte flag on the 4 x 4 torus.
  MappingContext one = context(exact(8));
  EXPECT_TRUE(RuntimeMapping(one).before(0).operators.empty());
  MappingContext all = context(exact(64, 2));
  const LayerTime lt = RuntimeMapping(all).before(1000);
  ASSERT_EQ(lt.operators.size(), 1u);
  EXPECT_EQ(lt.operators[0].name, "runtime.launch_barrier");
  const CollectiveResult r = run_collective(InstanceConfig{}, Collective::kAllReduce, 4);
  EXPECT_EQ(lt.end_ps, 1000 + r.time_ps);
}

TEST(RuntimeOp, HostOverheadIsHiddenBehindTheDeviceWhenAsynchronous) {
  // A graph without an LM head: only the host's 437 us per invocation. Asynchronous: the
  // part the device's pass does not hide (437 - 400 = 37 us after a 400 us pass, none after
  // 500 us); synchronous: all of it.
  workloads::OperatorGraph g;
  MappingContext ctx = context(exact());
  const LayerTime a = RuntimeMapping(ctx).after(g, 0, 400'000'000);
  ASSERT_EQ(a.operators.size(), 1u);
  EXPECT_EQ(a.operators[0].name, "runtime.host");
  EXPECT_EQ(a.end_ps, 37'000'000u);
  EXPECT_TRUE(RuntimeMapping(ctx).after(g, 0, 500'000'000).operators.empty());
  PrefillConfig sync = exact();
  sync.async_execution = false;
  MappingContext s = context(sync);
  EXPECT_EQ(RuntimeMapping(s).after(g, 0, 500'000'000).end_ps, 437'000'000u);
}

}  // namespace
}  // namespace wse::neuron
