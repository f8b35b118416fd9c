// Fuzz target: the operator-trace reader (workloads/model/op_trace). The input is the
// JSON Lines file. A trace that reads must write back to text that reads to an equal
// trace; a gemm written without "flops" must have 2 x m x k x n x count of them (as
// computed in floating point: 64-bit wrap-around would break this), and the trace's
// total must equal the sum of its operators' FLOPs, computed in floating point.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

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
    // The operator lines, in order: every non-blank line after the header.
    std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
    std::string line;
    std::size_t i = 0;
    bool header = true;
    double sum = 0;
    while (std::getline(lines, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      if (header) {
        header = false;
        continue;
      }
      if (i >= t.graph.ops.size()) break;
      const wl::Operator& op = t.graph.ops[i++];
      sum += static_cast<double>(op.flops);
      if (op.kind != wl::OpKind::gemm || nlohmann::json::parse(line).contains("flops")) continue;
      const double exact = 2.0 * static_cast<double>(op.m) * static_cast<double>(op.k) *
                           static_cast<double>(op.n) * static_cast<double>(op.count);
      if (std::fabs(static_cast<double>(op.flops) - exact) > 1e-9 * exact)
        finding("gemm FLOPs " + std::to_string(op.flops) + " are not 2 x m x k x n x count");
    }
    if (std::fabs(static_cast<double>(t.graph.total_flops()) - sum) > 1e-9 * sum)
      finding("total FLOPs " + std::to_string(t.graph.total_flops()) + " are not the sum of the operators'");
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
