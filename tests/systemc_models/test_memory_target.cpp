// MemoryTarget: data through the payload, sparse store, error responses and timing.
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sysc/kernel/sc_spawn.h>
#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "systemc_models/tlm/memory_target.h"
#include "util/systemc_test.h"

namespace wse::tlm_blocks {
namespace {

using wse::testing::SystemCTest;
using namespace wse::literals;

// The stat called `name` in `group`, of type T.
template <class T>
const T& stat(const stats::Group& group, const std::string& name) {
  for (const auto& s : group.stats()) {
    if (s->name() == name) return dynamic_cast<const T&>(*s);
  }
  throw std::out_of_range("no stat " + name);
}

// Runs a script of accesses from one thread through its socket.
class ScriptedInitiator : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<ScriptedInitiator> socket;

  explicit ScriptedInitiator(const sc_core::sc_module_name& name) : sc_module(name), socket("socket") {}

  void run(std::function<void(ScriptedInitiator&)> script) {
    sc_core::sc_spawn([this, script = std::move(script)] { script(*this); });
  }

  // A blocking access; returns the response status and leaves the time at completion.
  tlm::tlm_response_status access(tlm::tlm_command command, std::uint64_t address, unsigned char* data,
                                  unsigned length) {
    tlm::tlm_generic_payload p;
    p.set_command(command);
    p.set_address(address);
    p.set_data_ptr(data);
    p.set_data_length(length);
    p.set_streaming_width(length);
    p.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
    socket->b_transport(p, delay);
    sc_core::wait(delay);
    return p.get_response_status();
  }
  tlm::tlm_response_status write(std::uint64_t address, std::vector<unsigned char>& data) {
    return access(tlm::TLM_WRITE_COMMAND, address, data.data(), static_cast<unsigned>(data.size()));
  }
  tlm::tlm_response_status read(std::uint64_t address, std::vector<unsigned char>& data) {
    return access(tlm::TLM_READ_COMMAND, address, data.data(), static_cast<unsigned>(data.size()));
  }
};

// 10 GB/s, 50 ns latency, one port.
MemoryTargetConfig memory_config(Size capacity) {
  MemoryTargetConfig c;
  c.capacity = capacity;
  c.access.bandwidth = Bandwidth{10e9};
  c.access.latency = Duration{50e-9};
  return c;
}

class MemoryTargetTest : public SystemCTest {};

TEST_F(MemoryTargetTest, WriteThenReadReturnsTheDataAtTheExpectedTimes) {
  // 64 B at 10 GB/s = 6.4 ns, + 50 ns latency = 56.4 ns per access:
  //   write issued at 0, done at 56,400 ps; read issued then, done at 112,800 ps.
  MemoryTarget mem("mem", memory_config(1_GiB));
  ScriptedInitiator cpu("cpu");
  cpu.socket.bind(mem.target[0]);
  std::vector<unsigned char> written(64), read_back(64, 0xEE);
  for (unsigned i = 0; i < 64; ++i) written[i] = static_cast<unsigned char>(i * 3 + 1);
  std::uint64_t write_done = 0, read_done = 0;
  cpu.run([&](ScriptedInitiator& self) {
    EXPECT_EQ(self.write(0x1000, written), tlm::TLM_OK_RESPONSE);
    write_done = now_ps();
    EXPECT_EQ(self.read(0x1000, read_back), tlm::TLM_OK_RESPONSE);
    read_done = now_ps();
  });
  run_to_end();
  EXPECT_EQ(read_back, written);
  EXPECT_EQ(write_done, 56'400u);
  EXPECT_EQ(read_done, 112'800u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "writes").value(), 1u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "reads").value(), 1u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "read_bytes").value(), 64u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "written_bytes").value(), 64u);
  // Busy 2 x 6.4 ns over 112.8 ns.
  EXPECT_DOUBLE_EQ(mem.access().utilization(sc_core::sc_time_stamp()), 12.8 / 112.8);
}

TEST_F(MemoryTargetTest, LargeCapacityIsSparseAndUnwrittenBytesReadZero) {
  // A 1 TiB memory: a write of 10 B across the page boundary at 4 KiB - 4 touches two
  // 4 KiB pages (8 KiB resident); a read far away returns zeros and allocates nothing.
  MemoryTarget mem("mem", memory_config(Size{1ULL << 40}));
  ScriptedInitiator cpu("cpu");
  cpu.socket.bind(mem.target[0]);
  std::vector<unsigned char> data(10, 0xAB), far(16, 0x55), straddle(12, 0x77);
  cpu.run([&](ScriptedInitiator& self) {
    EXPECT_EQ(self.write(4096 - 4, data), tlm::TLM_OK_RESPONSE);
    EXPECT_EQ(self.read((1ULL << 40) - 16, far), tlm::TLM_OK_RESPONSE);
    // 1 unwritten byte, the 10 written ones, 1 unwritten byte.
    EXPECT_EQ(self.read(4096 - 5, straddle), tlm::TLM_OK_RESPONSE);
  });
  run_to_end();
  EXPECT_EQ(far, std::vector<unsigned char>(16, 0));
  std::vector<unsigned char> expected(12, 0xAB);
  expected.front() = 0;
  expected.back() = 0;
  EXPECT_EQ(straddle, expected);
  EXPECT_EQ(mem.resident_bytes(), 2 * MemoryTarget::kPageBytes);
  EXPECT_DOUBLE_EQ(stat<stats::Scalar>(mem.stats(), "resident").value(), 8192.0);
}

TEST_F(MemoryTargetTest, OutOfRangeAccessIsAnAddressErrorAndCounted) {
  // Capacity 4 KiB: [4090, 4096) is the last valid 6 B; [4090, 4098) is out of range;
  // an address near 2^64 must not wrap around. Errors take no time.
  MemoryTarget mem("mem", memory_config(4_KiB));
  ScriptedInitiator cpu("cpu");
  cpu.socket.bind(mem.target[0]);
  std::vector<unsigned char> six(6, 1), eight(8, 2);
  std::uint64_t errors_done = 1;
  cpu.run([&](ScriptedInitiator& self) {
    EXPECT_EQ(self.write(4090, eight), tlm::TLM_ADDRESS_ERROR_RESPONSE);
    EXPECT_EQ(self.read(~0ULL - 2, eight), tlm::TLM_ADDRESS_ERROR_RESPONSE);
    EXPECT_EQ(self.read(4096, six), tlm::TLM_ADDRESS_ERROR_RESPONSE);
    errors_done = now_ps();
    EXPECT_EQ(self.write(4090, six), tlm::TLM_OK_RESPONSE);
  });
  run_to_end();
  EXPECT_EQ(errors_done, 0u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "address_errors").value(), 3u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "writes").value(), 1u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "written_bytes").value(), 6u);
  EXPECT_EQ(stat<stats::Counter>(mem.access().stats(), "transactions").value(), 1u);
}

