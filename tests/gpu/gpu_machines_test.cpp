// The engines of a GPU group with pipeline stages (apps/experiments/gpu_machines.h): each
// pass takes each stage when the stage is free, first come first served.
#include <vector>

#include <gtest/gtest.h>

#include "apps/experiments/gpu_machines.h"
#include "systemc_models/stats/stats.h"

namespace wse::experiments {
namespace {

// A pass of two stages of 10 and 20 ms with a 1 ms transfer between them, one decoder
// layer per stage, reserved twice at time 0 (two engines' passes):
//   the first: stage 0 from 0 to 10 ms, crosses until 11, stage 1 from 11 to 31: 31 ms,
//     its layers done at 10 and 31 ms as the pass computed them;
//   the second: stage 0 once the first leaves it, 10 to 20 ms, crosses until 21, waits
//     for stage 1 until 31, runs to 51: 51 ms; its layer 0 done 10 ms later than in the
//     pass (20 ms), its layer 1 20 ms later (51 ms).
TEST(GpuEngines, PassesShareTheStagesFirstComeFirstServed) {
  gpu::PassConfig pass;
  pass.pp_degree = 2;
  gpu::GpuPass runner(gpu::GpuConfig{}, gpu::NodeConfig{}, pass);
  const workloads::TransformerModel model;
  stats::Group group("gpu");
  GpuMachine machine(runner, model, group);
  gpu::GpuPassResult r;
  r.seconds = 0.031;
  r.stage_s = {0.010, 0.020};
  r.transfer_s = {0.001};
  std::vector<double> first{0.010, 0.031}, second = first;
  EXPECT_DOUBLE_EQ(machine.reserve(r, &first), 0.031);
  EXPECT_DOUBLE_EQ(first[0], 0.010);
  EXPECT_DOUBLE_EQ(first[1], 0.031);
  EXPECT_DOUBLE_EQ(machine.reserve(r, &second), 0.051);
  EXPECT_DOUBLE_EQ(second[0], 0.020);
  EXPECT_DOUBLE_EQ(second[1], 0.051);
  // One stage: the pass's own time.
  gpu::GpuPassResult one;
  one.seconds = 0.007;
  one.stage_s = {0.007};
  EXPECT_EQ(machine.reserve(one, nullptr), 0.007);
}

}  // namespace
}  // namespace wse::experiments
