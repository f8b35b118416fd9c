#include "systemc_models/units/units.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace wse {

namespace {

struct UnitFactor {
  std::string_view name;
  double factor;
};

// Sizes: decimal (KB = 1000) and binary (KiB = 1024) prefixes are different units.
constexpr std::array kSizeTable{
    UnitFactor{"B", 1.0},
    UnitFactor{"KB", 1e3},
    UnitFactor{"MB", 1e6},
    UnitFactor{"GB", 1e9},
    UnitFactor{"TB", 1e12},
    UnitFactor{"PB", 1e15},
    UnitFactor{"KiB", 1024.0},
    UnitFactor{"MiB", 1048576.0},
    UnitFactor{"GiB", 1073741824.0},
    UnitFactor{"TiB", 1099511627776.0},
};

constexpr std::array kBandwidthTable{
    UnitFactor{"B/s", 1.0},
    UnitFactor{"KB/s", 1e3},
    UnitFactor{"MB/s", 1e6},
    UnitFactor{"GB/s", 1e9},
    UnitFactor{"TB/s", 1e12},
    UnitFactor{"PB/s", 1e15},
    UnitFactor{"KiB/s", 1024.0},
    UnitFactor{"MiB/s", 1048576.0},
    UnitFactor{"GiB/s", 1073741824.0},
    UnitFactor{"TiB/s", 1099511627776.0},
    // Bits: divide by 8.
    UnitFactor{"b/s", 1.0 / 8},
    UnitFactor{"Kb/s", 1e3 / 8},
    UnitFactor{"Mb/s", 1e6 / 8},
    UnitFactor{"Gb/s", 1e9 / 8},
    UnitFactor{"Tb/s", 1e12 / 8},
    UnitFactor{"Pb/s", 1e15 / 8},
    UnitFactor{"bps", 1.0 / 8},
    UnitFactor{"Kbps", 1e3 / 8},
    UnitFactor{"Mbps", 1e6 / 8},
    UnitFactor{"Gbps", 1e9 / 8},
    UnitFactor{"Tbps", 1e12 / 8},
    UnitFactor{"Pbps", 1e15 / 8},
};

constexpr std::array kFrequencyTable{
    UnitFactor{"Hz", 1.0},  UnitFactor{"kHz", 1e3}, UnitFactor{"KHz", 1e3},
    UnitFactor{"MHz", 1e6}, UnitFactor{"GHz", 1e9},
};

constexpr std::array kDurationTable{
    UnitFactor{"ps", 1e-12}, UnitFactor{"ns", 1e-9}, UnitFactor{"us", 1e-6},
    UnitFactor{"ms", 1e-3},  UnitFactor{"s", 1.0},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct NumberAndUnit {
  double number;
  std::string_view unit;
};

// Splits "12.5 GB/s" into 12.5 and "GB/s". The number must be finite; the unit must
// be present (a bare number is an error because it hides which unit was meant).
NumberAndUnit split(std::string_view text, std::string_view what, std::string_view allowed) {
  const std::string_view t = trim(text);
  const std::string found{text};
  if (t.empty()) throw UnitError("empty " + std::string(what), found, std::string(allowed));
  double number = 0.0;
  const char* begin = t.data();
  const char* end = t.data() + t.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || ptr == begin) {
    throw UnitError(std::string(what) + " must start with a number", found, std::string(allowed));
  }
  if (!std::isfinite(number)) {
    throw UnitError(std::string(what) + " must be finite", found, std::string(allowed));
  }
  std::string_view unit = trim(std::string_view(ptr, static_cast<std::size_t>(end - ptr)));
  if (unit.empty()) {
    throw UnitError(std::string(what) + " needs a unit", found, std::string(allowed));
  }
  return {number, unit};
}

template <std::size_t N>
double lookup(const std::array<UnitFactor, N>& table, std::string_view unit, std::string_view what,
              std::string_view text, std::string_view allowed) {
  for (const auto& u : table) {
    if (u.name == unit) return u.factor;
  }
  throw UnitError("unknown " + std::string(what) + " unit '" + std::string(unit) + "'", std::string(text),
                  std::string(allowed));
}

void require_non_negative(double v, std::string_view what, std::string_view text, std::string_view allowed) {
  if (v < 0.0) {
    throw UnitError(std::string(what) + " cannot be negative", std::string(text), std::string(allowed));
  }
}

// The number is finite, but times a unit factor it can overflow ("1e300 PB/s"); an
// infinite rate or time would turn into zero or endless transfers downstream.
double finite_product(double v, std::string_view what, std::string_view text, std::string_view allowed) {
  if (!std::isfinite(v)) {
    throw UnitError(std::string(what) + " is too large", std::string(text), std::string(allowed));
  }
  return v;
}

// A configured time must fit in simulated time (kMaxSimulatedSeconds): beyond it
// SystemC would clamp it silently.
Duration within_simulated_time(double seconds, std::string_view text) {
  if (seconds > kMaxSimulatedSeconds) {
    throw UnitError("time is longer than a run can simulate, " + max_simulated_time_text(), std::string(text),
                    "ps, ns, us, ms, s up to 9223372.036854775 s");
  }
  return Duration{seconds};
}

// Shortest decimal text that round-trips to the same double.
std::string exact(double v) {
  std::array<char, 64> buf{};
  auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  (void)ec;
  return std::string(buf.data(), ptr);
}

std::string with_prefix(double v, std::string_view base, double step = 1000.0) {
  static constexpr std::array<std::string_view, 6> prefixes{"", "K", "M", "G", "T", "P"};
  std::size_t i = 0;
  double x = v;
  while (std::fabs(x) >= step && i + 1 < prefixes.size()) {
    x /= step;
    ++i;
  }
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.4g %s%s", x, std::string(prefixes[i]).c_str(),
                std::string(base).c_str());
  return buf.data();
}

}  // namespace

