// SharedResource, TransferTiming and BandwidthCalendar: exact completion times,
// arbitration order and utilization, each derived by hand in the test's comment.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sysc/kernel/sc_spawn.h>
#include <tlm_utils/simple_initiator_socket.h>
#include <nlohmann/json.hpp>
#include <systemc>
#include <tlm>

#include "systemc_models/config/config.h"
#include "systemc_models/tlm/memory_target.h"
#include "systemc_models/tlm/shared_resource.h"
#include "systemc_models/tlm/transfer_timing.h"
#include "systemc_models/trace/trace.h"
#include "util/systemc_test.h"

namespace wse::tlm_blocks {
namespace {

using sc_core::SC_NS;
using sc_core::sc_time;
using ::testing::HasSubstr;
using wse::testing::SystemCTest;

constexpr std::uint64_t kNs = 1000;  // picoseconds per nanosecond

// An initiator that issues blocking transfers through its socket, each from its own
// thread, and records when and in which order they complete.
class TestInitiator : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<TestInitiator> socket;

  explicit TestInitiator(const sc_core::sc_module_name& name) : sc_module(name), socket("socket") {}

  // A transfer of `bytes` requested at `at`: the call is made at time 0 with `at` as
  // the annotated delay, as a loosely-timed initiator would.
  void request(const sc_time& at, std::uint64_t bytes) {
    const std::size_t index = done_ps.size();
    done_ps.push_back(0);
    sc_core::sc_spawn([this, at, bytes, index] {
      std::vector<unsigned char> data(bytes);
      tlm::tlm_generic_payload payload;
      payload.set_command(tlm::TLM_WRITE_COMMAND);
      payload.set_address(0);
      payload.set_data_ptr(data.data());
      payload.set_data_length(static_cast<unsigned>(bytes));
      payload.set_streaming_width(static_cast<unsigned>(bytes));
      payload.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      sc_time delay = at;
      socket->b_transport(payload, delay);
      sc_core::wait(delay);
      EXPECT_EQ(payload.get_response_status(), tlm::TLM_OK_RESPONSE);
      done_ps[index] = sc_core::sc_time_stamp().value();
      completion_order.push_back(index);
    });
  }

  std::deque<std::uint64_t> done_ps;          // completion time of request i
  std::vector<std::size_t> completion_order;  // request indices as they completed
};

// Several initiators bound to one resource; records the global completion order as
// (initiator, request index) pairs.
struct Rig {
  std::unique_ptr<SharedResource> resource;
  std::vector<std::unique_ptr<TestInitiator>> initiators;

