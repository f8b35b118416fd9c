// Quantities with units: parsing, the difference between decimal and binary prefixes,
// bits versus bytes, and the errors for bare numbers and unknown units.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "systemc_models/units/units.h"

namespace wse {
namespace {

TEST(Units, SizesDistinguishDecimalAndBinaryPrefixes) {
  EXPECT_EQ(parse_size("1 KB").bytes, 1000u);
  EXPECT_EQ(parse_size("1 KiB").bytes, 1024u);
  EXPECT_EQ(parse_size("48 KiB").bytes, 49152u);         // one WSE PE's SRAM
  EXPECT_EQ(parse_size("96 GiB").bytes, 103079215104u);  // one Trainium2 chip's HBM
  EXPECT_EQ(parse_size("2 MB").bytes, 2000000u);
  EXPECT_EQ(parse_size("1.5 KiB").bytes, 1536u);
  EXPECT_EQ(parse_size("3 TB").bytes, 3000000000000u);
  EXPECT_EQ(parse_size("1 TiB").bytes, 1099511627776u);
  EXPECT_EQ(parse_size("7B").bytes, 7u);  // no space is fine
}

TEST(Units, BandwidthsInBytesAndBits) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("100 GB/s").bytes_per_s, 100e9);
  // Bits are divided by 8: 100 Gb/s = 12.5 GB/s; "Gbps" is the same unit.
  EXPECT_DOUBLE_EQ(parse_bandwidth("100 Gb/s").bytes_per_s, 12.5e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("100 Gbps").bytes_per_s, 12.5e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("3.2 Tb/s").bytes_per_s, 400e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1.2 Tbps").bytes_per_s, 150e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("21 PB/s").bytes_per_s, 21e15);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1 GiB/s").bytes_per_s, 1073741824.0);
  EXPECT_DOUBLE_EQ(parse_bandwidth("8 b/s").bytes_per_s, 1.0);
}

TEST(Units, FrequenciesAndTimes) {
  EXPECT_DOUBLE_EQ(parse_frequency("1.1 GHz").hz, 1.1e9);
  EXPECT_DOUBLE_EQ(parse_frequency("960 MHz").hz, 960e6);
  EXPECT_DOUBLE_EQ(parse_duration("600 ns").seconds, 600e-9);
  EXPECT_DOUBLE_EQ(parse_duration("15 us").seconds, 15e-6);
  EXPECT_DOUBLE_EQ(parse_duration("625 ps").seconds, 625e-12);
  EXPECT_DOUBLE_EQ(parse_duration("2 s").seconds, 2.0);
  // Cycles need a clock: 31 cycles of a 1.6 GHz clock = 31 x 625 ps = 19.375 ns.
  EXPECT_DOUBLE_EQ(parse_duration("31 cycles", Frequency{1.6e9}).seconds, 31 / 1.6e9);
  EXPECT_EQ(parse_duration("31 cycles", Frequency{1.6e9}).cycles(Frequency{1.6e9}), 31u);
  EXPECT_THROW(parse_duration("31 cycles"), UnitError);
}

TEST(Units, ErrorsNameWhatWasFoundAndWhatIsAllowed) {
  try {
    parse_bandwidth("100");
    FAIL() << "a bare number must be refused";
  } catch (const UnitError& e) {
    EXPECT_EQ(e.found(), "100");
    EXPECT_NE(e.problem().find("needs a unit"), std::string::npos);
    EXPECT_NE(e.allowed().find("Gb/s"), std::string::npos);
  }
  try {
    parse_size("12 furlongs");
    FAIL();
  } catch (const UnitError& e) {
    EXPECT_NE(e.problem().find("unknown size unit 'furlongs'"), std::string::npos);
  }
  EXPECT_THROW(parse_bandwidth("-3 GB/s"), UnitError);
  EXPECT_THROW(parse_size("GB"), UnitError);
  EXPECT_THROW(parse_size(""), UnitError);
  EXPECT_THROW(parse_size("0.3 B"), UnitError);  // not a whole number of bytes
  EXPECT_THROW(parse_frequency("1 GB/s"), UnitError);
  EXPECT_THROW(parse_duration("5 fortnights"), UnitError);
}