TEST_F(MemoryTargetTest, IgnoreCommandAndMissingDataPointerAreErrors) {
  MemoryTarget mem("mem", memory_config(4_KiB));
  ScriptedInitiator cpu("cpu");
  cpu.socket.bind(mem.target[0]);
  std::vector<unsigned char> buf(4);
  cpu.run([&](ScriptedInitiator& self) {
    EXPECT_EQ(self.access(tlm::TLM_IGNORE_COMMAND, 0, buf.data(), 4), tlm::TLM_COMMAND_ERROR_RESPONSE);
    EXPECT_EQ(self.access(tlm::TLM_WRITE_COMMAND, 0, nullptr, 4), tlm::TLM_GENERIC_ERROR_RESPONSE);
  });
  run_to_end();
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "command_errors").value(), 1u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "other_errors").value(), 1u);
  EXPECT_EQ(mem.resident_bytes(), 0u);
}

TEST_F(MemoryTargetTest, CapacityZeroIsRejectedAtConstruction) {
  EXPECT_THAT([] { MemoryTarget m("hbm", memory_config(Size{0})); },
              ::testing::ThrowsMessage<std::invalid_argument>(
                  ::testing::HasSubstr("memory 'hbm': capacity must be greater than 0 B")));
}

TEST_F(MemoryTargetTest, TwoPortsContendForTheBandwidth) {
  // Two ports, FIFO, both write 1000 B at 0 (10 GB/s -> 100 ns each, 50 ns latency):
  //   port 0: 0..100 ns, done 150 ns; port 1: 100..200 ns, done 250 ns.
  MemoryTargetConfig c = memory_config(1_MiB);
  c.access.initiators = 2;
  MemoryTarget mem("mem", c);
  ScriptedInitiator a("a"), b("b");
  a.socket.bind(mem.target[0]);
  b.socket.bind(mem.target[1]);
  std::vector<unsigned char> da(1000, 1), db(1000, 2);
  std::uint64_t done_a = 0, done_b = 0;
  b.run([&](ScriptedInitiator& self) {
    self.write(0, db);
    done_b = now_ps();
  });
  a.run([&](ScriptedInitiator& self) {
    self.write(2000, da);
    done_a = now_ps();
  });
  run_to_end();
  EXPECT_EQ(done_a, 150'000u);
  EXPECT_EQ(done_b, 250'000u);
}

TEST_F(MemoryTargetTest, ByteEnablesAndStreamingWidth) {
  // Byte enables 0xFF,0x00 repeating over 6 B writes bytes 0, 2, 4 only. A streaming
  // write of 8 B with streaming width 2 writes addresses 100, 101 four times (last wins).
  MemoryTarget mem("mem", memory_config(4_KiB));
  ScriptedInitiator cpu("cpu");
  cpu.socket.bind(mem.target[0]);
  std::vector<unsigned char> back(6), stream_back(3);
  cpu.run([&](ScriptedInitiator& self) {
    unsigned char data[6] = {1, 2, 3, 4, 5, 6};
    unsigned char enables[2] = {TLM_BYTE_ENABLED, TLM_BYTE_DISABLED};
    tlm::tlm_generic_payload p;
    p.set_command(tlm::TLM_WRITE_COMMAND);
    p.set_address(10);
    p.set_data_ptr(data);
    p.set_data_length(6);
    p.set_streaming_width(6);
    p.set_byte_enable_ptr(enables);
    p.set_byte_enable_length(2);
    sc_core::sc_time delay;
    self.socket->b_transport(p, delay);
    EXPECT_EQ(p.get_response_status(), tlm::TLM_OK_RESPONSE);

    unsigned char stream[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tlm::tlm_generic_payload s;
    s.set_command(tlm::TLM_WRITE_COMMAND);
    s.set_address(100);
    s.set_data_ptr(stream);
    s.set_data_length(8);
    s.set_streaming_width(2);
    self.socket->b_transport(s, delay);
    EXPECT_EQ(s.get_response_status(), tlm::TLM_OK_RESPONSE);

    EXPECT_EQ(self.read(10, back), tlm::TLM_OK_RESPONSE);
    EXPECT_EQ(self.read(100, stream_back), tlm::TLM_OK_RESPONSE);
  });
  run_to_end();
  EXPECT_THAT(back, ::testing::ElementsAre(1, 0, 3, 0, 5, 0));
  EXPECT_THAT(stream_back, ::testing::ElementsAre(7, 8, 0));
}

TEST_F(MemoryTargetTest, DebugTransportTakesNoTime) {
  // transport_dbg writes and reads without simulated time; out of range copies 0 bytes.
  MemoryTarget mem("mem", memory_config(4_KiB));
  ScriptedInitiator cpu("cpu");
  cpu.socket.bind(mem.target[0]);
  unsigned char out[4] = {};
  unsigned dbg_out_of_range = 99;
  cpu.run([&](ScriptedInitiator& self) {
    unsigned char in[4] = {9, 8, 7, 6};
    tlm::tlm_generic_payload p;
    p.set_command(tlm::TLM_WRITE_COMMAND);
    p.set_address(8);
    p.set_data_ptr(in);
    p.set_data_length(4);
    EXPECT_EQ(self.socket->transport_dbg(p), 4u);
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_data_ptr(out);
    EXPECT_EQ(self.socket->transport_dbg(p), 4u);
    p.set_address(4094);
    dbg_out_of_range = self.socket->transport_dbg(p);
  });
  run_to_end();
  EXPECT_EQ(now_ps(), 0u);
  EXPECT_THAT(out, ::testing::ElementsAre(9, 8, 7, 6));
  EXPECT_EQ(dbg_out_of_range, 0u);
  EXPECT_EQ(stat<stats::Counter>(mem.stats(), "writes").value(), 0u);
}

}  // namespace
}  // namespace wse::tlm_blocks