  explicit Rig(const SharedResourceConfig& config, trace::Writer* trace = nullptr) {
    resource = std::make_unique<SharedResource>("resource", config, trace);
    for (unsigned i = 0; i < config.initiators; ++i) {
      initiators.push_back(std::make_unique<TestInitiator>(("initiator" + std::to_string(i)).c_str()));
      initiators.back()->socket.bind(resource->target[i]);
    }
  }
  TestInitiator& operator[](std::size_t i) { return *initiators[i]; }
};

SharedResourceConfig gigabyte_per_second(Duration latency, unsigned initiators = 1,
                                         Arbitration arbitration = Arbitration::Fifo) {
  SharedResourceConfig c;
  c.bandwidth = Bandwidth{1e9};
  c.latency = latency;
  c.initiators = initiators;
  c.arbitration = arbitration;
  return c;
}

// The stat called `name` in `group`, of type T.
template <class T>
const T& stat(const stats::Group& group, const std::string& name) {
  for (const auto& s : group.stats()) {
    if (s->name() == name) return dynamic_cast<const T&>(*s);
  }
  throw std::out_of_range("no stat " + name);
}

class SharedResourceTest : public SystemCTest {};

TEST_F(SharedResourceTest, OneTransferTakesLatencyPlusSerialization) {
  // 1000 B at 1 GB/s serialize in 1000 / 1e9 s = 1000 ns; + 10 ns latency
  // -> completes at 1010 ns = 1,010,000 ps.
  Rig bench(gigabyte_per_second(Duration{10e-9}));
  bench[0].request(sc_time(0, SC_NS), 1000);
  run_to_end();
  EXPECT_EQ(bench[0].done_ps[0], 1'010'000u);
  EXPECT_EQ(bench.resource->timing().unloaded_ps(1000), 1'010'000u);
  EXPECT_EQ(now_ps(), 1'010'000u);
  const stats::Group& g = bench.resource->stats();
  EXPECT_EQ(g.name(), "resource");
  EXPECT_EQ(stat<stats::Counter>(g, "transactions").value(), 1u);
  EXPECT_EQ(stat<stats::Counter>(g, "bytes").value(), 1000u);
  EXPECT_THAT(stat<stats::Distribution>(g, "wait_time").samples(), ::testing::ElementsAre(0.0));
  EXPECT_THAT(stat<stats::Distribution>(g, "transfer_time").samples(),
              ::testing::ElementsAre(::testing::DoubleEq(1010e-9)));
  EXPECT_EQ(wse::testing::ps(bench.resource->busy_time()), 1'000'000u);
  EXPECT_EQ(bench.resource->pending(), 0u);
}

TEST_F(SharedResourceTest, AnnotatedDelayIsTheRequestTime) {
  // Requested at 250 ns (annotated delay): 250 + 1000 (1000 B at 1 GB/s) + 10 latency
  // = 1260 ns.
  Rig bench(gigabyte_per_second(Duration{10e-9}));
  bench[0].request(sc_time(250, SC_NS), 1000);
  run_to_end();
  EXPECT_EQ(bench[0].done_ps[0], 1'260'000u);
}

TEST_F(SharedResourceTest, WidthAndClockRoundUpToWholeCycles) {
  // 32 B per cycle at 1 GHz (1000 ps period), latency 2 ns.
  // 100 B at 0 ns: ceil(100 / 32) = 4 cycles = 4000 ps, + 2000 ps -> done at 6000 ps.
  // 96 B at 10 ns: 96 / 32 = 3 cycles = 3000 ps exactly, starts at 10,000 (idle by then)
  // -> 10,000 + 3000 + 2000 = 15,000 ps.
  SharedResourceConfig c;
  c.width = Size{32};
  c.clock = Frequency{1e9};
  c.latency = Duration{2e-9};
  Rig bench(c);
  bench[0].request(sc_time(0, SC_NS), 100);
  bench[0].request(sc_time(10, SC_NS), 96);
  run_to_end();
  EXPECT_EQ(bench[0].done_ps[0], 6'000u);
  EXPECT_EQ(bench[0].done_ps[1], 15'000u);
  EXPECT_EQ(bench.resource->timing().cycles(100), 4u);
  EXPECT_EQ(bench.resource->timing().cycles(96), 3u);
  EXPECT_EQ(bench.resource->timing().cycles(97), 4u);
  EXPECT_DOUBLE_EQ(bench.resource->timing().peak_bandwidth().bytes_per_s, 32e9);
}

TEST_F(SharedResourceTest, FifoTieGoesToLowerInitiatorIndex) {
  // Both request 1000 B at 0 ns (1 GB/s, 10 ns latency). Initiator 1's thread is created
  // first, but a FIFO tie goes to the lower index:
  //   initiator 0: serializes 0..1000 ns, done 1010 ns = 1,010,000 ps
  //   initiator 1: waits 1000 ns, serializes 1000..2000 ns, done 2010 ns = 2,010,000 ps
  Rig bench(gigabyte_per_second(Duration{10e-9}, 2));
  bench[1].request(sc_time(0, SC_NS), 1000);
  bench[0].request(sc_time(0, SC_NS), 1000);
  run_to_end();
  EXPECT_EQ(bench[0].done_ps[0], 1'010'000u);
  EXPECT_EQ(bench[1].done_ps[0], 2'010'000u);
  const auto& wait = stat<stats::Distribution>(bench.resource->stats(), "wait_time");
  EXPECT_THAT(wait.samples(), ::testing::ElementsAre(0.0, ::testing::DoubleEq(1e-6)));
}

TEST_F(SharedResourceTest, FifoServesEarlierRequestFirst) {
  // Initiator 1 asks at 0 ns, initiator 0 at 300 ns (1000 B each, 1 GB/s, 10 ns):
  //   initiator 1: 0..1000 ns, done 1010 ns
  //   initiator 0: waits until 1000 ns (700 ns wait), 1000..2000 ns, done 2010 ns
  Rig bench(gigabyte_per_second(Duration{10e-9}, 2));
  bench[1].request(sc_time(0, SC_NS), 1000);
  bench[0].request(sc_time(300, SC_NS), 1000);
  run_to_end();
  EXPECT_EQ(bench[1].done_ps[0], 1'010'000u);
  EXPECT_EQ(bench[0].done_ps[0], 2'010'000u);
}

TEST_F(SharedResourceTest, LatencyIsPipelinedNotOccupied) {
  // 100 B at 1 GB/s = 100 ns of serialization, latency 500 ns, both initiators at 0:
  //   initiator 0: 0..100 ns, done 600 ns
  //   initiator 1: 100..200 ns (starts when the first finished serializing), done 700 ns
  // (an unpipelined resource would finish the second at 1200 ns).
  Rig bench(gigabyte_per_second(Duration{500e-9}, 2));
  bench[0].request(sc_time(0, SC_NS), 100);
  bench[1].request(sc_time(0, SC_NS), 100);
  run_to_end();
  EXPECT_EQ(bench[0].done_ps[0], 600 * kNs);
  EXPECT_EQ(bench[1].done_ps[0], 700 * kNs);
}

// Three initiators, 100 B requests (100 ns each at 1 GB/s), latency 10 ns:
//   initiator 0: three requests at 0 ns; initiator 1: one at 0 ns and one at 250 ns;
//   initiator 2: two at 0 ns.
void issue_rotation_pattern(Rig& bench) {
  for (int k = 0; k < 3; ++k) bench[0].request(sc_time(0, SC_NS), 100);
  bench[1].request(sc_time(0, SC_NS), 100);
  bench[1].request(sc_time(250, SC_NS), 100);
  for (int k = 0; k < 2; ++k) bench[2].request(sc_time(0, SC_NS), 100);
}

TEST_F(SharedResourceTest, RoundRobinRotatesOverInitiatorsWithPendingRequests) {
  // Round robin, grants every 100 ns, the pointer moving past each initiator served:
  //   0 ns  -> i0 (pointer 1)   100 ns -> i1 (pointer 2)   200 ns -> i2 (pointer 0)
  //   300 ns-> i0 (pointer 1)   400 ns -> i1, its request of 250 ns (pointer 2)
  //   500 ns-> i2 (pointer 0)   600 ns -> i0
  // Completions (+100 ns serialization +10 ns latency):
  //   i0: 110, 410, 710 ns   i1: 210, 510 ns   i2: 310, 610 ns
  Rig bench(gigabyte_per_second(Duration{10e-9}, 3, Arbitration::RoundRobin));
  issue_rotation_pattern(bench);
  run_to_end();
  EXPECT_THAT(bench[0].done_ps, ::testing::ElementsAre(110 * kNs, 410 * kNs, 710 * kNs));
  EXPECT_THAT(bench[1].done_ps, ::testing::ElementsAre(210 * kNs, 510 * kNs));
  EXPECT_THAT(bench[2].done_ps, ::testing::ElementsAre(310 * kNs, 610 * kNs));
}

TEST_F(SharedResourceTest, RequestMadeAsTheResourceFreesCompetes) {
  // Round robin, 1000 B each (1000 ns at 1 GB/s), latency 10 ns:
  //   i2 at 0 ns: serializes 0..1000 ns, done 1010 ns; the pointer moves to i0.
  //   i1 asks at 500 ns and waits; i0 asks at exactly 1000 ns, the instant the resource
  //   frees. Both compete at 1000 ns and the pointer (at i0) picks i0:
  //   i0: 1000..2000 ns, done 2010 ns; i1: 2000..3000 ns, done 3010 ns.
  // (Deciding before i0's request of that instant had arrived would serve i1 first.)
  Rig bench(gigabyte_per_second(Duration{10e-9}, 3, Arbitration::RoundRobin));
  bench[2].request(sc_time(0, SC_NS), 1000);
  bench[1].request(sc_time(500, SC_NS), 1000);
  bench[0].request(sc_time(1000, SC_NS), 1000);
  run_to_end();
  EXPECT_EQ(bench[2].done_ps[0], 1010 * kNs);
  EXPECT_EQ(bench[0].done_ps[0], 2010 * kNs);
  EXPECT_EQ(bench[1].done_ps[0], 3010 * kNs);
}

TEST_F(SharedResourceTest, FifoOnTheSamePatternServesByRequestTime) {
  // FIFO on the same pattern: all requests of 0 ns by initiator index (i0 x3, i1, i2 x2),
  // then i1's request of 250 ns last:
  //   i0: 110, 210, 310 ns   i1: 410, 710 ns   i2: 510, 610 ns
  Rig bench(gigabyte_per_second(Duration{10e-9}, 3, Arbitration::Fifo));
  issue_rotation_pattern(bench);
  run_to_end();
  EXPECT_THAT(bench[0].done_ps, ::testing::ElementsAre(110 * kNs, 210 * kNs, 310 * kNs));
  EXPECT_THAT(bench[1].done_ps, ::testing::ElementsAre(410 * kNs, 710 * kNs));
  EXPECT_THAT(bench[2].done_ps, ::testing::ElementsAre(510 * kNs, 610 * kNs));
}

TEST_F(SharedResourceTest, UtilizationIsBusyOverElapsed) {
  // 1000 B at 0 ns (busy 0..1000 ns) and 1000 B at 3000 ns (busy 3000..4000 ns), latency
  // 10 ns: the run ends at 4010 ns with 2000 ns busy -> utilization 2000 / 4010.
  Rig bench(gigabyte_per_second(Duration{10e-9}));
  bench[0].request(sc_time(0, SC_NS), 1000);
  bench[0].request(sc_time(3000, SC_NS), 1000);
  run_to_end();
  ASSERT_EQ(now_ps(), 4010 * kNs);
  EXPECT_EQ(wse::testing::ps(bench.resource->busy_time()), 2000 * kNs);
  EXPECT_DOUBLE_EQ(bench.resource->utilization(sc_core::sc_time_stamp()), 2000.0 / 4010.0);
  // The same figure through the statistics walker, under the module's name.
  const auto groups = stats::collect();
  const auto u = stats::utilizations(groups, sc_core::sc_time_stamp().to_seconds());
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].first, "resource");
  EXPECT_DOUBLE_EQ(u[0].second, 2000.0 / 4010.0);
}

TEST_F(SharedResourceTest, SaturatedResourceIsBusyAllButTheLastLatency) {
  // Two initiators each send 4 x 250 B at 0 ns into 1 GB/s, latency 10 ns: 8 x 250 ns
  // back to back = 2000 ns busy; the last completes at 2010 ns -> 2000 / 2010.
  Rig bench(gigabyte_per_second(Duration{10e-9}, 2));
  for (int k = 0; k < 4; ++k) {
    bench[0].request(sc_time(0, SC_NS), 250);
    bench[1].request(sc_time(0, SC_NS), 250);
  }
  run_to_end();
  EXPECT_EQ(now_ps(), 2010 * kNs);
  EXPECT_DOUBLE_EQ(bench.resource->utilization(sc_core::sc_time_stamp()), 2000.0 / 2010.0);
}

TEST_F(SharedResourceTest, TransferFromAThreadWithoutSockets) {
  // transfer() used directly by a model's thread; no socket is bound (they are optional).
  // 500 B at 1 GB/s + 20 ns = 520 ns.
  SharedResource resource("link", gigabyte_per_second(Duration{20e-9}));
  std::uint64_t done = 0;
  sc_core::sc_spawn([&] {
    resource.transfer(0, 500);
    done = sc_core::sc_time_stamp().value();
  });
  run_to_end();
  EXPECT_EQ(done, 520 * kNs);
}

// An approximately-timed initiator: BEGIN_REQ forward, BEGIN_RESP expected backward.
class NonBlockingInitiator : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<NonBlockingInitiator> socket;

