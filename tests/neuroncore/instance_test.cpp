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

// Round figures: 131.072 GB/s per link direction (256 KiB in 2 us), 1 us per hop, a
// setup of 0.5 us before the first message.
InstanceConfig torus(std::uint32_t x, std::uint32_t y) {
  InstanceConfig c;
  c.chips_x = x;
  c.chips_y = y;
  c.link_bandwidth = Bandwidth{131.072e9};
  c.link_latency = Duration{1e-6};
  c.collective_setup = Duration{0.5e-6};
  return c;
}

// An all-reduce of S = 1 MiB on the 4 chips of a 2 x 2 torus, one algorithm at a time.
// Chips are numbered x + 2y; in a ring of two, + and - reach the same chip over two links.

TEST(Collective, TorusAllReduceOnFourChipsByHand) {
  // Rings along each dimension, one round per phase, half of the data each way:
  //   reduce-scatter X: S / (2 x 2) = 256 KiB per direction: 2 us + 1 us hop = 3 us
  //   reduce-scatter Y: S / (2 x 4) = 128 KiB: 1 us + 1 us = 2 us
  //   all-gather Y 2 us, all-gather X 3 us: 0.5 + 10 = 10.5 us;
  // 4 rounds x 4 chips x 2 directions = 32 messages; nothing contends, so the alpha-beta
  // price is the same.
  const CollectiveResult r =
      run_collective(torus(2, 2), Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kTorus2d);
  EXPECT_EQ(r.time_ps, 10'500'000u);
  EXPECT_EQ(r.alpha_beta_ps, 10'500'000u);
  EXPECT_EQ(r.messages, 32u);
  EXPECT_EQ(r.rounds, 4u);
  EXPECT_EQ(r.algorithm, CollectiveAlgorithm::kTorus2d);
  // The halves: reduce-scatter 0.5 + 3 + 2, all-gather 0.5 + 2 + 3.
  EXPECT_EQ(
      run_collective(torus(2, 2), Collective::kReduceScatter, 1 << 20, CollectiveAlgorithm::kTorus2d).time_ps,
      5'500'000u);
  EXPECT_EQ(
      run_collective(torus(2, 2), Collective::kAllGather, 1 << 20, CollectiveAlgorithm::kTorus2d).time_ps,
      5'500'000u);
}

TEST(Collective, RingAllReduceOnFourChipsByHand) {
  // The snake 0 -> 1 -> 3 -> 2 -> 0 is a ring of neighbours; each chip sends to the next
  // over one link and to the previous over another. 2 (p - 1) = 6 rounds of
  // S / (2p) = 128 KiB each way: 1 us + 1 us hop = 2 us per round: 0.5 + 12 = 12.5 us;
  // 6 x 4 x 2 = 48 messages.
  const CollectiveResult r =
      run_collective(torus(2, 2), Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kRing);
  EXPECT_EQ(r.time_ps, 12'500'000u);
  EXPECT_EQ(r.alpha_beta_ps, 12'500'000u);
  EXPECT_EQ(r.messages, 48u);
  EXPECT_EQ(r.rounds, 6u);
}

TEST(Collective, HalvingDoublingAllReduceOnFourChipsByHand) {
  // Reduce-scatter: round 0 with chip ^ 1 (the X neighbour, half the ring of two away:
  // the S / 2 = 512 KiB go half each way, 256 KiB on each of two links): 2 us + 1 us;
  // round 1 with chip ^ 2 (the Y neighbour): S / 4 as 2 x 128 KiB: 1 us + 1 us. The
  // all-gather is the same rounds in reverse: 0.5 + 3 + 2 + 2 + 3 = 10.5 us, as the torus
  // rings (on 2 x 2 they move the same bytes over the same links);
  // 4 rounds x 4 chips x 2 parts = 32 messages.
  const CollectiveResult r =
      run_collective(torus(2, 2), Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kRdh);
  EXPECT_EQ(r.time_ps, 10'500'000u);
  EXPECT_EQ(r.messages, 32u);
  EXPECT_EQ(r.rounds, 4u);
}