// Found by fuzzing (fuzz/regressions/fuzz_units/): "1e300 PB/s" is a finite number
// times a unit factor of 1e15, which overflowed to an infinite bandwidth. It used to be
// accepted, printed as "inf B/s" (which does not parse back) and turned every transfer
// time into 0. Now the product must be finite too.
TEST(Units, ProductOverflowingToInfinityIsRefused) {
  try {
    parse_bandwidth("1e300 PB/s");
    FAIL() << "an infinite bandwidth must be refused";
  } catch (const UnitError& e) {
    EXPECT_EQ(e.problem(), "bandwidth is too large");
    EXPECT_EQ(e.found(), "1e300 PB/s");
  }
  EXPECT_THROW(parse_frequency("1e300 GHz"), UnitError);
  // 1.7e308 cycles of a 0.5 Hz clock = 3.4e308 s, past the largest double.
  EXPECT_THROW(parse_duration("1.7e308 cycles", Frequency{0.5}), UnitError);
  // The largest finite products still parse: 1e293 PB/s = 1e308 B/s.
  EXPECT_DOUBLE_EQ(parse_bandwidth("1e293 PB/s").bytes_per_s, 1e308);
}

// sc_time counts 64-bit picoseconds and SystemC converts a double through a signed
// 64-bit integer: `1e9 s` became 2^63 ps = 9223372.04 s, silently. Configured times
// beyond 2^63 ps are refused; computed ones fail the run (TimeOverflow).
TEST(Units, TimesBeyond2To63PicosecondsAreRefusedNotClamped) {
  try {
    parse_duration("1e9 s");
    FAIL() << "a time past 2^63 ps must be refused";
  } catch (const UnitError& e) {
    EXPECT_EQ(e.problem(),
              "time is longer than a run can simulate, 9223372.036854775 s (2^63 ps, about 106.75 days)");
    EXPECT_EQ(e.found(), "1e9 s");
  }
  EXPECT_THROW(parse_duration("9223373 s"), UnitError);
  EXPECT_THROW(parse_duration("1e19 cycles", Frequency{1e12}), UnitError);  // 1e7 s
  EXPECT_EQ(parse_duration("9223372 s").seconds, 9223372.0);                // just inside
  EXPECT_EQ(sim_time(9223372.0, "t").value(), 9223372000000000000ULL);

  // Computed times: the conversions to sc_time and picoseconds are checked.
  try {
    (void)sim_time(1e9, "a decode step");
    FAIL();
  } catch (const TimeOverflow& e) {
    EXPECT_STREQ(e.what(),
                 "simulated time overflow: a decode step reaches 1000000000 s, beyond the longest time "
                 "a run can simulate, 9223372.036854775 s (2^63 ps, about 106.75 days)");
  }
  EXPECT_THROW((void)sim_ps(1e7, "x"), TimeOverflow);
  EXPECT_THROW((void)sim_ps(std::numeric_limits<double>::quiet_NaN(), "x"), TimeOverflow);
  EXPECT_THROW((void)sim_time(-1.0, "x"), TimeOverflow);
  EXPECT_EQ(sim_ps(1.5e-9, "x"), 1500u);
  EXPECT_THROW((void)add_ps(kMaxSimulatedPs, 1, "x"), TimeOverflow);
  EXPECT_THROW((void)add_ps(UINT64_MAX, UINT64_MAX, "x"), TimeOverflow);  // would wrap to a small number
  EXPECT_EQ(add_ps(kMaxSimulatedPs - 1, 1, "x"), kMaxSimulatedPs);
  EXPECT_THROW((void)Duration{1e9}.to_sc_time(), TimeOverflow);
  EXPECT_THROW((void)Frequency{1e-9}.period(), TimeOverflow);  // a period of 1e9 s
  EXPECT_EQ(Frequency{1e9}.period().value(), 1000u);
}

TEST(Units, CanonicalTextRoundTrips) {
  for (const char* t : {"3.2 Tb/s", "1.1 GHz", "600 ns", "48 KiB", "0.1 B/s"}) {
    SCOPED_TRACE(t);
    if (std::string(t).find("/s") != std::string::npos) {
      const Bandwidth b = parse_bandwidth(t);
      EXPECT_EQ(parse_bandwidth(to_string(b)), b);
    } else if (std::string(t).find("Hz") != std::string::npos) {
      const Frequency f = parse_frequency(t);
      EXPECT_EQ(parse_frequency(to_string(f)), f);
    } else if (std::string(t).find("ns") != std::string::npos) {
      const Duration d = parse_duration(t);
      EXPECT_EQ(parse_duration(to_string(d)), d);
    } else {
      const Size s = parse_size(t);
      EXPECT_EQ(parse_size(to_string(s)), s);
    }
  }
  EXPECT_EQ(pretty(parse_bandwidth("3.2 Tb/s")), "400 GB/s");
  EXPECT_EQ(pretty(parse_duration("15 us")), "15 us");
}

}  // namespace
}  // namespace wse