  explicit NonBlockingInitiator(const sc_core::sc_module_name& name) : sc_module(name), socket("socket") {
    socket.register_nb_transport_bw(this, &NonBlockingInitiator::nb_transport_bw);
  }

  void send(std::uint64_t bytes) {
    data_.resize(bytes);
    payload_.set_command(tlm::TLM_WRITE_COMMAND);
    payload_.set_data_ptr(data_.data());
    payload_.set_data_length(static_cast<unsigned>(bytes));
    payload_.set_streaming_width(static_cast<unsigned>(bytes));
    sc_core::sc_spawn([this] {
      tlm::tlm_phase phase = tlm::BEGIN_REQ;
      sc_time delay = sc_core::SC_ZERO_TIME;
      accepted = socket->nb_transport_fw(payload_, phase, delay) == tlm::TLM_ACCEPTED;
    });
  }

  bool accepted = false;
  std::uint64_t response_ps = 0;
  tlm::tlm_response_status status = tlm::TLM_INCOMPLETE_RESPONSE;

 private:
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload& p, tlm::tlm_phase& phase, sc_time& delay) {
    EXPECT_EQ(phase, tlm::BEGIN_RESP);
    response_ps = (sc_core::sc_time_stamp() + delay).value();
    status = p.get_response_status();
    return tlm::TLM_COMPLETED;
  }

  std::vector<unsigned char> data_;
  tlm::tlm_generic_payload payload_;
};