TEST(Collective, MeshAllReduceOnFourChipsByHand) {
  // Reduce-scatter in one round: each chip sends S / 4 = 256 KiB to each other chip.
  // To its X neighbour 2 x 128 KiB (+X and -X), to its Y neighbour 2 x 128 KiB (+Y, -Y),
  // to the diagonal chip 4 x 64 KiB, X first then Y: (+X,+Y), (+X,-Y), (-X,+Y), (-X,-Y).
  // From the round's start, on a chip's +X link: its own 128 KiB [0, 1 us], then its two
  // diagonal parts [1, 1.5] and [1.5, 2]; their heads reach the X neighbour 1 us after
  // they entered, at 2 and 2.5. On the neighbour's +Y link (free since its own 128 KiB,
  // [0, 1]) two heads arrive at 2 (the (+X,+Y) and (-X,+Y) parts of the chip, over its +X
  // and -X links): [2, 2.5] and [2.5, 3]; on its -Y link two at 2.5: [2.5, 3], [3, 3.5],
  // delivered 1 us after the last byte: the last at 4.5 us. The direct parts arrive at
  // 2 us. The all-gather round is the same: 0.5 + 4.5 + 4.5 = 9.5 us; 4 chips x 8 parts
  // x 2 rounds = 64 messages. The alpha-beta price has no queueing: a round is the
  // diagonal's 2 hops + the 768 KiB a chip sends spread over its 4 links (192 KiB,
  // 1.5 us): 0.5 + 2 x 3.5 = 7.5 us.
  const CollectiveResult r =
      run_collective(torus(2, 2), Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kMesh);
  EXPECT_EQ(r.time_ps, 9'500'000u);
  EXPECT_EQ(r.alpha_beta_ps, 7'500'000u);
  EXPECT_EQ(r.messages, 64u);
  EXPECT_EQ(r.rounds, 2u);
}

TEST(Collective, AutoTakesTheFastestAlgorithm) {
  // 1 MiB on 2 x 2: mesh 9.5 us against 10.5 (rdh, torus2d) and 12.5 (ring).
  const CollectiveResult r = run_collective(torus(2, 2), Collective::kAllReduce, 1 << 20);
  EXPECT_EQ(r.algorithm, CollectiveAlgorithm::kMesh);
  EXPECT_EQ(r.time_ps, 9'500'000u);
  // 256 MiB on 4 x 4: the bandwidth term decides. Torus rings move 0.9375 S per link
  // direction over the two phases' links (S / 8 x 3 x 2 + S / 32 x 3 x 2), the single ring
  // (p - 1) / p S = 0.9375 S too but over 30 hops instead of 12; mesh and rdh send their
  // larger parts over several hops that other parts share.
  InstanceConfig big = torus(4, 4);
  const CollectiveResult t = run_collective(big, Collective::kAllReduce, 256ULL << 20);
  for (CollectiveAlgorithm a : kCollectiveAlgorithms) {
    EXPECT_LE(t.time_ps, run_collective(big, Collective::kAllReduce, 256ULL << 20, a).time_ps)
        << to_string(a);
  }
  // A forced algorithm is the one that runs.
  big.algorithm = CollectiveAlgorithm::kRing;
  EXPECT_EQ(run_collective(big, Collective::kAllReduce, 4096).algorithm, CollectiveAlgorithm::kRing);
}

TEST(Collective, AllReduceOnFourByFourPipelinesRingSteps) {
  // 16 MiB on 4 x 4 torus rings: three rounds per phase.
  //   X phases: S / 8 = 2 MiB per step = 16 us + 1 us hop; Y phases: S / 32 = 4 us + 1 us.
  //   0.5 + 3 x 17 + 3 x 5 + 3 x 5 + 3 x 17 = 132.5 us.
  const CollectiveResult r =
      run_collective(torus(4, 4), Collective::kAllReduce, 16 << 20, CollectiveAlgorithm::kTorus2d);
  EXPECT_EQ(r.time_ps, 132'500'000u);
  // Bus bandwidth = 2 (p - 1) / p x S / t.
  EXPECT_NEAR(r.bus_bandwidth, 2.0 * 15 / 16 * (16 << 20) / 132.5e-6, 1e3);
}

TEST(Collective, SmallMessagesAreLatencyBound) {
  // 4 KiB on 4 x 4: torus rings take twelve hops of 1 us (the bytes take nanoseconds);
  // mesh reaches every chip in one round of at most 2 + 2 hops: two rounds of ~4 us.
  const CollectiveResult t =
      run_collective(torus(4, 4), Collective::kAllReduce, 4096, CollectiveAlgorithm::kTorus2d);
  EXPECT_GT(t.time_ps, 12'500'000u);
  EXPECT_LT(t.time_ps, 12'600'000u);
  const CollectiveResult m = run_collective(torus(4, 4), Collective::kAllReduce, 4096);
  EXPECT_EQ(m.algorithm, CollectiveAlgorithm::kMesh);
  EXPECT_GT(m.time_ps, 8'500'000u);
  EXPECT_LT(m.time_ps, 9'500'000u);
}

TEST(Collective, HalvingDoublingNeedsPowerOfTwoSides) {
  EXPECT_FALSE(algorithm_applies(torus(4, 3), CollectiveAlgorithm::kRdh));
  EXPECT_TRUE(algorithm_applies(torus(4, 2), CollectiveAlgorithm::kRdh));
  EXPECT_THROW(run_collective(torus(4, 3), Collective::kAllReduce, 4096, CollectiveAlgorithm::kRdh),
               std::invalid_argument);
  // auto skips it: the 4 x 3 all-reduce still runs.
  EXPECT_GT(run_collective(torus(4, 3), Collective::kAllReduce, 4096).time_ps, 0u);
}

