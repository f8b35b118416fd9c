// The wafer module: writes through the TLM I/O socket reach a PE over the fabric.
#include "wse_mesh/wafer_module.h"

#include <vector>

#include <gtest/gtest.h>
#include <tlm_utils/simple_initiator_socket.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class WaferModuleTest : public wse::testing::SystemCTest {};

// Writes `length` bytes to `address` at `at`, records when each write completed.
struct Writer : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Writer> out{"out"};
  struct Job {
    sc_core::sc_time at;
    std::uint64_t address;
    unsigned length;
    tlm::tlm_command command = tlm::TLM_WRITE_COMMAND;
  };
  std::vector<Job> jobs;
  std::vector<sc_core::sc_time> done;
  std::vector<tlm::tlm_response_status> status;
  SC_HAS_PROCESS(Writer);
  explicit Writer(const sc_core::sc_module_name& n) : sc_core::sc_module(n) { SC_THREAD(run); }
  void run() {
    std::vector<unsigned char> data(4096, 0xab);
    for (const Job& j : jobs) {
      wait(j.at - sc_core::sc_time_stamp());
      tlm::tlm_generic_payload p;
      p.set_command(j.command);
      p.set_address(j.address);
      p.set_data_ptr(data.data());
      p.set_data_length(j.length);
      p.set_streaming_width(j.length);
      sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
      out->b_transport(p, delay);
      done.push_back(sc_core::sc_time_stamp() + delay);
      status.push_back(p.get_response_status());
    }
  }
};

WaferConfig small_wafer() {
  WaferConfig c;
  c.name = "test";
  c.width = 128;
  c.height = 8;
  c.clock = Frequency{1e9};  // 1 ns cycles
  c.io_bandwidth = Bandwidth{1.2e12 / 8};
  return c;
}

TEST_F(WaferModuleTest, WriteThroughIoEdgeReachesFarPe) {
  // 64 B to PE (100, 5) at t = 0: 150 B/cycle edge holds it 1 cycle; first wavelet
  // across at cycle 1, then ramp 1 + 100 hops + ramp 1: first at the PE at 103, the 16th
  // at 118, complete at the end of that cycle: 119 ns.
  // Then 4 B to PE (3, 0) at 1000 ns (the fabric idles in between): ready 1000, across
  // 1001, at the PE 1001 + 1 + 3 + 1 = 1006, complete 1007 ns.
  const WaferConfig cfg = small_wafer();
  WaferModule wafer("wafer", cfg);
  Writer w("writer");
  w.out.bind(wafer.io);
  const std::uint64_t window = cfg.pe.sram_bytes;
  w.jobs.push_back({sc_core::SC_ZERO_TIME, (5ull * 128 + 100) * window + 256, 64});
  w.jobs.push_back({sc_core::sc_time(1000, sc_core::SC_NS), 3ull * window, 4});
  // Errors: a read, and a write that runs past its PE's 48 KiB.
  w.jobs.push_back({sc_core::sc_time(2000, sc_core::SC_NS), 0, 4, tlm::TLM_READ_COMMAND});
  w.jobs.push_back({sc_core::sc_time(2000, sc_core::SC_NS), window - 2, 4});
  run_to_end();
  ASSERT_EQ(w.done.size(), 4u);
  EXPECT_EQ(w.done[0], sc_core::sc_time(119, sc_core::SC_NS));
  EXPECT_EQ(w.done[1], sc_core::sc_time(1007, sc_core::SC_NS));
  EXPECT_EQ(w.status[0], tlm::TLM_OK_RESPONSE);
  EXPECT_EQ(w.status[2], tlm::TLM_COMMAND_ERROR_RESPONSE);
  EXPECT_EQ(w.status[3], tlm::TLM_ADDRESS_ERROR_RESPONSE);
  EXPECT_EQ(wafer.fabric().wavelet_hops(), 16u * 100 + 3);
  // Fabric simulated only the busy cycles, not the idle gap.
  EXPECT_LT(wafer.fabric().cycles_simulated(), 200u);
  const stats::Group& g = wafer.stats();
  bool found = false;
  for (const auto& s : g.stats()) {
    if (s->name() == "io_bytes") {
      found = true;
      EXPECT_EQ(dynamic_cast<const stats::Counter&>(*s).value(), 68u);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace wse::wafer