TEST_F(SharedResourceTest, NonBlockingInitiatorsAreServedThroughTheSocketAdapter) {
  // BEGIN_REQ at 0 ns from both initiators, 1000 B each (1 GB/s, 10 ns latency), FIFO:
  // the responses arrive when the transfers complete, at 1010 ns (initiator 0) and
  // 2010 ns (initiator 1).
  const SharedResourceConfig c = gigabyte_per_second(Duration{10e-9}, 2);
  SharedResource resource("resource", c);
  NonBlockingInitiator a("a"), b("b");
  a.socket.bind(resource.target[0]);
  b.socket.bind(resource.target[1]);
  b.send(1000);
  a.send(1000);
  run_to_end();
  EXPECT_TRUE(a.accepted);
  EXPECT_TRUE(b.accepted);
  EXPECT_EQ(a.response_ps, 1010 * kNs);
  EXPECT_EQ(b.response_ps, 2010 * kNs);
  EXPECT_EQ(a.status, tlm::TLM_OK_RESPONSE);
}

TEST_F(SharedResourceTest, TraceGetsOneSlicePerTransfer) {
  // Two 1000 B transfers at 0 ns, FIFO: slices [0, 1 us) and [1 us, 2 us) on the
  // resource's track (trace timestamps are microseconds).
  const std::string path = (::wse::testing::temp_path("wse_shared_resource_trace.json")).string();
  {
    trace::Writer writer(path);
    Rig bench(gigabyte_per_second(Duration{10e-9}, 2), &writer);
    bench[0].request(sc_time(0, SC_NS), 1000);
    bench[1].request(sc_time(0, SC_NS), 1000);
    run_to_end();
    writer.finish();
  }
  std::ifstream in(path);
  const nlohmann::json doc = nlohmann::json::parse(in);
  std::vector<std::pair<double, double>> slices;
  std::vector<std::string> names;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X") {
      slices.emplace_back(e["ts"].get<double>(), e["dur"].get<double>());
      names.push_back(e["name"].get<std::string>());
    }
  }
  using ::testing::DoubleEq;
  using ::testing::Pair;
  EXPECT_THAT(slices,
              ::testing::ElementsAre(Pair(DoubleEq(0.0), DoubleEq(1.0)), Pair(DoubleEq(1.0), DoubleEq(1.0))));
  EXPECT_THAT(names, ::testing::ElementsAre("initiator 0", "initiator 1"));
  std::filesystem::remove(path);
}