TEST(Collective, FloorIsTheBytesEachChipMustSendOverItsLinks) {
  // 2 x 2, 1 MiB all-reduce: each chip sends 2 x 3/4 x 1 MiB over 4 links of 131.072 GB/s
  // = 1.5 MiB / 524.288 GB/s = 3 us; all-gather and reduce-scatter half of it. A ring of
  // two chips along X has two useful links.
  EXPECT_NEAR(collective_floor_seconds(torus(2, 2), Collective::kAllReduce, 1 << 20), 3e-6, 1e-15);
  EXPECT_NEAR(collective_floor_seconds(torus(2, 2), Collective::kAllGather, 1 << 20), 1.5e-6, 1e-15);
  EXPECT_NEAR(collective_floor_seconds(torus(2, 1), Collective::kAllReduce, 1 << 20), 4e-6, 1e-15);
  EXPECT_EQ(collective_floor_seconds(torus(1, 1), Collective::kAllReduce, 1 << 20), 0.0);
}

// The same round figures on a switch of `chips` ports.
InstanceConfig switched(std::uint32_t chips) {
  InstanceConfig c = torus(chips, 1);
  c.topology = Topology::kSwitch;
  return c;
}

TEST(Collective, SwitchAllReduceOnFourChipsByHand) {
  // 1 MiB on 4 chips of a switch: every message crosses the sender's up link and the
  // receiver's down link (1 us each), cut through: a message of b bytes sent alone at T
  // holds the up link [T, T + b / B], the down link [T + 1 us, T + 1 us + b / B], and is
  // delivered 1 us after, T + 2 us + b / B.
  //   ring: 6 rounds; each chip sends 128 KiB (1 us) to the next and to the previous chip,
  //     one after the other on its up link [T, T + 1], [T + 1, T + 2]; a down link takes the
  //     first [T + 1, T + 2] and the second [T + 2, T + 3], delivered T + 4: 6 x 4 + 0.5
  //     = 24.5 us;
  //   mesh: 2 rounds; each chip sends 256 KiB (2 us) to each of the 3 others, up link
  //     [T, T + 2], [T + 2, T + 4], [T + 4, T + 6]; the receiver's down link takes them as
  //     they come, [T + 1, T + 3], [T + 3, T + 5], [T + 5, T + 7], the last delivered
  //     T + 8: 2 x 8 + 0.5 = 16.5 us;
  //   rdh: rounds of 512 KiB (4 us) to chip ^ 1, 256 KiB (2 us) to chip ^ 2, then the
  //     reverse: 1 + 4 + 1 = 6 us and 1 + 2 + 1 = 4 us each: 2 x (6 + 4) + 0.5 = 20.5 us;
  //   torus2d does not apply; auto takes the mesh.
  // Nothing contends beyond the up link, so every alpha-beta price (per round 2 hops +
  // the chip's bytes over its one port) equals the simulated time.
  const InstanceConfig sw = switched(4);
  const CollectiveResult ring =
      run_collective(sw, Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kRing);
  EXPECT_EQ(ring.time_ps, 24'500'000u);
  EXPECT_EQ(ring.alpha_beta_ps, 24'500'000u);
  const CollectiveResult mesh =
      run_collective(sw, Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kMesh);
  EXPECT_EQ(mesh.time_ps, 16'500'000u);
  EXPECT_EQ(mesh.alpha_beta_ps, 16'500'000u);
  const CollectiveResult rdh = run_collective(sw, Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kRdh);
  EXPECT_EQ(rdh.time_ps, 20'500'000u);
  EXPECT_EQ(rdh.alpha_beta_ps, 20'500'000u);
  EXPECT_FALSE(algorithm_applies(sw, CollectiveAlgorithm::kTorus2d));
  EXPECT_THROW(run_collective(sw, Collective::kAllReduce, 1 << 20, CollectiveAlgorithm::kTorus2d),
               std::invalid_argument);
  EXPECT_EQ(run_collective(sw, Collective::kAllReduce, 1 << 20).algorithm, CollectiveAlgorithm::kMesh);
  // Reduce-scatter and all-gather are the mesh's two rounds apart: 8.5 us each.
  EXPECT_EQ(run_collective(sw, Collective::kReduceScatter, 1 << 20, CollectiveAlgorithm::kMesh).time_ps,
            8'500'000u);
  EXPECT_EQ(run_collective(sw, Collective::kAllGather, 1 << 20, CollectiveAlgorithm::kMesh).time_ps,
            8'500'000u);
  // Floor: each chip sends 2 x 3/4 x 1 MiB through its one port: 1.5 MiB / 131.072 GB/s = 12 us.
  EXPECT_NEAR(collective_floor_seconds(sw, Collective::kAllReduce, 1 << 20), 12e-6, 1e-15);
  // Three chips: rdh does not apply.
  EXPECT_FALSE(algorithm_applies(switched(3), CollectiveAlgorithm::kRdh));
}

