#include <cstdlib>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <systemc>

#include "util/systemc_test.h"

namespace wse::testing {

namespace {
// SystemC reports of severity warning and above fail the current test.
void report_handler(const sc_core::sc_report& r, const sc_core::sc_actions& actions) {
  if (r.get_severity() >= sc_core::SC_WARNING) {
    ADD_FAILURE() << "SystemC " << (r.get_severity() == sc_core::SC_WARNING ? "warning" : "error") << " ["
                  << r.get_msg_type() << "]: " << r.get_msg();
    return;
  }
  sc_core::sc_report_handler::default_handler(r, actions & ~sc_core::SC_STOP & ~sc_core::SC_ABORT);
}
}  // namespace

void SystemCTest::SetUp() {
  // A fresh kernel: the old context is kept, not destroyed (SystemC 2.3 cannot destroy a
  // context whose modules still exist; tests are short-lived processes). Kept reachable
  // from a global, so that LeakSanitizer (scripts/test_sanitizers.sh) does not report it.
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): outlives every test, on purpose
  static auto* retired = new std::vector<sc_core::sc_simcontext*>();
  retired->push_back(sc_core::sc_curr_simcontext);
  sc_core::sc_curr_simcontext = new sc_core::sc_simcontext();
  sc_core::sc_default_global_context = sc_core::sc_curr_simcontext;
  sc_core::sc_report_handler::set_handler(report_handler);
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
}

void SystemCTest::TearDown() {}

void SystemCTest::run_to_end() {
  sc_core::sc_start();
  EXPECT_FALSE(sc_core::sc_pending_activity()) << "simulation stopped with events pending";
}

std::uint64_t SystemCTest::now_ps() { return sc_core::sc_time_stamp().value(); }

std::string source_path(const std::string& relative) { return std::string(WSE_SOURCE_DIR) + "/" + relative; }

}  // namespace wse::testing

// Tests use GoogleTest's runner inside SystemC's sc_main.
int sc_main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

int main(int argc, char** argv) {
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