TEST_F(SharedResourceTest, InvalidConfigurationsAreRejectedAtConstruction) {
  SharedResourceConfig no_rate;  // neither bandwidth nor width
  EXPECT_THAT([&] { SharedResource r("a", no_rate); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::AllOf(
                  ::testing::HasSubstr("'a'"), ::testing::HasSubstr("bandwidth must be above 0"))));
  SharedResourceConfig width_without_clock;
  width_without_clock.width = Size{32};
  EXPECT_THAT([&] { SharedResource r("b", width_without_clock); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr("needs a clock")));
  SharedResourceConfig both = gigabyte_per_second(Duration{0});
  both.width = Size{32};
  both.clock = Frequency{1e9};
  EXPECT_THAT([&] { SharedResource r("c", both); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr("not both")));
  SharedResourceConfig no_initiators = gigabyte_per_second(Duration{0});
  no_initiators.initiators = 0;
  EXPECT_THAT([&] { SharedResource r("d", no_initiators); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr("initiators")));
  SharedResourceConfig negative_latency = gigabyte_per_second(Duration{-1e-9});
  EXPECT_THAT([&] { SharedResource r("e", negative_latency); },
              ::testing::ThrowsMessage<std::invalid_argument>(::testing::HasSubstr("latency")));
}

// Plain C++ parts: no SystemC kernel needed.