TEST(HardwareFiles, SwitchTopologyIsReadWithItsChipCount) {
  config::Document doc = config::parse("instance:\n  topology: switch\n  chips: 12\n", "t.yaml");
  config::Section root = doc.root();
  config::Section s = root.section("instance", "instance");
  const InstanceConfig c = read_instance_config(s);
  doc.finish();
  EXPECT_EQ(c.topology, Topology::kSwitch);
  EXPECT_EQ(c.chips(), 12u);
  EXPECT_EQ(c.links_per_chip(), 2u);
  // torus2d on a switch is bad input at its key.
  try {
    config::Document bad = config::parse(
        "instance:\n  topology: switch\n  chips: 4\n  collective_algorithm: torus2d\n", "b.yaml");
    config::Section r = bad.root();
    config::Section i = r.section("instance", "instance");
    read_instance_config(i);
    FAIL() << "no error";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("b.yaml:4"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("instance.collective_algorithm"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("torus2d needs topology torus"));
  }
}

TEST(HardwareFiles, Trn2ChipAndInstanceReadCompletely) {
  config::Document doc = config::load(wse::testing::source_path("configs/hardware/trn2_48xlarge.yaml"));
  config::Section root = doc.root();
  config::Section trn = root.section("trainium", "Trainium chip");
  const ChipConfig chip = read_chip_config(trn);
  config::Section inst = root.section("instance", "instance");
  const InstanceConfig i = read_instance_config(inst);
  config::Section pre = root.section("prefill", "transformer prefill");
  const PrefillConfig p = read_prefill_config(pre);
  doc.finish();                                            // every key in the files was read
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
  EXPECT_NEAR(i.link_latency.seconds, 1.5e-6, 1e-15);
  EXPECT_NEAR(i.collective_setup.seconds, 2.1e-6, 1e-15);
  EXPECT_EQ(i.algorithm, CollectiveAlgorithm::kAuto);
  EXPECT_NEAR(p.host_overhead.seconds, 437e-6, 1e-15);
  EXPECT_TRUE(p.async_execution);
}

TEST(HardwareFiles, Trn3ChipAndInstanceReadCompletely) {
  for (const char* file : {"configs/hardware/trn3_instance.yaml", "configs/hardware/trn3_ultraserver.yaml"}) {
    SCOPED_TRACE(file);
    config::Document doc = config::load(wse::testing::source_path(file));
    config::Section root = doc.root();
    config::Section trn = root.section("trainium", "Trainium chip");
    const ChipConfig chip = read_chip_config(trn);
    config::Section inst = root.section("instance", "instance");
    const InstanceConfig i = read_instance_config(inst);
    config::Section pre = root.section("prefill", "transformer prefill");
    const PrefillConfig p = read_prefill_config(pre);
    doc.finish();  // every key in the files was read
    EXPECT_EQ(chip.core.sbuf, Size{32ULL << 20});
    EXPECT_EQ(chip.core.tensor.moving_per_cycle_fp8, 4.0);
    EXPECT_NEAR(chip.hbm.peak_bandwidth().bytes_per_s, trainium3_hbm().peak_bandwidth().bytes_per_s, 1e3);
    EXPECT_EQ(chip.hbm.capacity(), Size{144ULL << 30});
    EXPECT_EQ(i.topology, Topology::kSwitch);
    EXPECT_EQ(i.chips(), std::string(file).find("ultraserver") != std::string::npos ? 144u : 16u);
    EXPECT_NEAR(i.link_bandwidth.bytes_per_s, 1024.0 * (1ULL << 30), 1.0);
    // TP 64 x LNC 2: 128 cores, 16 chips of the instance or of the UltraServer.
    EXPECT_EQ(p.tp_degree * p.lnc, 128u);
    const TrainiumPrefill prefill(chip, i, p);
    EXPECT_EQ(prefill.chips(), 16u);
  }
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

TEST(HardwareFiles, RdhOnATorusOfOddSideIsReportedAtItsKey) {
  try {
    config::Document doc =
        config::parse("instance:\n  torus: [4, 3]\n  collective_algorithm: rdh\n", "t.yaml");
    config::Section root = doc.root();
    config::Section s = root.section("instance", "instance");
    read_instance_config(s);
    FAIL() << "no error";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("t.yaml:3"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("instance.collective_algorithm"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("use auto, ring, mesh or torus2d"));
  }
}

}  // namespace
}  // namespace wse::neuron
