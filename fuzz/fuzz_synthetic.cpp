// Fuzz target: the synthetic request generator (workloads/trace), through its
// configuration reader. The input is the YAML of a `trace:` section (format synthetic);
// a trace that reads is generated. Every arrival must be finite, start at 0, never go
// backwards and lie within the longest simulated time; every length must lie within its
// distribution's bounds. The generator must return (the 10 s timeout would have caught
// the gamma generator that never accepted a draw at cv 1e-160).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"
#include "workloads/trace/request_trace.h"

namespace wl = wse::workloads;
using wse::fuzz::finding;
using wse::fuzz::unexpected;

namespace {

void check_length(std::uint32_t n, const wl::LengthSpec& s, const char* what) {
  bool ok = n >= 1;
  switch (s.distribution) {
    case wl::LengthDistribution::fixed:
      ok = n == s.value;
      break;
    case wl::LengthDistribution::uniform:
      ok = n >= s.min && n <= s.max;
      break;
    case wl::LengthDistribution::lognormal:
      ok = n >= s.min && (s.max == 0 || n <= s.max);
      break;
  }
  if (!ok) finding(std::string(what) + " length " + std::to_string(n) + " outside its distribution");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    wse::config::Document doc =
        wse::config::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
    wse::config::Section root = doc.root();
    wse::config::Section tr = root.section("trace", "request trace");
    const wl::TraceOptions o = wl::read_trace_options(tr);
    doc.finish();
    if (o.format != wl::TraceFormat::synthetic) return 0;  // files: the trace targets
    if (o.synthetic.requests > 20000) return 0;  // the memory budget's business, not the generator's
    const auto requests = wl::read_trace(o);
    double last = 0.0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const wl::Request& r = requests[i];
      if (!std::isfinite(r.arrival_s) || r.arrival_s < last || (i == 0 && r.arrival_s != 0.0) ||
          r.arrival_s > wse::kMaxSimulatedSeconds) {
        finding("arrival " + std::to_string(r.arrival_s) + " of request " + std::to_string(i));
      }
      last = r.arrival_s;
      check_length(r.input_tokens, o.synthetic.input, "input");
      check_length(r.output_tokens, o.synthetic.output, "output");
    }
  } catch (const wse::config::ConfigError&) {
    // bad input, reported with file, line and key
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
