// The SRD engine under a fault schedule (efa_config.h: EfaFaults, PathOutage, LossBurst;
// docs/faults.md), given beside the network's configuration: a path that is down carries
// nothing and SRD routes around it, or holds its packets while no path is up; a loss
// burst drops packets only where and when it is scheduled. Exact times are derived from
// the uncontended write of srd_engine_test.cpp (UncontendedWriteCompletesAtHandDerivedTime).
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "efa_link/simple_config.h"
#include "efa_link/srd_engine.h"

namespace wse::efa {
namespace {

using wse::efa::testing::simple_config;
using wse::efa::testing::write;

double busy(const SrdEngine& e, const std::string& path, const std::string& stat) {
  for (const auto& g : e.stats().children()) {
    if (g.name() != "fabric") continue;
    for (const auto& p : g.children()) {
      if (p.name() != path) continue;
      for (const auto& st : p.stats())
        if (st->name() == stat) return dynamic_cast<const stats::Utilization&>(*st).busy_seconds();
    }
  }
  return -1.0;
}

// Fault-free, the 9192 B write (3 packets) is in place at 13,532,480 ps and completes at
// 24,532,480 ps. With its only path down from 0 to 250 us, the adapter holds the first
// packet until 250 us; nothing else is in the network, so every later time moves by
// exactly 250,000,000 ps: in place at 263,532,480, complete at 274,532,480 ps. Nothing is
// lost or sent twice. The same whether the outage names path 0 or every path.
TEST(SrdFaults, WriteWaitsExactlyTheOutageWhenNoPathIsUp) {
  for (const bool all_paths : {true, false}) {
    const EfaNetworkConfig cfg = simple_config();
    EfaFaults faults;
    faults.path_down.push_back(PathOutage{all_paths, 0, Duration{0}, Duration{250e-6}});
    SrdEngine e(cfg, faults);
    e.post(write(9192), 0);
    e.run();
    ASSERT_EQ(e.completions().size(), 1u);
    const Completion& c = e.completions()[0];
    EXPECT_TRUE(c.ok) << c.error;
    EXPECT_EQ(c.in_place_ps, 263'532'480u);
    EXPECT_EQ(c.completed_ps, 274'532'480u);
    EXPECT_EQ(c.packets_sent, 3u);
    EXPECT_EQ(e.packets_lost(), 0u);
    EXPECT_EQ(e.packets_retransmitted(), 0u);
  }
}

// An outage that ends before the write is posted changes nothing.
TEST(SrdFaults, OutageBeforeTheWriteChangesNothing) {
  const EfaNetworkConfig cfg = simple_config();
  EfaFaults faults;
  faults.path_down.push_back(PathOutage{true, 0, Duration{0}, Duration{5e-6}});
  SrdEngine e(cfg, faults);
  e.post(write(9192), 5'000'000);
  e.run();
  ASSERT_EQ(e.completions().size(), 1u);
  EXPECT_EQ(e.completions()[0].completed_ps, 5'000'000u + 24'532'480u);
}

// Two paths of equal latency, round robin, path 0 down for the whole write: the spray
// would send packets 0 and 2 over path 0, and every packet finds path 0 next in turn, so
// all 3 go over path 1 (3 rerouted). A path is faster (40 ps/B) than the port (80 ps/B),
// so one path carries the train as the single path of the fault-free case does: the
// same completion, 24,532,480 ps. Path 0 carries nothing: 0 s busy; path 1 carries all
// 9,384 wire bytes: 9,384 x 40 ps = 375,360 ps.
TEST(SrdFaults, SprayRoutesAroundAPathThatIsDown) {
  EfaNetworkConfig cfg = simple_config();
  cfg.fabric.paths = 2;
  cfg.srd.path_selection = PathSelection::RoundRobin;
  EfaFaults faults;
  faults.path_down.push_back(PathOutage{false, 0, Duration{0}, Duration{10.0}});
  SrdEngine e(cfg, faults);
  e.post(write(9192), 0);
  e.run();
  ASSERT_EQ(e.completions().size(), 1u);
  EXPECT_EQ(e.completions()[0].completed_ps, 24'532'480u);
  EXPECT_EQ(e.packets_rerouted(), 3u);
  EXPECT_EQ(e.packets_lost(), 0u);
  EXPECT_NEAR(busy(e, "path0", "forward"), 0.0, 1e-18);
  EXPECT_NEAR(busy(e, "path1", "forward"), 375'360e-12, 1e-18);

  // Adaptive selection routes around it as well.
  cfg.srd.path_selection = PathSelection::Adaptive;
  SrdEngine a(cfg, faults);
  a.post(write(9192), 0);
  a.run();
  EXPECT_EQ(a.completions()[0].completed_ps, 24'532'480u);
  EXPECT_NEAR(busy(a, "path0", "forward"), 0.0, 1e-18);
}

// A loss burst drops packets only inside its window and on its target.
TEST(SrdFaults, LossBurstHitsOnlyItsWindowAndTarget) {
  EfaNetworkConfig cfg = simple_config();
  cfg.senders = 2;  // machines 0, 1 send; machine 2 receives
  cfg.srd.retransmit_timeout = Duration{50e-6};
  cfg.srd.retry_budget = 50;
  const std::uint64_t bytes = 1 << 20;  // 256 packets

  // Fault-free reference.
  SrdEngine ref(cfg);
  ref.post(write(bytes, 0, 2), 0);
  ref.run();
  const std::uint64_t t0 = ref.completions()[0].completed_ps;

  // Half the packets through sender 0's adapters are lost during the write.
  EfaFaults burst;
  burst.loss_bursts.push_back(
      LossBurst{0.5, LossBurst::kAny, 0, LossBurst::kAny, Duration{0}, Duration{1.0}});
  SrdEngine hit(cfg, burst);
  hit.post(write(bytes, 0, 2), 0);
  hit.run();
  ASSERT_EQ(hit.completions().size(), 1u);
  EXPECT_TRUE(hit.completions()[0].ok) << hit.completions()[0].error;
  EXPECT_GT(hit.packets_lost(), 0u);
  EXPECT_GT(hit.packets_retransmitted(), 0u);
  EXPECT_GT(hit.completions()[0].completed_ps, t0);
  EXPECT_EQ(hit.bytes_placed(), bytes);

  // The same burst on sender 1 (not in this write), on the wrong adapter, or in a window
  // after the write: exactly the fault-free write.
  std::vector<LossBurst> misses = {
      LossBurst{0.5, LossBurst::kAny, 1, LossBurst::kAny, Duration{0}, Duration{1.0}},
      LossBurst{0.5, LossBurst::kAny, 0, 0, Duration{1.0}, Duration{2.0}},
      LossBurst{0.5, LossBurst::kAny, LossBurst::kAny, LossBurst::kAny, Duration{1.0}, Duration{2.0}},
  };
  for (const LossBurst& m : misses) {
    SrdEngine e(cfg, EfaFaults{{}, {m}});
    e.post(write(bytes, 0, 2), 0);
    e.run();
    EXPECT_EQ(e.packets_lost(), 0u);
    EXPECT_EQ(e.completions()[0].completed_ps, t0);
  }
}

TEST(SrdFaults, InvalidSchedulesAreRejected) {
  auto rejects = [](const EfaFaults& f, const std::string& what) {
    try {
      SrdEngine e(simple_config(), f);
      ADD_FAILURE() << "accepted: " << what;
    } catch (const std::invalid_argument& err) {
      EXPECT_NE(std::string(err.what()).find(what), std::string::npos) << err.what();
    }
  };
  rejects(EfaFaults{{PathOutage{false, 3, Duration{0}, Duration{1e-3}}}, {}},
          "efa_path_down: path 3 does not exist");
  rejects(EfaFaults{{}, {LossBurst{0.1, LossBurst::kAny, 7, LossBurst::kAny, Duration{0}, Duration{1e-3}}}},
          "efa_loss_burst: machine 7 does not exist");
  rejects(EfaFaults{{},
                    {LossBurst{1.0, LossBurst::kAny, LossBurst::kAny, LossBurst::kAny, Duration{0},
                               Duration{1e-3}}}},
          "efa_loss_burst: probability must be in [0, 1)");
}

// The schedule is an argument beside the configuration, which it leaves as it was: one
// configuration gives a faulted engine and a fault-free one. With its only path down
// from 0 to 250 us the 9192 B write completes at 274,532,480 ps (the first test); the
// fault-free engine built from the same configuration afterwards completes it at
// 24,532,480 ps, as srd_engine_test.cpp's uncontended write; the faulted engine keeps
// the schedule (faults()) and a configuration equal to the one given (paths, seed).
TEST(SrdFaults, TheScheduleIsGivenBesideTheConfigurationAndLeavesItAlone) {
  const EfaNetworkConfig cfg = simple_config();
  const EfaFaults faults{{PathOutage{true, 0, Duration{0}, Duration{250e-6}}}, {}};
  SrdEngine faulted(cfg, faults);
  faulted.post(write(9192), 0);
  faulted.run();
  SrdEngine clean(cfg);
  clean.post(write(9192), 0);
  clean.run();
  EXPECT_EQ(faulted.completions().at(0).completed_ps, 274'532'480u);
  EXPECT_EQ(clean.completions().at(0).completed_ps, 24'532'480u);
  ASSERT_EQ(faulted.faults().path_down.size(), 1u);
  EXPECT_EQ(faulted.faults().path_down[0].until.seconds, 250e-6);
  EXPECT_TRUE(clean.faults().empty());
  EXPECT_EQ(faulted.config().fabric.paths, cfg.fabric.paths);
  EXPECT_EQ(faulted.config().fabric.faults.size(), 0u);
  EXPECT_EQ(faulted.config().srd.seed, cfg.srd.seed);
}

}  // namespace
}  // namespace wse::efa
