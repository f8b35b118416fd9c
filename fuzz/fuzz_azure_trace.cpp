// Fuzz target: the Azure LLM inference CSV request-trace reader (workloads/trace). The input is the
// trace file. A request read must have positive input tokens, arrivals that start at 0
// and never go backwards, and ids in order.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"
#include "workloads/trace/request_trace.h"

namespace wl = wse::workloads;
using wse::fuzz::finding;
using wse::fuzz::unexpected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  wl::TraceOptions o;
  o.format = wl::TraceFormat::azure_csv;
  o.path = wse::fuzz::write_scratch("trace.csv", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto requests = wl::read_trace(o);
    double last = 0.0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const wl::Request& r = requests[i];
      if (r.id != i) finding("request ids out of order");
      if (r.input_tokens == 0) finding("a request with no input tokens");
      if (!std::isfinite(r.arrival_s) || r.arrival_s < last || (i == 0 && r.arrival_s != 0.0))
        finding("arrival " + std::to_string(r.arrival_s) + " of request " + std::to_string(i));
      last = r.arrival_s;
    }
  } catch (const wse::config::ConfigError&) {
    // bad input, reported with file and line
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
