// NeuronLink collectives as messages on the torus links, and the hardware files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/hbm/hbm_presets.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/prefill.h"
#include "systemc_models/config/config.h"
#include "util/systemc_test.h"

namespace wse::neuron {
namespace {

// Round figures: 131.072 GB/s per link direction (256 KiB in 2 us), 1 us per hop.
InstanceConfig torus(std::uint32_t x, std::uint32_t y) {
  InstanceConfig c;
  c.chips_x = x;
  c.chips_y = y;
  c.link_bandwidth = Bandwidth{131.072e9};
  c.link_latency = Duration{1e-6};
  return c;
}

TEST(Collective, AllReduceOnTwoByTwoTorus) {
  // 1 MiB on 2 x 2: each phase is one step per direction (rings of two).
  //   reduce-scatter X: S / (2 x 2) = 256 KiB per direction: 2 us + 1 us hop
  //   reduce-scatter Y: S / (2 x 4) = 128 KiB: 1 us + 1 us
  //   all-gather Y 2 us, all-gather X 3 us: 10 us in all;
  // 4 chips x 2 directions x 4 phases = 32 messages.
  const CollectiveResult r = run_collective(torus(2, 2), Collective::kAllReduce, 1 << 20);
  EXPECT_EQ(r.time_ps, 10'000'000u);
  EXPECT_EQ(r.messages, 32u);
  EXPECT_EQ(run_collective(torus(2, 2), Collective::kReduceScatter, 1 << 20).time_ps, 5'000'000u);
  EXPECT_EQ(run_collective(torus(2, 2), Collective::kAllGather, 1 << 20).time_ps, 5'000'000u);
}

TEST(Collective, AllReduceOnFourByFourPipelinesRingSteps) {
  // 16 MiB on 4 x 4: rings of four, three steps per phase.
  //   X phases: S / 8 = 2 MiB per step = 16 us + 1 us hop; Y phases: S / 32 = 4 us + 1 us.
  //   3 x 17 + 3 x 5 + 3 x 5 + 3 x 17 = 132 us.
  const CollectiveResult r = run_collective(torus(4, 4), Collective::kAllReduce, 16 << 20);
  EXPECT_EQ(r.time_ps, 132'000'000u);
  // Bus bandwidth = 2 (p - 1) / p x S / t.
  EXPECT_NEAR(r.bus_bandwidth, 2.0 * 15 / 16 * (16 << 20) / 132e-6, 1e3);
}

TEST(Collective, SmallMessagesAreLatencyBound) {
  // 4 KiB: twelve hops of 1 us dominate (the bytes take nanoseconds).
  const CollectiveResult r = run_collective(torus(4, 4), Collective::kAllReduce, 4096);
  EXPECT_GT(r.time_ps, 12'000'000u);
  EXPECT_LT(r.time_ps, 12'100'000u);
}

TEST(HardwareFiles, Trn2ChipAndInstanceReadCompletely) {
  config::Document doc =
      config::load(wse::testing::source_path("configs/hardware/trn2_48xlarge.yaml"));
  config::Section root = doc.root();
  config::Section trn = root.section("trainium", "Trainium chip");
  const ChipConfig chip = read_chip_config(trn);
  config::Section inst = root.section("instance", "instance");
  const InstanceConfig i = read_instance_config(inst);
  config::Section pre = root.section("prefill", "transformer prefill");
  const PrefillConfig p = read_prefill_config(pre);
  doc.finish();  // every key in the files was read
  EXPECT_EQ(p.tp_degree * p.lnc, chip.cores * i.chips());  // TP over all the instance's cores
  EXPECT_EQ(p.hbm_fidelity, HbmFidelity::kStreaming);
  EXPECT_EQ(p.gemm_dma_piece, 128u * 1024u);
  EXPECT_EQ(chip.cores, 8u);
  EXPECT_EQ(chip.core.sbuf, Size{24ULL << 20});
  EXPECT_EQ(chip.core.dma.queues, 16u);
  EXPECT_NEAR(chip.core.dma.bandwidth_per_queue.bytes_per_s * 128, 3.5e12, 1.0);
  EXPECT_EQ(chip.core.tensor.moving_per_cycle_fp8, 2.0);
  EXPECT_EQ(chip.hbm.burst_ps(), trainium2_hbm().burst_ps());
  EXPECT_EQ(i.chips(), 16u);
  EXPECT_NEAR(i.link_bandwidth.bytes_per_s, 128.0 * (1ULL << 30), 1.0);
}

TEST(HardwareFiles, Trn3ChipAndInstanceReadCompletely) {
  config::Document doc =
      config::load(wse::testing::source_path("configs/hardware/trn3_instance.yaml"));
  config::Section root = doc.root();
  config::Section trn = root.section("trainium", "Trainium chip");
  const ChipConfig chip = read_chip_config(trn);
  config::Section inst = root.section("instance", "instance");
  read_instance_config(inst);
  doc.finish();
  EXPECT_EQ(chip.core.sbuf, Size{32ULL << 20});
  EXPECT_EQ(chip.core.tensor.moving_per_cycle_fp8, 4.0);
  EXPECT_NEAR(chip.hbm.peak_bandwidth().bytes_per_s, trainium3_hbm().peak_bandwidth().bytes_per_s, 1e3);
  EXPECT_EQ(chip.hbm.capacity(), Size{144ULL << 30});
}

TEST(HardwareFiles, BadTorusIsReportedAtItsKey) {
  try {
    config::Document doc = config::parse("instance:\n  torus: [4, 0]\n", "t.yaml");
    config::Section root = doc.root();
    config::Section s = root.section("instance", "instance");
    read_instance_config(s);
    FAIL() << "no error";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("instance.torus"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("two positive chip counts"));
  }
}

}  // namespace
}  // namespace wse::neuron
