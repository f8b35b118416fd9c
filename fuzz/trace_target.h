// The body shared by the request-trace fuzz targets: the input is the trace file, in the
// given format. A request read must have positive input tokens, arrivals that start at 0,
// never go backwards and lie within the longest simulated time (units.h), and ids in
// order; a later session turn follows its previous turn and holds its whole context.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"
#include "workloads/trace/request_trace.h"

namespace wse::fuzz {

inline int fuzz_trace(workloads::TraceFormat format, const std::string& file_name, const std::uint8_t* data,
                      std::size_t size) {
  workloads::TraceOptions o;
  o.format = format;
  o.path = write_scratch(file_name, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto requests = workloads::read_trace(o);
    double last = 0.0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const workloads::Request& r = requests[i];
      if (r.id != i) finding("request ids out of order");
      if (r.input_tokens == 0) finding("a request with no input tokens");
      if (!std::isfinite(r.arrival_s) || r.arrival_s < last || (i == 0 && r.arrival_s != 0.0))
        finding("arrival " + std::to_string(r.arrival_s) + " of request " + std::to_string(i));
      if (r.arrival_s > kMaxSimulatedSeconds)
        finding("arrival " + std::to_string(r.arrival_s) + " s of request " + std::to_string(i) +
                " is beyond the longest simulated time (it would be clamped)");
      last = r.arrival_s;
      // Sessions: a later turn follows its previous one, waits a finite think time and
      // holds the previous turn's context, its answer and its own new tokens.
      if (r.previous >= 0) {
        if (static_cast<std::size_t>(r.previous) != i - 1 || r.turn != requests[i - 1].turn + 1 ||
            r.session != requests[i - 1].session)
          finding("session turn " + std::to_string(i) + " does not follow its previous turn");
        if (!std::isfinite(r.think_s) || r.think_s < 0 || r.think_s > kMaxSimulatedSeconds)
          finding("think time " + std::to_string(r.think_s) + " of request " + std::to_string(i));
        const workloads::Request& p = requests[i - 1];
        if (std::uint64_t{r.input_tokens} != std::uint64_t{p.input_tokens} + p.output_tokens + r.new_tokens)
          finding("session turn " + std::to_string(i) + " does not hold the whole context");
      } else if (r.in_session() && r.turn != 0) {
        finding("a later session turn without its previous turn");
      }
    }
  } catch (const config::ConfigError&) {
    // bad input, reported with file and line
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}

}  // namespace wse::fuzz
