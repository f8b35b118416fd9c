// A memory behind TLM-2.0 target sockets: a capacity, an access latency and a
// bandwidth shared by its ports, and a sparse backing store (4 KiB pages allocated on
// first write, so a terabyte memory costs nothing until written; unwritten bytes read
// as 0).
//
// Timing: an access of `length` bytes is one transfer on the memory's SharedResource
// (child module "access"): it waits for the ports' arbitration, serializes for
// length / bandwidth (or ceil(length / width) cycles) and completes `latency` later.
// The data is read or written at completion.
//
// Errors are TLM response statuses, counted in the statistics, never an exception or
// an SC_REPORT, and take no time and no bandwidth:
//   command other than read or write (including TLM_IGNORE_COMMAND) -> TLM_COMMAND_ERROR_RESPONSE
//   address + length beyond the capacity (or overflowing)            -> TLM_ADDRESS_ERROR_RESPONSE
//   no data pointer for a non-empty access                            -> TLM_GENERIC_ERROR_RESPONSE
//   a byte-enable pointer with byte-enable length 0                   -> TLM_BYTE_ENABLE_ERROR_RESPONSE
// Byte enables and streaming width are honoured. DMI is not offered.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include "systemc_models/stats/stats.h"
#include "systemc_models/tlm/shared_resource.h"
#include "systemc_models/tlm/transfer_timing.h"
#include "systemc_models/trace/trace.h"
#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::tlm_blocks {

struct MemoryTargetConfig {
  // Addressable bytes [0, capacity). Must be above 0.
  Size capacity{0};
  // Access timing and the arbitration between ports; `access.initiators` is the number
  // of ports (target sockets).
  SharedResourceConfig access;
};

class MemoryTarget : public sc_core::sc_module, public stats::Provider {
 public:
  using TargetSocket = tlm_utils::simple_target_socket_tagged<MemoryTarget>;
  // Granularity of the sparse backing store.
  static constexpr std::uint64_t kPageBytes = 4096;

  // One socket per port (config.access.initiators); every port must be bound.
  sc_core::sc_vector<TargetSocket> target;

  // Throws std::invalid_argument for a capacity of 0 or invalid access timing.
  MemoryTarget(const sc_core::sc_module_name& name, const MemoryTargetConfig& config,
               trace::Writer* trace = nullptr);

  const stats::Group& stats() const override { return stats_; }
  Size capacity() const { return config_.capacity; }
  // Backing store allocated so far (whole pages touched by writes).
  std::uint64_t resident_bytes() const { return pages_.size() * kPageBytes; }
  // The bandwidth/latency resource shared by the ports (its stats hold the utilization).
  const SharedResource& access() const { return *access_; }

 private:
  using Page = std::unique_ptr<unsigned char[]>;

  void b_transport(int port, tlm::tlm_generic_payload& payload, sc_core::sc_time& delay);
  unsigned int transport_dbg(int port, tlm::tlm_generic_payload& payload);
  tlm::tlm_response_status check(const tlm::tlm_generic_payload& payload) const;
  void count_error(tlm::tlm_response_status status);
  // Moves the payload's data to or from the store (the payload has passed check()).
  void move_data(tlm::tlm_generic_payload& payload);
  void read_block(std::uint64_t address, unsigned char* out, std::uint64_t length) const;
  void write_block(std::uint64_t address, const unsigned char* in, std::uint64_t length);
  unsigned char* page_for_write(std::uint64_t page_index);

  const MemoryTargetConfig config_;
  std::unique_ptr<SharedResource> access_;
  std::unordered_map<std::uint64_t, Page> pages_;

  stats::Group stats_;
  stats::Counter& reads_;
  stats::Counter& writes_;
  stats::Counter& read_bytes_;
  stats::Counter& written_bytes_;
  stats::Counter& address_errors_;
  stats::Counter& command_errors_;
  stats::Counter& other_errors_;
  stats::Scalar& resident_;
};

// Reads a memory from a configuration mapping:
//   capacity: 16 GiB
//   bandwidth: 410 GB/s        # or: width: 64 B  plus  clock: 1.6 GHz
//   latency: 100 ns            # or "N cycles" when a clock is given
//   arbitration: fifo          # fifo | round_robin, between ports
//   ports: 2
MemoryTargetConfig read_memory_target_config(config::Section& section, unsigned default_ports = 1);

}  // namespace wse::tlm_blocks
