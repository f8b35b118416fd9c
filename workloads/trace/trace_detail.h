// Shared by the trace readers (request_trace.cpp, sessions.cpp): errors at a trace's
// line, and seeded random draws whose transforms are written out (same seed, same
// trace on every platform).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "workloads/trace/request_trace.h"

namespace wse::workloads::detail {

// A malformed line of the trace file: file and line, then the message.
[[noreturn]] void bad_line(const TraceOptions& o, std::uint64_t line, const std::string& msg);
// A number as written in a configuration (shortest text that reads back the same).
std::string exact_text(double v);
// A JSON value as shown in an error (cut short: a line may be long).
std::string shown_json(const nlohmann::json& v);
// A token count: a non-negative integer of at most 32 bits, else bad_line.
std::uint64_t token_count(const TraceOptions& o, std::uint64_t line, const char* key,
                          const nlohmann::json& v);
// Reads a length distribution (fixed, uniform, lognormal) from its section.
LengthSpec read_length(config::Section& s);

// Random draws with transforms written out (see generate_synthetic).
class Draw {
 public:
  explicit Draw(std::uint64_t seed) : gen_(seed) {}
  // Uniform in [0, 1): the top 53 bits of one 64-bit output.
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  // Exponential with mean 1, by inversion.
  double exponential() { return -std::log1p(-uniform()); }
  // Standard normal by Box-Muller (the cosine branch; one normal per two uniforms).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]: log defined
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
  }
  // Lognormal with mean m and coefficient of variation c: sigma^2 = ln(1 + c^2),
  // mu = ln(m) - sigma^2 / 2.
  double lognormal(double mean, double cv) {
    const double sigma2 = std::log1p(cv * cv);
    const double mu = std::log(mean) - sigma2 / 2.0;
    return std::exp(mu + std::sqrt(sigma2) * normal());
  }
  // Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 via the boost
  // Gamma(shape) = Gamma(shape + 1) * U^(1 / shape).
  double gamma(double shape) {
    if (shape < 1.0) {
      const double g = gamma(shape + 1.0);
      return g * std::pow(1.0 - uniform(), 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x = 0, v = 0;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = 1.0 - uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }

 private:
  std::mt19937_64 gen_;  // the algorithm and its output sequence are fixed by the C++ standard
};

// The gap to the next arrival of a Poisson or gamma process (mean 1 / rate).
double arrival_gap(Draw& d, ArrivalProcess process, double rate_per_s, double cv);
// A line of a JSON Lines trace as an object, else bad_line (`what` qualifies "a JSON
// object" in the message, e.g. " (one session)").
nlohmann::json parse_json_line(const TraceOptions& o, std::uint64_t line_no, const std::string& line,
                               const char* what);

// One draw of a length distribution.
std::uint32_t draw_length(Draw& d, const LengthSpec& s);

// Sessions (sessions.cpp): the JSON Lines reader (format sessions_jsonl) and the keys of
// format synthetic_sessions.
std::vector<Request> read_sessions_file(const TraceOptions& o);
void read_session_options(config::Section& s, TraceOptions& o);

}  // namespace wse::workloads::detail