TEST(TransferTiming, NonIntegerPeriodRoundsOnceToNearestPicosecond) {
  // 1.1 GHz, 32 B/cycle: 100 B -> 4 cycles = 4 / 1.1e9 s = 3636.36 ps -> 3636 ps;
  // 1000 B -> 32 cycles = 29,090.9 ps -> 29,091 ps (one rounding, not 32 x 909).
  SharedResourceConfig c;
  c.width = Size{32};
  c.clock = Frequency{1.1e9};
  const TransferTiming t(c, "t");
  EXPECT_EQ(t.serialization_ps(100), 3636u);
  EXPECT_EQ(t.serialization_ps(1000), 29091u);
  EXPECT_EQ(t.serialization_ps(0), 0u);
}

TEST(TransferTiming, BandwidthModeIsExactForRoundFigures) {
  // 64 B at 12.8 GB/s = 5 ns; 1 MiB at 1 TB/s = 1,048,576 ps; latency 100 ns.
  SharedResourceConfig c;
  c.bandwidth = Bandwidth{12.8e9};
  c.latency = Duration{100e-9};
  const TransferTiming t(c, "t");
  EXPECT_EQ(t.serialization_ps(64), 5000u);
  EXPECT_EQ(t.unloaded_ps(64), 105'000u);
  c.bandwidth = Bandwidth{1e12};
  EXPECT_EQ(TransferTiming(c, "t").serialization_ps(1u << 20), 1'048'576u);
}

TEST(BandwidthCalendar, ReservationsQueueBackToBackAndIdleGapsAreNotBusy) {
  // 1 GB/s, latency 10 ns:
  //   ready 0,    1000 B: start 0,      end 1000 ns, done 1010 ns
  //   ready 200,  500 B:  start 1000,   end 1500 ns, done 1510 ns (queued behind the first)
  //   ready 4000, 100 B:  start 4000,   end 4100 ns, done 4110 ns (idle gap 1500..4000)
  // busy = 1000 + 500 + 100 = 1600 ns.
  SharedResourceConfig c;
  c.bandwidth = Bandwidth{1e9};
  c.latency = Duration{10e-9};
  BandwidthCalendar cal(c, "cal");
  const auto a = cal.reserve(0, 1000);
  const auto b = cal.reserve(200 * kNs, 500);
  const auto d = cal.reserve(4000 * kNs, 100);
  EXPECT_EQ(a.start_ps, 0u);
  EXPECT_EQ(a.serialized_ps, 1000 * kNs);
  EXPECT_EQ(a.done_ps, 1010 * kNs);
  EXPECT_EQ(b.start_ps, 1000 * kNs);
  EXPECT_EQ(b.done_ps, 1510 * kNs);
  EXPECT_EQ(d.start_ps, 4000 * kNs);
  EXPECT_EQ(d.done_ps, 4110 * kNs);
  EXPECT_EQ(cal.busy_ps(), 1600 * kNs);
  EXPECT_EQ(cal.free_at_ps(), 4100 * kNs);
}

// 122 MB at 1 b/s is 9.8e8 s: the picoseconds passed 2^63 and llround saturated, so the
// transfer reported 9223372.04 s. Now the run fails naming the resource and transfer.
TEST(TransferTiming, TransferBeyondTheLongestSimulatedTimeThrows) {
  SharedResourceConfig c;
  c.bandwidth = Bandwidth{1.0 / 8};
  const TransferTiming t(c, "kv_path.link");
  try {
    (void)t.serialization_ps(122'000'000);
    FAIL();
  } catch (const TimeOverflow& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("simulated time overflow: kv_path.link: a transfer of 122000000 B at 0.125 B/s "
                          "reaches 976000000"));
  }
  EXPECT_EQ(t.serialization_ps(1), 8'000'000'000'000u);  // 8 s
  // Back-to-back reservations, each within the limit, whose sum is not.
  c.bandwidth = Bandwidth{1.0};
  BandwidthCalendar cal(c, "cal");
  (void)cal.reserve(0, 5'000'000);  // 5e6 s
  EXPECT_THROW((void)cal.reserve(0, 5'000'000), TimeOverflow);
}

