// Tests of the EFA network through its TLM-2.0 sockets, in a SystemC kernel.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "efa_link/efa_network.h"
#include "efa_link/simple_config.h"
#include "util/systemc_test.h"

namespace wse::efa {
namespace {

using wse::testing::SystemCTest;

using wse::efa::testing::simple_config;

// A host that posts RDMA work requests, blocking (b_transport) or not (nb_transport).
struct Host : sc_core::sc_module, tlm::tlm_bw_transport_if<> {
  tlm::tlm_initiator_socket<> socket;
  struct Job {
    sc_core::sc_time at;
    tlm::tlm_command cmd;
    std::uint64_t bytes;
    std::uint32_t target;
    bool blocking;
  };
  std::vector<Job> jobs;
  std::vector<std::unique_ptr<tlm::tlm_generic_payload>> gps;
  std::vector<std::byte> buffer = std::vector<std::byte>(64 << 10);
  std::vector<std::byte> remote = std::vector<std::byte>(64 << 10);
  std::vector<std::uint64_t> done_ps;  // simulated time when each completion arrived
  std::vector<Completion> completions;
  std::vector<tlm::tlm_response_status> status;

  SC_HAS_PROCESS(Host);
  explicit Host(sc_core::sc_module_name n) : sc_core::sc_module(n), socket("socket") {
    socket.bind(*this);
    SC_THREAD(run);
  }
  void run() {
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const Job& j = jobs[i];
      if (j.at > sc_core::sc_time_stamp()) wait(j.at - sc_core::sc_time_stamp());
      auto gp = std::make_unique<tlm::tlm_generic_payload>();
      auto* ext = new EfaWorkRequestExt;
      ext->target = j.target;
      ext->remote = remote.data();
      ext->tag = i;
      gp->set_extension(ext);  // owned by the payload (freed with it)
      gp->set_command(j.cmd);
      gp->set_data_ptr(reinterpret_cast<unsigned char*>(buffer.data()));
      gp->set_data_length(static_cast<unsigned>(j.bytes));
      tlm::tlm_generic_payload& ref = *gp;
      gps.push_back(std::move(gp));
      if (j.blocking) {
        sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
        socket->b_transport(ref, delay);
        record(ref);
      } else {
        tlm::tlm_phase phase = tlm::BEGIN_REQ;
        sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
        const tlm::tlm_sync_enum r = socket->nb_transport_fw(ref, phase, delay);
        EXPECT_EQ(r, tlm::TLM_UPDATED);
        EXPECT_EQ(phase, tlm::END_REQ);
      }
    }
  }
  void record(tlm::tlm_generic_payload& gp) {
    done_ps.push_back(sc_core::sc_time_stamp().value());
    completions.push_back(gp.get_extension<EfaWorkRequestExt>()->completion);
    status.push_back(gp.get_response_status());
  }
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload& gp, tlm::tlm_phase& phase,
                                     sc_core::sc_time&) override {
    EXPECT_EQ(phase, tlm::BEGIN_RESP);
    record(gp);
    phase = tlm::END_RESP;
    return tlm::TLM_COMPLETED;
  }
  void invalidate_direct_mem_ptr(sc_dt::uint64, sc_dt::uint64) override {}
};

class EfaNetworkTest : public SystemCTest {};

// The blocking write of the engine test's hand-derived case returns at 24,532,480 ps
// (see srd_engine_test.cpp: data in place at 13,532,480 ps, acknowledgement 11 us later).
TEST_F(EfaNetworkTest, BlockingWriteReturnsAtCompletionTime) {
  const EfaNetworkConfig cfg = simple_config();
  EfaNetwork net("efa", cfg);
  Host host("host");
  host.socket.bind(net.sender(0).work_requests);
  host.jobs.push_back({sc_core::SC_ZERO_TIME, tlm::TLM_WRITE_COMMAND, 9192, 1, true});
  for (std::size_t i = 0; i < 9192; ++i) host.buffer[i] = static_cast<std::byte>(i * 7);
  run_to_end();
  ASSERT_EQ(host.done_ps.size(), 1u);
  EXPECT_EQ(host.done_ps[0], 24'532'480u);
  EXPECT_EQ(host.completions[0].completed_ps, 24'532'480u);
  EXPECT_EQ(host.status[0], tlm::TLM_OK_RESPONSE);
  EXPECT_TRUE(std::equal(host.buffer.begin(), host.buffer.begin() + 9192, host.remote.begin()));
}

// Non-blocking posts: the second write, posted 5 us after the first on the same adapter,
// shares the port with it; each completion arrives on the backward path at the time the
// engine computed, and the RDMA read (from the receiver side) completes too.
TEST_F(EfaNetworkTest, NonBlockingPostsCompleteOnBackwardPath) {
  const EfaNetworkConfig cfg = simple_config();
  EfaNetwork net("efa", cfg);
  Host host("host");
  host.socket.bind(net.sender(0).work_requests);
  host.jobs.push_back({sc_core::SC_ZERO_TIME, tlm::TLM_WRITE_COMMAND, 40000, 1, false});
  host.jobs.push_back({sc_core::sc_time(5, sc_core::SC_US), tlm::TLM_WRITE_COMMAND, 40000, 1, false});
  Host reader("reader");
  reader.socket.bind(net.receiver(0).work_requests);
  reader.jobs.push_back({sc_core::SC_ZERO_TIME, tlm::TLM_READ_COMMAND, 9192, 0, false});
  run_to_end();
  ASSERT_EQ(host.done_ps.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(host.status[i], tlm::TLM_OK_RESPONSE);
    EXPECT_EQ(host.done_ps[i], host.completions[i].completed_ps);
  }
  EXPECT_EQ(host.completions[1].posted_ps, 5'000'000u);
  ASSERT_EQ(reader.done_ps.size(), 1u);
  EXPECT_EQ(reader.done_ps[0], reader.completions[0].completed_ps);
  EXPECT_EQ(net.engine().completions().size(), 3u);
}

// A link that never comes back: the blocking write returns with an error response and
// the error text, and the simulation ends (no hang, no event left).
TEST_F(EfaNetworkTest, FailedWriteEndsWithErrorResponse) {
  EfaNetworkConfig cfg = simple_config();
  cfg.srd.retransmit_timeout = Duration{50e-6};
  cfg.srd.retry_budget = 2;
  cfg.fabric.faults.push_back(LinkFault{true, 0, Duration{0}, Duration{100.0}});
  EfaNetwork net("efa", cfg);
  Host host("host");
  host.socket.bind(net.sender(0).work_requests);
  host.jobs.push_back({sc_core::SC_ZERO_TIME, tlm::TLM_WRITE_COMMAND, 9192, 1, true});
  run_to_end();
  ASSERT_EQ(host.status.size(), 1u);
  EXPECT_EQ(host.status[0], tlm::TLM_GENERIC_ERROR_RESPONSE);
  EXPECT_FALSE(host.completions[0].ok);
  EXPECT_NE(host.completions[0].error.find("retry_budget = 2"), std::string::npos);
  EXPECT_LT(host.done_ps[0], 1'000'000'000u);
}

}  // namespace
}  // namespace wse::efa
