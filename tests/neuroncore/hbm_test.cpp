// HBM model: exact command timing for simple cases (derived by hand from the HBM3
// parameters of hardware.md: tCK 625 ps, tCL 20, tRCD 31, tRP 26, tRAS 45, tRTP 9,
// tRRD_S 4, tFAW 24, tRFC 416, tREFI 6240 cycles, burst 2 tCK = 1250 ps at 6400 MT/s),
// contention, backpressure, refresh, the reference efficiencies, and the config reader.
#include <memory>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <tlm_utils/simple_initiator_socket.h>

#include "neuroncore/hbm/hbm.h"
#include "neuroncore/hbm/hbm_channel.h"
#include "neuroncore/hbm/hbm_presets.h"
#include "neuroncore/hbm/hbm_traffic.h"
#include "systemc_models/config/config.h"
#include "util/systemc_test.h"

namespace wse::neuron {
namespace {

constexpr std::uint64_t kTck = 625;  // ps

HbmChannel::Access access(std::uint64_t tag, std::uint32_t row, std::uint8_t sid, std::uint8_t bank_group,
                          std::uint8_t bank = 0, std::uint8_t pseudo_channel = 0) {
  return HbmChannel::Access{tag, row, pseudo_channel, sid, bank_group, bank, false};
}

struct Arrival {
  std::uint64_t at_ps;
  HbmChannel::Access a;
};

// Feeds arrivals in time order and returns completion time by tag.
std::vector<std::uint64_t> run_channel(const HbmConfig& cfg, const std::vector<Arrival>& in) {
  HbmChannel ch(cfg, 0);
  std::vector<std::uint64_t> done(in.size(), 0);
  for (const Arrival& x : in) {
    ch.advance(x.at_ps);
    ch.enqueue(x.at_ps, x.a);
  }
  ch.advance(1'000'000'000);  // 1 ms
  ch.drain_completions(1'000'000'000, [&](const HbmChannel::Completion& c) { done[c.tag] = c.done_ps; });
  EXPECT_EQ(ch.outstanding(), 0u);
  return done;
}

TEST(HbmChannel, ReadToClosedBankTakesActivateReadAndBurst) {
  // ACT at 0; RD at tRCD = 31 tCK; data ends tCL + burst later: (31 + 20) x 625 + 1250.
  const auto done = run_channel(hbm3_reference(), {{0, access(0, 7, 0, 0)}});
  EXPECT_EQ(done[0], 51 * kTck + 1250);  // 33125 ps
}

TEST(HbmChannel, RowHitNeedsOnlyTheReadCommand) {
  // Second read to the open row arrives at 100 ns (a tCK edge): RD at once, done 20 tCK
  // + burst later.
  const auto done = run_channel(hbm3_reference(), {{0, access(0, 7, 0, 0)}, {100'000, access(1, 7, 0, 0)}});
  EXPECT_EQ(done[1], 100'000 + 20 * kTck + 1250);  // 113750 ps
}

TEST(HbmChannel, RowConflictPaysPrechargeActivateRead) {
  // Row 8 of the bank holding open row 7, arriving at 100 ns (tRAS long past): PRE at
  // 100 ns, ACT tRP later, RD tRCD later: (26 + 31 + 20) x 625 + 1250 = 49375 ps,
  // hardware.md's "about tRP + tRCD + tCL + burst, roughly 50 ns".
  const auto done = run_channel(hbm3_reference(), {{0, access(0, 7, 0, 0)}, {100'000, access(1, 8, 0, 0)}});
  EXPECT_EQ(done[1] - 100'000, 77 * kTck + 1250);
}

TEST(HbmChannel, ConflictWaitsForOlderRowHitAndTras) {
  // Both at 0, same bank, rows 1 and 2. ACT row 1 at 0, RD at 31 (done 53 tCK). PRE no
  // earlier than tRAS = 45 and RD + tRTP = 40: at 45. ACT no earlier than PRE + tRP = 71
  // and the first ACT + tRC = 72: at 72; RD at 103; done 125 tCK.
  const auto done = run_channel(hbm3_reference(), {{0, access(0, 1, 0, 0)}, {0, access(1, 2, 0, 0)}});
  EXPECT_EQ(done[0], 53 * kTck);
  EXPECT_EQ(done[1], 125 * kTck);
}

TEST(HbmChannel, FifthActivateWaitsForFourActivateWindow) {
  // Five reads to closed banks in five bank groups (SID 0 groups 0-3, SID 1 group 0).
  // ACTs at 0, 4, 8, 12 (tRRD_S); the fifth would go at 16 but tFAW puts it at 24.
  // RDs at 31, 35, 39, 43 and 24 + 31 = 55; done 22 tCK later (tCL + burst).
  const auto done = run_channel(hbm3_reference(), {{0, access(0, 1, 0, 0)},
                                                   {0, access(1, 1, 0, 1)},
                                                   {0, access(2, 1, 0, 2)},
                                                   {0, access(3, 1, 0, 3)},
                                                   {0, access(4, 1, 1, 0)}});
  EXPECT_EQ(done[3], 65 * kTck);
  EXPECT_EQ(done[4], 77 * kTck);  // 48125 ps; without tFAW it would be 69 tCK
}

TEST(HbmChannel, FullQueueHoldsRequestUntilAColumnCommandFreesAnEntry) {
  // Queue depth 2: the third read enters the scheduler when the first RD issues (31 tCK);
  // the command bus is free from 32: ACT at 32, RD at 63, done at 85 tCK. With room in
  // the queue it would be ACT 8, RD 39, done 61 tCK.
  HbmConfig cfg = hbm3_reference();
  cfg.queue_depth = 2;
  const auto done =
      run_channel(cfg, {{0, access(0, 1, 0, 0)}, {0, access(1, 1, 0, 1)}, {0, access(2, 1, 0, 2)}});
  EXPECT_EQ(done[2], 85 * kTck);
  const auto free_done = run_channel(
      hbm3_reference(), {{0, access(0, 1, 0, 0)}, {0, access(1, 1, 0, 1)}, {0, access(2, 1, 0, 2)}});
  EXPECT_EQ(free_done[2], 61 * kTck);
}

TEST(HbmChannel, ReadArrivingWhenRefreshIsDueWaitsTrfc) {
  // Channel 0 pseudo-channel 0 first refreshes at tREFI = 3.9 us. A read arriving then
  // waits for the refresh (banks closed, tRFC = 260 ns), then ACT, RD: 260 ns + 51 tCK
  // + burst.
  const std::uint64_t t = 6240 * kTck;
  const auto done = run_channel(hbm3_reference(), {{t, access(0, 1, 0, 0)}});
  EXPECT_EQ(done[0] - t, 416 * kTck + 51 * kTck + 1250);  // 293125 ps
  HbmConfig no_refresh = hbm3_reference();
  no_refresh.refresh = false;
  EXPECT_EQ(run_channel(no_refresh, {{t, access(0, 1, 0, 0)}})[0] - t, 51 * kTck + 1250);
}

TEST(HbmAddressMap, RoundTripsAndInterleavesChannelsFirst) {
  const HbmConfig cfg = trainium2_hbm();
  const HbmAddressMap map(cfg);
  for (std::uint64_t a :
       std::vector<std::uint64_t>{0, 32, 4096, 123456789ULL * 32, cfg.capacity().bytes - 32}) {
    EXPECT_EQ(map.encode(map.decode(a)), a);
  }
  // Default mapping: stack, then channel, then pseudo-channel, then bank group vary
  // fastest.
  EXPECT_EQ(map.decode(32).stack, 1u);
  EXPECT_EQ(map.decode(32 * 4).channel, 1u);
  EXPECT_EQ(map.decode(32 * 64).pseudo_channel, 1u);
  EXPECT_EQ(map.decode(32 * 128).bank_group, 1u);
  EXPECT_EQ(cfg.rows(), 24576u);  // 24 GiB per stack / (1 KiB x 32 banks x 32 PCs)
}

TEST(HbmConfig, TrainiumPinRateGivesTheStatedBandwidth) {
  EXPECT_NEAR(trainium2_hbm().peak_bandwidth().bytes_per_s, 2.9e12, 1e3);
  EXPECT_NEAR(hbm3_reference().peak_bandwidth().bytes_per_s, 819.2e9, 1e3);
  EXPECT_EQ(hbm3_reference().burst_ps(), 1250u);
  // 2.9 TB/s over 4096 pins is 5.66 Gb/s per pin: a 32 B burst takes 1412 ps, and the
  // command clock slows in proportion (625 ps x 6.4 / 5.66 = 706 ps) so that a burst is
  // still 2 tCK. Durations in ns stay: tFAW 24 x 625 = 15 ns -> ceil(15 / 0.706) = 22.
  const HbmConfig t2 = trainium2_hbm();
  EXPECT_EQ(t2.burst_ps(), 1412u);
  EXPECT_EQ(t2.tck_ps(), 706u);
  EXPECT_EQ(t2.timing.tFAW, 22u);
  EXPECT_EQ(t2.timing.tCCD_S, 2u);
  EXPECT_EQ(t2.timing.tRCD_RD, 28u);  // 19.375 ns / 0.706 ns = 27.4, rounded up
  EXPECT_EQ(t2.timing.tREFI, 5524u);  // 3.9 us / 0.706 ns, rounded down
}

TEST(HbmConfig, RejectsInconsistentOrganisation) {
  HbmConfig c = hbm3_reference();
  c.dq_bits = 64;
  EXPECT_THAT([&] { c.validate(); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr("burst_length")));
  c = hbm3_reference();
  c.address_mapping.pop_back();
  EXPECT_THAT([&] { c.validate(); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr("lacks 'stack'")));
}

// The reference figures of a cycle-accurate HBM3 simulator with the same parameters
// (hardware.md / Ramulator 2, FR-FCFS, 128-entry queues): sequential 85-91% of peak,
// uniform random 32 B reads 30-33% (tFAW), ~50 ns unloaded random read latency.
TEST(HbmTraffic, SequentialReadsReachNearPeakAtOneChannel) {
  HbmTrafficSpec spec;
  spec.scope = HbmScope::kOneChannel;
  spec.requests = 20000;
  const HbmTrafficResult r = run_hbm_traffic(hbm3_reference(), spec);
  EXPECT_GT(r.efficiency, 0.85);
  EXPECT_LT(r.efficiency, 0.933);  // cannot beat 1 - tRFC / tREFI
}

TEST(HbmTraffic, RandomReadsAreLimitedByTheActivateWindow) {
  HbmTrafficSpec spec;
  spec.pattern = HbmPattern::kRandom;
  spec.scope = HbmScope::kOneChannel;
  spec.requests = 20000;
  const HbmTrafficResult r = run_hbm_traffic(hbm3_reference(), spec);
  // Four 2-tCK bursts per 24-tCK window = 1/3, less refresh.
  EXPECT_GT(r.efficiency, 0.28);
  EXPECT_LT(r.efficiency, 1.0 / 3.0);
}

TEST(HbmTraffic, UnloadedRandomReadLatencyIsAboutFiftyNanoseconds) {
  // One read at a time to random addresses. Without refresh nearly every read finds
  // another row open in its bank: PRE + ACT + RD = 49.375 ns (a few row hits and
  // first touches of closed banks pull the mean slightly lower).
  HbmConfig cfg = hbm3_reference();
  cfg.refresh = false;
  HbmTrafficSpec spec;
  spec.pattern = HbmPattern::kRandom;
  spec.outstanding = 1;
  spec.requests = 20000;
  const HbmTrafficResult no_refresh = run_hbm_traffic(cfg, spec);
  EXPECT_GT(no_refresh.mean_latency_s, 47e-9);
  EXPECT_LE(no_refresh.mean_latency_s, 49.375e-9);
  // With refresh, every refresh (each 3.9 us) closes all rows, and one read at a time
  // touches each of the 1024 banks only every ~35 us: most reads find their bank closed
  // (ACT + RD = 33.125 ns), a few wait for a refresh.
  const HbmTrafficResult with_refresh = run_hbm_traffic(hbm3_reference(), spec);
  EXPECT_LT(with_refresh.mean_latency_s, 40e-9);
  EXPECT_GT(with_refresh.mean_latency_s, 33.125e-9);
}

// --- The SystemC module ------------------------------------------------------------

class HbmModule : public wse::testing::SystemCTest {};

struct BlockingReader : sc_core::sc_module {
  SC_HAS_PROCESS(BlockingReader);
  tlm_utils::simple_initiator_socket<BlockingReader> socket;
  std::uint64_t address;
  std::uint64_t done_ps = 0;
  BlockingReader(const sc_core::sc_module_name& n, std::uint64_t addr)
      : sc_core::sc_module(n), socket("socket"), address(addr) {
    SC_THREAD(run);
  }
  void run() {
    tlm::tlm_generic_payload p;
    unsigned char buf[32];
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_address(address);
    p.set_data_ptr(buf);
    p.set_data_length(32);
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    socket->b_transport(p, d);
    EXPECT_EQ(p.get_response_status(), tlm::TLM_OK_RESPONSE);
    done_ps = sc_core::sc_time_stamp().value();
  }
};

TEST_F(HbmModule, TwoInitiatorsOnOneBankSerializeOnTheRowConflict) {
  // Same timing as ConflictWaitsForOlderRowHitAndTras, through TLM b_transport from two
  // initiators: one is served at 53 tCK, the other (other row, same bank) at 125 tCK.
  Hbm hbm("hbm", hbm3_reference());
  HbmCoordinates a;
  a.row = 1;
  HbmCoordinates b = a;
  b.row = 2;
  BlockingReader r0("r0", hbm.system().address_map().encode(a));
  BlockingReader r1("r1", hbm.system().address_map().encode(b));
  r0.socket.bind(hbm.socket);
  r1.socket.bind(hbm.socket);
  run_to_end();
  EXPECT_EQ(std::min(r0.done_ps, r1.done_ps), 53 * kTck);
  EXPECT_EQ(std::max(r0.done_ps, r1.done_ps), 125 * kTck);
  const stats::Group& g = hbm.stats();
  EXPECT_EQ(g.name(), "hbm");
}

// Streams `count` sequential reads of `bytes` with `window` in flight, answering from
// nb_transport_bw.
struct StreamReader : sc_core::sc_module {
  SC_HAS_PROCESS(StreamReader);
  tlm_utils::simple_initiator_socket<StreamReader> socket;
  std::vector<tlm::tlm_generic_payload> payloads;
  std::uint64_t next_address = 0;
  std::uint64_t bytes;
  std::uint64_t remaining;
  std::uint64_t completed = 0;
  std::uint64_t last_done_ps = 0;
  unsigned char buf[64] = {};
  StreamReader(const sc_core::sc_module_name& n, std::uint64_t b, std::uint64_t count, std::size_t window)
      : sc_core::sc_module(n), socket("socket"), payloads(window), bytes(b), remaining(count) {
    socket.register_nb_transport_bw(this, &StreamReader::nb_transport_bw);
    SC_METHOD(start);
  }
  void send(tlm::tlm_generic_payload& p) {
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_address(next_address);
    next_address += bytes;
    p.set_data_ptr(buf);
    p.set_data_length(static_cast<unsigned>(bytes));
    tlm::tlm_phase phase = tlm::BEGIN_REQ;
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    --remaining;
    EXPECT_EQ(socket->nb_transport_fw(p, phase, d), tlm::TLM_UPDATED);
    EXPECT_EQ(phase, tlm::END_REQ);
  }
  void start() {
    for (auto& p : payloads) {
      if (remaining > 0) send(p);
    }
  }
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload& p, tlm::tlm_phase& phase, sc_core::sc_time&) {
    EXPECT_EQ(phase, tlm::BEGIN_RESP);
    ++completed;
    last_done_ps = sc_core::sc_time_stamp().value();
    if (remaining > 0) send(p);
    return tlm::TLM_COMPLETED;
  }
};

TEST_F(HbmModule, NonBlockingStreamRunsNearPeakAndReportsUtilization) {
  // Sequential 64 B reads over the 16 channels of one stack, 256 in flight: the data
  // buses stay busy except for refresh and row switches.
  Hbm hbm("hbm", hbm3_reference());
  StreamReader reader("reader", 64, 20000, 256);
  reader.socket.bind(hbm.socket);
  run_to_end();
  EXPECT_EQ(reader.completed, 20000u);
  const double seconds = static_cast<double>(reader.last_done_ps) * 1e-12;
  const double achieved = 20000.0 * 64 / seconds;
  EXPECT_GT(achieved / 819.2e9, 0.85);
  const auto utils = stats::utilizations({&hbm.stats()}, seconds);
  ASSERT_FALSE(utils.empty());
  EXPECT_EQ(utils.front().first, "hbm.channel0.data_bus");
  EXPECT_NEAR(utils.back().second, achieved / 819.2e9, 0.01);  // "hbm.data_bus"
}

TEST(HbmConfigReader, Trn2FileMatchesThePresetUsedByTheBenches) {
  config::Document doc = config::load(wse::testing::source_path("configs/hardware/trn2.yaml"));
  config::Section root = doc.root();
  config::Section trn = root.section("trainium", "Trainium chip");
  config::Section hbm_section = trn.section("hbm", "HBM");
  const HbmConfig c = read_hbm_config(hbm_section);
  const HbmConfig p = trainium2_hbm();
  EXPECT_EQ(c.stacks, p.stacks);
  EXPECT_EQ(c.capacity(), p.capacity());
  EXPECT_NEAR(c.pin_rate.bytes_per_s, p.pin_rate.bytes_per_s, 1.0);
  EXPECT_EQ(c.burst_ps(), p.burst_ps());
  EXPECT_EQ(c.tck_ps(), p.tck_ps());
  EXPECT_EQ(c.timing.tFAW, p.timing.tFAW);
  EXPECT_EQ(c.queue_depth, p.queue_depth);
  EXPECT_EQ(c.address_mapping, p.address_mapping);
}

TEST(HbmConfigReader, NamesTheKeyOfABadValue) {
  auto error_of = [](const std::string& yaml) -> std::string {
    try {
      config::Document doc = config::parse(yaml, "t.yaml");
      config::Section root = doc.root();
      config::Section s = root.section("hbm", "HBM");
      read_hbm_config(s);
      doc.finish();
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(error_of("hbm:\n  pin_rate: 6.4 Gb/s\n  peak_bandwidth: 1 TB/s\n"),
              ::testing::HasSubstr("not both"));
  EXPECT_THAT(error_of("hbm:\n  address_mapping: [row, bank, sid, column, bankgroup, "
                       "pseudo_channel, channel, stack]\n"),
              ::testing::HasSubstr("unknown field 'bankgroup'"));
  EXPECT_THAT(error_of("hbm:\n  timing:\n    tFAV: 24\n"), ::testing::HasSubstr("tFAV"));
  EXPECT_EQ(error_of("hbm:\n  stacks: 2\n  capacity: 16 GiB\n"), "");
}

}  // namespace
}  // namespace wse::neuron