TEST(BandwidthCalendar, RejectsAZeroBandwidth) {
  EXPECT_THROW(BandwidthCalendar(SharedResourceConfig{}, "cal"), std::invalid_argument);
}

// Configuration readers.

// The ConfigError message of reading `yaml`'s "link" section, or "" if none.
std::string reader_error(const std::string& yaml) {
  try {
    config::Document doc = config::parse(yaml, "exp.yaml");
    config::Section link = doc.root().section("link", "the link");
    read_shared_resource_config(link);
    doc.finish();
  } catch (const config::ConfigError& e) {
    return std::string(e.key_path()) + ": " + e.what();
  }
  return "";
}

TEST(SharedResourceConfigReader, BandwidthLatencyArbitrationInitiators) {
  config::Document doc = config::parse(
      "link:\n  bandwidth: 100 Gb/s\n  latency: 600 ns\n  arbitration: round_robin\n"
      "  initiators: 3\n",
      "exp.yaml");
  config::Section link = doc.root().section("link", "the link");
  const SharedResourceConfig c = read_shared_resource_config(link);
  doc.finish();
  EXPECT_DOUBLE_EQ(c.bandwidth.bytes_per_s, 12.5e9);  // 100 Gb/s / 8
  EXPECT_EQ(c.width.bytes, 0u);
  EXPECT_DOUBLE_EQ(c.latency.seconds, 600e-9);
  EXPECT_EQ(c.arbitration, Arbitration::RoundRobin);
  EXPECT_EQ(c.initiators, 3u);
  // 1250 B at 12.5 GB/s = 100 ns, + 600 ns.
  EXPECT_EQ(TransferTiming(c, "link").unloaded_ps(1250), 700 * kNs);
}

