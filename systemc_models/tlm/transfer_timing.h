// Timing of a pipelined, shared transfer resource (a bus, a link direction, a memory
// channel), resolved once from its configuration into integer picoseconds.
//
// A transfer of `bytes` occupies the resource for its serialization time
//   width mode:      ceil(bytes / width) cycles of `clock`
//   bandwidth mode:  bytes / bandwidth
// and completes `latency` after its serialization ends. The next transfer may start
// serializing as soon as the previous one has finished serializing (the latency is a
// pipeline, not an occupancy), so one uncontended transfer takes
//   latency + serialization(bytes).
//
// BandwidthCalendar applies this to back-to-back reservations without SystemC, for
// models that arbitrate themselves (calendar/event-driven models of many resources).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <systemc>

#include "systemc_models/units/units.h"

namespace wse::tlm_blocks {

// How requests that wait for the resource at the same time are ordered.
enum class Arbitration {
  // Oldest request first (by the simulated time it was made); ties go to the lower
  // initiator index, then to the earlier request of that initiator.
  Fifo,
  // Rotating priority: after initiator i is served, the search for the next one starts
  // at i + 1 and takes the first initiator with a pending request (its oldest request).
  RoundRobin,
};

std::string_view to_string(Arbitration a);

struct SharedResourceConfig {
  // Serialization rate: `width` bytes per cycle of `clock` when width > 0 (a transfer
  // takes whole cycles), otherwise `bandwidth`. Give one or the other, not both.
  Size width{0};
  Frequency clock{0.0};
  Bandwidth bandwidth{0.0};
  // From the end of a transfer's serialization to its completion (pipeline depth,
  // wire and access delay).
  Duration latency{0.0};
  Arbitration arbitration = Arbitration::Fifo;
  // Number of initiators (target sockets, or initiator indices of transfer()).
  unsigned initiators = 1;
};

// Checks `config`; throws std::invalid_argument naming `who` and the offending field.
void validate(const SharedResourceConfig& config, std::string_view who);

// Picoseconds <-> sc_time (SystemC's default resolution is 1 ps; the conversion goes
// through SC_PS so that it stays right under any other resolution that divides 1 ps).
sc_core::sc_time ps_to_sc_time(std::uint64_t ps);
std::uint64_t sc_time_to_ps(const sc_core::sc_time& t);

class TransferTiming {
 public:
  // Validates `config` (see validate()).
  TransferTiming(const SharedResourceConfig& config, std::string_view who);

  // Time the resource is occupied by a transfer of `bytes`, rounded to the nearest
  // picosecond (width mode: whole cycles first, then cycles x period).
  [[nodiscard]] std::uint64_t serialization_ps(std::uint64_t bytes) const;
  // Cycles of `clock` for `bytes` in width mode (0 in bandwidth mode).
  [[nodiscard]] std::uint64_t cycles(std::uint64_t bytes) const;
  [[nodiscard]] std::uint64_t latency_ps() const { return latency_ps_; }
  // Uncontended completion time of one transfer: latency + serialization.
  [[nodiscard]] std::uint64_t unloaded_ps(std::uint64_t bytes) const {
    return add_ps(latency_ps_, serialization_ps(bytes), "a transfer's latency and serialization");
  }
  // Peak rate: width x clock, or the bandwidth.
  [[nodiscard]] Bandwidth peak_bandwidth() const;
  [[nodiscard]] bool width_mode() const { return width_bytes_ > 0; }

 private:
  // Rounded picoseconds; a time beyond kMaxSimulatedPs throws TimeOverflow.
  [[nodiscard]] std::uint64_t checked(double ps, std::uint64_t bytes) const;
  std::string who_;
  std::uint64_t width_bytes_ = 0;
  double clock_hz_ = 0.0;
  double bytes_per_s_ = 0.0;
  std::uint64_t latency_ps_ = 0;
};

// Back-to-back reservations of one resource, served in call order (the caller decides
// the order, e.g. by processing requests in time order). Plain C++, no SystemC kernel.
class BandwidthCalendar {
 public:
  struct Reservation {
    std::uint64_t start_ps = 0;       // serialization starts
    std::uint64_t serialized_ps = 0;  // serialization ends; the resource is free again
    std::uint64_t done_ps = 0;        // serialized_ps + latency
  };

  BandwidthCalendar(const SharedResourceConfig& config, std::string_view who) : timing_(config, who) {}

  // Reserves the resource for `bytes`, starting no earlier than `ready_ps`.
  Reservation reserve(std::uint64_t ready_ps, std::uint64_t bytes);

  [[nodiscard]] std::uint64_t free_at_ps() const { return free_at_ps_; }
  // Sum of serialization times reserved so far.
  [[nodiscard]] std::uint64_t busy_ps() const { return busy_ps_; }
  [[nodiscard]] const TransferTiming& timing() const { return timing_; }

 private:
  TransferTiming timing_;
  std::uint64_t free_at_ps_ = 0;
  std::uint64_t busy_ps_ = 0;
};

}  // namespace wse::tlm_blocks
