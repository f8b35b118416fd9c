// Fuzz target: the operator-trace reader (workloads/model/op_trace). The input is the
// JSON Lines file. A trace that reads must write back to text that reads to an equal
// trace.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"
#include "workloads/model/op_trace.h"

namespace wl = wse::workloads;
using wse::fuzz::finding;
using wse::fuzz::unexpected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const wl::OpTrace t = wl::read_op_trace(in, "fuzz.jsonl");
    (void)t.graph.total_flops();
    (void)t.graph.total_bytes();
    std::stringstream again;
    wl::write_op_trace(again, t);
    try {
      if (wl::read_op_trace(again, "<written>") != t) finding("a trace does not read back equal");
    } catch (const wse::config::ConfigError& e) {
      finding(std::string("a written trace does not read back: ") + e.what());
    }
  } catch (const wse::config::ConfigError&) {
    // bad input, reported with file, line and key
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