UnitError::UnitError(std::string problem, std::string found, std::string allowed)
    : std::runtime_error(problem + " (found '" + found + "'; allowed units: " + allowed + ")"),
      problem_(std::move(problem)),
      found_(std::move(found)),
      allowed_(std::move(allowed)) {}

sc_core::sc_time Frequency::period() const { return sim_time(1.0 / hz, "a clock period"); }

sc_core::sc_time Duration::to_sc_time() const { return sim_time(seconds, "a configured time"); }

std::string max_simulated_time_text() { return "9223372.036854775 s (2^63 ps, about 106.75 days)"; }

namespace {
[[noreturn]] void time_overflow(double seconds, std::string_view what) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.17g", seconds);
  if (!(seconds >= 0.0)) {
    throw TimeOverflow("invalid simulated time: " + std::string(what) + " is " + buf.data() + " s");
  }
  throw TimeOverflow("simulated time overflow: " + std::string(what) + " reaches " + buf.data() +
                     " s, beyond the longest time a run can simulate, " + max_simulated_time_text());
}
}  // namespace

sc_core::sc_time sim_time(double seconds, std::string_view what) {
  if (!(seconds >= 0.0) || !(seconds <= kMaxSimulatedSeconds)) time_overflow(seconds, what);
  return sc_core::sc_time(seconds, sc_core::SC_SEC);
}

std::uint64_t sim_ps(double seconds, std::string_view what) {
  if (!(seconds >= 0.0) || !(seconds <= kMaxSimulatedSeconds)) time_overflow(seconds, what);
  return static_cast<std::uint64_t>(std::llround(seconds * 1e12));
}

sc_core::sc_time sim_delay(double seconds, std::string_view what) {
  if (!(seconds >= 0.0) || !(seconds <= kMaxSimulatedSeconds)) time_overflow(seconds, what);
  const double end = sc_core::sc_time_stamp().to_seconds() + seconds;
  if (!(end <= kMaxSimulatedSeconds)) time_overflow(end, what);
  return sc_core::sc_time(seconds, sc_core::SC_SEC);
}

std::uint64_t add_ps(std::uint64_t a, std::uint64_t b, std::string_view what) {
  if (a > kMaxSimulatedPs || b > kMaxSimulatedPs - a) {
    time_overflow(static_cast<double>(a) * 1e-12 + static_cast<double>(b) * 1e-12, what);
  }
  return a + b;
}

std::uint64_t Duration::cycles(Frequency clock) const {
  return static_cast<std::uint64_t>(std::llround(seconds * clock.hz));
}

