// Test fixture giving each test a fresh SystemC kernel, with SystemC warnings and
// errors turned into test failures.
//
// Debian's SystemC 2.3.4 keeps one simulation context per process; without a fresh
// one the second test in a binary fails with "E529 insert module failed: simulation
// running". The fixture swaps in a new sc_simcontext before each test.
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <systemc>

namespace wse::testing {

class SystemCTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Runs the simulation until no event is left, and checks that it really ended.
  void run_to_end();
  // Simulated time now, in picoseconds (exact integer).
  static std::uint64_t now_ps();
};

// Simulated-time helpers for exact comparisons.
inline std::uint64_t ps(const sc_core::sc_time& t) { return t.value(); }

// Path of a file in the source tree.
std::string source_path(const std::string& relative);

}  // namespace wse::testing
