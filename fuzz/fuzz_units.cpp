// Fuzz target: the quantity parsers (systemc_models/units). Every parser either returns
// a value or throws UnitError; a value's canonical text (to_string) must parse back to
// the same value, as units.h promises, and must be finite; a time must lie within the
// longest simulated time (beyond it SystemC would clamp it).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "systemc_models/units/units.h"

namespace {

using wse::fuzz::finding;
using wse::fuzz::unexpected;

template <class F>
void expect_unit_error_or_value(std::string_view text, F&& f) {
  try {
    f(text);
  } catch (const wse::UnitError&) {
    // bad input, reported
  } catch (const std::exception& e) {
    unexpected(e);
  }
}

void check_finite(double v, std::string_view what, std::string_view text) {
  if (!std::isfinite(v)) finding(std::string(what) + " of '" + std::string(text) + "' is not finite");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  expect_unit_error_or_value(text, [](std::string_view t) {
    const wse::Size v = wse::parse_size(t);
    if (wse::parse_size(wse::to_string(v)) != v) finding("size does not round-trip: " + std::string(t));
    (void)wse::pretty(v);
    (void)wse::pretty_binary(v);
  });
  expect_unit_error_or_value(text, [](std::string_view t) {
    const wse::Bandwidth v = wse::parse_bandwidth(t);
    check_finite(v.bytes_per_s, "bandwidth", t);
    if (wse::parse_bandwidth(wse::to_string(v)) != v)
      finding("bandwidth does not round-trip: " + std::string(t));
    (void)wse::pretty(v);
  });
  expect_unit_error_or_value(text, [](std::string_view t) {
    const wse::Frequency v = wse::parse_frequency(t);
    check_finite(v.hz, "frequency", t);
    if (wse::parse_frequency(wse::to_string(v)) != v)
      finding("frequency does not round-trip: " + std::string(t));
    (void)wse::pretty(v);
  });
  expect_unit_error_or_value(text, [](std::string_view t) {
    const wse::Duration v = wse::parse_duration(t);
    check_finite(v.seconds, "time", t);
    if (v.seconds > wse::kMaxSimulatedSeconds)
      finding("time beyond the longest simulated time: " + std::string(t));
    if (wse::parse_duration(wse::to_string(v)) != v) finding("time does not round-trip: " + std::string(t));
    (void)wse::pretty(v);
  });
  expect_unit_error_or_value(text, [](std::string_view t) {
    // "N cycles" with a clock in scope (the wafer's 1.1 GHz).
    const wse::Duration v = wse::parse_duration(t, wse::Frequency{1.1e9});
    check_finite(v.seconds, "time", t);
    if (v.seconds > wse::kMaxSimulatedSeconds)
      finding("time beyond the longest simulated time: " + std::string(t));
    (void)v.cycles(wse::Frequency{1.1e9});
  });
  return 0;
}
