#include "systemc_models/tlm/transfer_timing.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace wse::tlm_blocks {

namespace {
[[noreturn]] void invalid(std::string_view who, const std::string& message) {
  throw std::invalid_argument(std::string(who) + ": " + message);
}

}  // namespace

std::string_view to_string(Arbitration a) {
  switch (a) {
    case Arbitration::Fifo:
      return "fifo";
    case Arbitration::RoundRobin:
      return "round_robin";
  }
  return "?";
}

void validate(const SharedResourceConfig& c, std::string_view who) {
  if (c.width.bytes > 0) {
    if (!(c.clock.hz > 0.0) || !std::isfinite(c.clock.hz)) {
      invalid(who, "a width of " + to_string(c.width) + " per cycle needs a clock above 0 Hz (got " +
                       to_string(c.clock) + ")");
    }
    if (c.bandwidth.bytes_per_s != 0.0) {
      invalid(who, "give either a bandwidth, or a width and a clock, not both (got width " +
                       to_string(c.width) + " and bandwidth " + to_string(c.bandwidth) + ")");
    }
  } else if (!(c.bandwidth.bytes_per_s > 0.0) || !std::isfinite(c.bandwidth.bytes_per_s)) {
    invalid(who, "bandwidth must be above 0 B/s, or give a width and a clock (got bandwidth " +
                     to_string(c.bandwidth) + ")");
  }
  if (!(c.latency.seconds >= 0.0) || !std::isfinite(c.latency.seconds)) {
    invalid(who, "latency must be 0 s or more (got " + to_string(c.latency) + ")");
  }
  if (c.initiators == 0) invalid(who, "the number of initiators must be at least 1 (got 0)");
}

sc_core::sc_time ps_to_sc_time(std::uint64_t ps) {
  if (ps > kMaxSimulatedPs) {
    throw TimeOverflow("simulated time overflow: a time of " + std::to_string(ps) +
                       " ps is beyond the longest time a run can simulate, " + max_simulated_time_text());
  }
  return sc_core::sc_time(static_cast<double>(ps), sc_core::SC_PS);
}

std::uint64_t sc_time_to_ps(const sc_core::sc_time& t) {
  return static_cast<std::uint64_t>(std::llround(t / sc_core::sc_time(1.0, sc_core::SC_PS)));
}

TransferTiming::TransferTiming(const SharedResourceConfig& c, std::string_view who) : who_(who) {
  validate(c, who);
  width_bytes_ = c.width.bytes;
  clock_hz_ = c.clock.hz;
  bytes_per_s_ = c.bandwidth.bytes_per_s;
  latency_ps_ = sim_ps(c.latency.seconds, who_ + ": latency");
}

std::uint64_t TransferTiming::cycles(std::uint64_t bytes) const {
  if (width_bytes_ == 0) return 0;
  return bytes / width_bytes_ + (bytes % width_bytes_ != 0 ? 1 : 0);
}

std::uint64_t TransferTiming::serialization_ps(std::uint64_t bytes) const {
  if (width_bytes_ > 0) {
    // Whole cycles, then cycles x period in one rounding (no per-cycle drift when the
    // period is not a whole number of picoseconds, e.g. 1.1 GHz).
    return checked(static_cast<double>(cycles(bytes)) * 1e12 / clock_hz_, bytes);
  }
  return checked(static_cast<double>(bytes) * 1e12 / bytes_per_s_, bytes);
}

std::uint64_t TransferTiming::checked(double ps, std::uint64_t bytes) const {
  if (ps <= static_cast<double>(kMaxSimulatedPs)) return static_cast<std::uint64_t>(std::llround(ps));
  return sim_ps(ps * 1e-12,
                who_ + ": a transfer of " + std::to_string(bytes) + " B at " + pretty(peak_bandwidth()));
}

Bandwidth TransferTiming::peak_bandwidth() const {
  if (width_bytes_ > 0) return Bandwidth{static_cast<double>(width_bytes_) * clock_hz_};
  return Bandwidth{bytes_per_s_};
}

BandwidthCalendar::Reservation BandwidthCalendar::reserve(std::uint64_t ready_ps, std::uint64_t bytes) {
  Reservation r;
  r.start_ps = ready_ps > free_at_ps_ ? ready_ps : free_at_ps_;
  const std::uint64_t serialization = timing_.serialization_ps(bytes);
  r.serialized_ps = add_ps(r.start_ps, serialization, "the end of a transfer's serialization");
  r.done_ps = add_ps(r.serialized_ps, timing_.latency_ps(), "the end of a transfer");
  free_at_ps_ = r.serialized_ps;
  busy_ps_ += serialization;
  return r;
}

}  // namespace wse::tlm_blocks