TEST(SharedResourceConfigReader, WidthClockAndLatencyInCyclesWithDefaults) {
  // 64 B/cycle at 2 GHz; latency 10 cycles = 5 ns; arbitration and initiators default.
  config::Document doc =
      config::parse("link:\n  width: 64 B\n  clock: 2 GHz\n  latency: 10 cycles\n", "exp.yaml");
  config::Section link = doc.root().section("link", "the link");
  const SharedResourceConfig c = read_shared_resource_config(link, 4);
  doc.finish();
  EXPECT_EQ(c.width.bytes, 64u);
  EXPECT_DOUBLE_EQ(c.clock.hz, 2e9);
  EXPECT_DOUBLE_EQ(c.latency.seconds, 5e-9);
  EXPECT_EQ(c.arbitration, Arbitration::Fifo);
  EXPECT_EQ(c.initiators, 4u);
  // The resolved document writes the defaults out.
  const std::string resolved = doc.resolved_yaml();
  EXPECT_THAT(resolved, ::testing::HasSubstr("arbitration: fifo"));
  EXPECT_THAT(resolved, ::testing::HasSubstr("initiators: 4"));
}

TEST(SharedResourceConfigReader, BadInputNamesTheKey) {
  EXPECT_THAT(reader_error("link:\n  width: 32 B\n  bandwidth: 1 GB/s\n  clock: 1 GHz\n"),
              ::testing::HasSubstr("not both"));
  EXPECT_THAT(reader_error("link:\n  latency: 5 ns\n"),
              ::testing::AllOf(::testing::HasSubstr("link.bandwidth"),
                               ::testing::HasSubstr("missing the transfer rate")));
  EXPECT_THAT(reader_error("link:\n  width: 32 B\n"), ::testing::HasSubstr("link.clock"));
  EXPECT_THAT(reader_error("link:\n  bandwidth: 1 GB/s\n  latency: 3 cycles\n"),
              ::testing::HasSubstr("link.latency"));
  EXPECT_THAT(reader_error("link:\n  bandwidth: 1 GB/s\n  arbitration: round-robin\n"),
              ::testing::HasSubstr("round_robin"));
  EXPECT_THAT(reader_error("link:\n  bandwidth: 1 GB/s\n  initiators: 0\n"),
              ::testing::HasSubstr("link.initiators"));
  EXPECT_THAT(reader_error("link:\n  bandwidth: 1 GB/s\n  latncy: 5 ns\n"),
              ::testing::HasSubstr("latency"));  // unknown key: did you mean
  EXPECT_EQ(reader_error("link:\n  bandwidth: 1 GB/s\n"), "");
}

TEST(MemoryTargetConfigReader, CapacityPortsAndTiming) {
  config::Document doc = config::parse(
      "hbm:\n  capacity: 16 GiB\n  bandwidth: 410 GB/s\n  latency: 100 ns\n  ports: 2\n", "exp.yaml");
  config::Section hbm = doc.root().section("hbm", "memory");
  const MemoryTargetConfig c = read_memory_target_config(hbm);
  doc.finish();
  EXPECT_EQ(c.capacity.bytes, 16ULL << 30);
  EXPECT_DOUBLE_EQ(c.access.bandwidth.bytes_per_s, 410e9);
  EXPECT_DOUBLE_EQ(c.access.latency.seconds, 100e-9);
  EXPECT_EQ(c.access.initiators, 2u);

  config::Document zero = config::parse("hbm:\n  capacity: 0 B\n  bandwidth: 1 GB/s\n", "exp.yaml");
  config::Section z = zero.root().section("hbm", "memory");
  EXPECT_THROW(read_memory_target_config(z), config::ConfigError);
}

}  // namespace
}  // namespace wse::tlm_blocks
