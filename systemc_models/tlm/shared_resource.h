// A shared bandwidth/latency resource for N initiators: a bus, a link direction, a
// port, anything that serializes transfers one after another and delivers each a
// fixed latency later. Timing equations are in transfer_timing.h and
// docs/building_blocks.md.
//
// Initiators reach it through the TLM-2.0 target sockets `target[i]` (blocking
// transport; the data length of the payload is the transfer size; the payload's data
// is not touched), or from a SystemC thread of an enclosing model through transfer().
// Requests that wait for the resource are granted one at a time by the configured
// arbitration policy.
//
// Arbitration instant: the resource decides one delta cycle after a request arrives
// while it is idle, and one delta cycle after the serialization in progress ends, so
// that every request made at that simulated instant (in the same delta cycle) competes.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include "systemc_models/stats/stats.h"
#include "systemc_models/tlm/transfer_timing.h"
#include "systemc_models/trace/trace.h"

namespace wse::config {
class Section;
}

namespace wse::tlm_blocks {

class SharedResource : public sc_core::sc_module, public stats::Provider {
 public:
  // Sockets need not be bound: a model may use transfer() only.
  using TargetSocket = tlm_utils::simple_target_socket_tagged_optional<SharedResource>;

  // One socket per initiator; socket i is initiator index i for arbitration.
  sc_core::sc_vector<TargetSocket> target;

  // `trace`, when not null, receives one slice per transfer (its serialization) on a
  // track named after this module.
  SharedResource(const sc_core::sc_module_name& name, const SharedResourceConfig& config,
                 trace::Writer* trace = nullptr);

  // Moves `bytes` for initiator `initiator`: waits for arbitration, the serialization
  // and the latency, and returns at completion. Call from an SC_THREAD.
  void transfer(unsigned initiator, std::uint64_t bytes);

  const stats::Group& stats() const override { return stats_; }
  const SharedResourceConfig& config() const { return config_; }
  const TransferTiming& timing() const { return timing_; }
  // Total serialization time granted so far (exact).
  sc_core::sc_time busy_time() const { return ps_to_sc_time(busy_ps_); }
  // busy / elapsed since time 0 (the same figure as the `utilization` stat).
  double utilization(const sc_core::sc_time& elapsed) const;
  // Requests waiting for the resource (not yet serializing).
  std::size_t pending() const { return pending_count_; }

 private:
  struct Request {
    Request(unsigned initiator_index, std::uint64_t size_bytes, const sc_core::sc_time& at)
        : initiator(initiator_index), bytes(size_bytes), requested(at) {}
    unsigned initiator;
    std::uint64_t bytes;
    sc_core::sc_time requested;
    sc_core::sc_event done;
  };

  SC_HAS_PROCESS(SharedResource);
  void b_transport(int id, tlm::tlm_generic_payload& payload, sc_core::sc_time& delay);
  // SC_METHOD: grants the resource to the next request when it is idle.
  void arbitrate();
  Request* pick();

  const SharedResourceConfig config_;
  const TransferTiming timing_;
  trace::Writer* trace_;
  trace::TrackId track_ = 0;

  std::vector<std::deque<Request*>> pending_;  // per initiator, oldest first
  std::size_t pending_count_ = 0;
  unsigned round_robin_next_ = 0;
  bool serializing_ = false;
  std::uint64_t busy_ps_ = 0;
  sc_core::sc_event request_arrived_;

  stats::Group stats_;
  stats::Counter& transactions_;
  stats::Counter& bytes_;
  stats::Utilization& utilization_;
  stats::Distribution& wait_time_;
  stats::Distribution& transfer_time_;
};

// Reads a shared resource from a configuration mapping:
//   bandwidth: 64 GB/s            # or: width: 32 B  plus  clock: 1.4 GHz
//   latency: 100 ns               # or "N cycles" when a clock is given
//   arbitration: fifo             # fifo | round_robin
//   initiators: 4
// `default_initiators` is the default of `initiators` (e.g. the number of ports a
// model wires up).
SharedResourceConfig read_shared_resource_config(config::Section& section, unsigned default_initiators = 1);

}  // namespace wse::tlm_blocks
