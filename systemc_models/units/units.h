// Typed physical quantities used by every configuration struct, and their parsers.
//
// A quantity is parsed once, at configuration time, from text such as "48 KiB",
// "3.2 Tb/s", "1.1 GHz" or "600 ns"; models then carry the typed value and never see
// strings. Decimal prefixes are powers of 1000 and binary prefixes powers of 1024
// ("1 KB" = 1000 B, "1 KiB" = 1024 B). Bandwidths given in bits ("b/s", "Gb/s",
// "Gbps") are converted to bytes per second (divided by 8).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <systemc>

namespace wse {

// Bytes of storage or of a transfer.
struct Size {
  std::uint64_t bytes = 0;
  constexpr auto operator<=>(const Size&) const = default;
};

// Bytes per second.
struct Bandwidth {
  double bytes_per_s = 0.0;
  constexpr auto operator<=>(const Bandwidth&) const = default;
  // Time to move `bytes` at this rate (no latency).
  [[nodiscard]] double seconds_for(std::uint64_t bytes) const {
    return static_cast<double>(bytes) / bytes_per_s;
  }
};

// Clock frequency in hertz.
struct Frequency {
  double hz = 0.0;
  constexpr auto operator<=>(const Frequency&) const = default;
  [[nodiscard]] double period_s() const { return 1.0 / hz; }
  [[nodiscard]] sc_core::sc_time period() const;
};

// A span of simulated time in seconds. Kept as double seconds at configuration level;
// models convert once to sc_time (resolution 1 ps) or to integer cycles of their clock.
struct Duration {
  double seconds = 0.0;
  constexpr auto operator<=>(const Duration&) const = default;
  [[nodiscard]] sc_core::sc_time to_sc_time() const;
  // Whole cycles of `clock` in this duration, rounded to nearest.
  [[nodiscard]] std::uint64_t cycles(Frequency clock) const;
};

// The longest span of simulated time. sc_time counts picoseconds in 64 bits, and
// SystemC 2.3 converts a double to it through a signed 64-bit integer, so a time of
// 2^63 ps (9,223,372.04 s, about 106.75 days) or more does not fit: the conversion
// saturates and the run would report a wrong, clamped figure. Every configured time is
// refused beyond this limit (parse_duration), and every time a model computes goes
// through the checked conversions below.
inline constexpr double kMaxSimulatedSeconds = 9223372.036854775;
inline constexpr std::uint64_t kMaxSimulatedPs = 9223372036854775000ULL;
// "9223372.036854775 s (2^63 ps, about 106.75 days)": for messages.
std::string max_simulated_time_text();

// A computed time that does not fit (see kMaxSimulatedSeconds). The run fails (exit 1)
// with the message, which names what overflowed; nothing is clamped.
class TimeOverflow : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

// Checked conversions of a computed time in seconds; `what` names it in the error
// ("decode step of system 0", ...). Negative or non-finite times are errors too.
[[nodiscard]] sc_core::sc_time sim_time(double seconds, std::string_view what);
[[nodiscard]] std::uint64_t sim_ps(double seconds, std::string_view what);
// A delay from now (sc_time_stamp()): its end must fit as well.
[[nodiscard]] sc_core::sc_time sim_delay(double seconds, std::string_view what);
// a + b in picoseconds, checked against kMaxSimulatedPs.
[[nodiscard]] std::uint64_t add_ps(std::uint64_t a, std::uint64_t b, std::string_view what);

// Thrown by the parsers below. `found` is the offending text; `allowed` lists what the
// parser accepts. The configuration layer adds file, line, column and key path.
class UnitError : public std::runtime_error {
 public:
  UnitError(std::string problem, std::string found, std::string allowed);
  const std::string& problem() const { return problem_; }
  const std::string& found() const { return found_; }
  const std::string& allowed() const { return allowed_; }

 private:
  std::string problem_;
  std::string found_;
  std::string allowed_;
};

// The unit lists used in error messages ("allowed: ...").
inline constexpr std::string_view kSizeUnits = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB";
inline constexpr std::string_view kBandwidthUnits =
    "B/s, KB/s, MB/s, GB/s, TB/s, PB/s, KiB/s, MiB/s, GiB/s, TiB/s, b/s, Kb/s, Mb/s, Gb/s, "
    "Tb/s, Pb/s, bps, Kbps, Mbps, Gbps, Tbps, Pbps";
inline constexpr std::string_view kFrequencyUnits = "Hz, kHz, KHz, MHz, GHz";
inline constexpr std::string_view kDurationUnits = "ps, ns, us, ms, s (or cycles, where a clock is in scope)";

// Parsers: "<number> <unit>", whitespace between optional. A bare number is an error.
Size parse_size(std::string_view text);
Bandwidth parse_bandwidth(std::string_view text);
Frequency parse_frequency(std::string_view text);
// `clock`, when given, allows "N cycles" (converted with that clock's period).
Duration parse_duration(std::string_view text, std::optional<Frequency> clock = std::nullopt);

// Canonical text that parses back to exactly the same value.
std::string to_string(Size v);
std::string to_string(Bandwidth v);
std::string to_string(Frequency v);
std::string to_string(Duration v);

// Human-friendly rendering with an SI prefix and 4 significant digits (for tables).
std::string pretty(Size v);
std::string pretty(Bandwidth v);
std::string pretty(Frequency v);
std::string pretty(Duration v);
// Sizes in binary units with two decimals ("33.75 MiB"), as memory capacities are stated.
std::string pretty_binary(Size v);

namespace literals {
constexpr Size operator""_B(unsigned long long v) { return Size{v}; }
constexpr Size operator""_KiB(unsigned long long v) { return Size{v * 1024ULL}; }
constexpr Size operator""_MiB(unsigned long long v) { return Size{v * 1024ULL * 1024ULL}; }
constexpr Size operator""_GiB(unsigned long long v) { return Size{v * 1024ULL * 1024ULL * 1024ULL}; }
}  // namespace literals

}  // namespace wse