Size parse_size(std::string_view text) {
  const auto [n, unit] = split(text, "size", kSizeUnits);
  require_non_negative(n, "size", text, kSizeUnits);
  const double bytes = n * lookup(kSizeTable, unit, "size", text, kSizeUnits);
  // NOLINTNEXTLINE(bugprone-integer-division): half the largest count, in whole bytes
  if (bytes > static_cast<double>(std::numeric_limits<std::uint64_t>::max() / 2)) {
    throw UnitError("size is too large", std::string(text), std::string(kSizeUnits));
  }
  const double rounded = std::round(bytes);
  if (std::fabs(bytes - rounded) > 1e-6 * std::max(1.0, bytes)) {
    throw UnitError("size must be a whole number of bytes", std::string(text), std::string(kSizeUnits));
  }
  return Size{static_cast<std::uint64_t>(rounded)};
}

Bandwidth parse_bandwidth(std::string_view text) {
  const auto [n, unit] = split(text, "bandwidth", kBandwidthUnits);
  require_non_negative(n, "bandwidth", text, kBandwidthUnits);
  return Bandwidth{finite_product(n * lookup(kBandwidthTable, unit, "bandwidth", text, kBandwidthUnits),
                                  "bandwidth", text, kBandwidthUnits)};
}

Frequency parse_frequency(std::string_view text) {
  const auto [n, unit] = split(text, "frequency", kFrequencyUnits);
  require_non_negative(n, "frequency", text, kFrequencyUnits);
  return Frequency{finite_product(n * lookup(kFrequencyTable, unit, "frequency", text, kFrequencyUnits),
                                  "frequency", text, kFrequencyUnits)};
}

Duration parse_duration(std::string_view text, std::optional<Frequency> clock) {
  const auto [n, unit] = split(text, "time", kDurationUnits);
  require_non_negative(n, "time", text, kDurationUnits);
  if (unit == "cycles" || unit == "cycle") {
    if (!clock) {
      throw UnitError("'cycles' needs a clock, and none is in scope for this key", std::string(text),
                      "ps, ns, us, ms, s");
    }
    return within_simulated_time(finite_product(n / clock->hz, "time", text, kDurationUnits), text);
  }
  return within_simulated_time(finite_product(n * lookup(kDurationTable, unit, "time", text, kDurationUnits),
                                              "time", text, kDurationUnits),
                               text);
}

std::string to_string(Size v) { return std::to_string(v.bytes) + " B"; }
std::string to_string(Bandwidth v) { return exact(v.bytes_per_s) + " B/s"; }
std::string to_string(Frequency v) { return exact(v.hz) + " Hz"; }
std::string to_string(Duration v) { return exact(v.seconds) + " s"; }

std::string pretty(Size v) { return with_prefix(static_cast<double>(v.bytes), "B"); }
std::string pretty(Bandwidth v) { return with_prefix(v.bytes_per_s, "B/s"); }
std::string pretty(Frequency v) { return with_prefix(v.hz, "Hz"); }
std::string pretty_binary(Size v) {
  static constexpr std::array<std::string_view, 6> units{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double x = static_cast<double>(v.bytes);
  std::size_t u = 0;
  while (x >= 1024.0 && u + 1 < units.size()) {
    x /= 1024.0;
    ++u;
  }
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.2f %s", x, std::string(units[u]).c_str());
  return buf.data();
}

std::string pretty(Duration v) {
  const double s = v.seconds;
  std::array<char, 64> buf{};
  if (s == 0.0) return "0 s";
  if (s < 1e-9)
    std::snprintf(buf.data(), buf.size(), "%.4g ps", s * 1e12);
  else if (s < 1e-6)
    std::snprintf(buf.data(), buf.size(), "%.4g ns", s * 1e9);
  else if (s < 1e-3)
    std::snprintf(buf.data(), buf.size(), "%.4g us", s * 1e6);
  else if (s < 1.0)
    std::snprintf(buf.data(), buf.size(), "%.4g ms", s * 1e3);
  else
    std::snprintf(buf.data(), buf.size(), "%.4g s", s);
  return buf.data();
}

}  // namespace wse
