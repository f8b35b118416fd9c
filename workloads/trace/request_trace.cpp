#include "workloads/trace/request_trace.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "workloads/trace/trace_detail.h"

namespace wse::workloads {

namespace detail {

[[noreturn]] void bad_line(const TraceOptions& o, std::uint64_t line, const std::string& msg) {
  throw config::ConfigError(config::Source{o.path.string(), static_cast<int>(line), 1}, "",
                            "malformed trace line: " + msg);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// A number as written in a configuration (shortest text that reads back the same).
std::string exact_text(double v) {
  std::array<char, 32> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

// A JSON value as shown in an error (cut short: a line may be long).
std::string shown_json(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  return s;
}

// Token counts are kept as 32-bit values: a longer count cannot be a real request and
// would be cut silently, so it is bad input. Floats and negative values are too (a JSON
// float converted to an integer would be truncated, or undefined if out of range).
std::uint64_t token_count(const TraceOptions& o, std::uint64_t line, const char* key,
                          const nlohmann::json& v) {
  if (!v.is_number_unsigned())
    bad_line(o, line, std::string(key) + " must be a non-negative integer, found " + shown_json(v));
  const auto n = v.get<std::uint64_t>();
  if (n > std::numeric_limits<std::uint32_t>::max())
    bad_line(o, line,
             std::string(key) + " " + std::to_string(n) + " is too large (at most 4294967295 tokens)");
  return n;
}

template <class T>
bool to_number(std::string_view s, T& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace detail

using namespace detail;

// "2023-11-16 18:17:03.9799600" -> seconds since the epoch (fraction kept).
bool parse_azure_timestamp(std::string_view t, double& seconds) {
  if (t.size() < 19 || t[4] != '-' || t[7] != '-' || (t[10] != ' ' && t[10] != 'T') || t[13] != ':' ||
      t[16] != ':') {
    return false;
  }
  // Every field is digits only: a sign ('-000', '+023') or a space would otherwise pass the
  // number reader and give a year the writer never meant.
  constexpr std::size_t kDigits[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
  for (const std::size_t i : kDigits) {
    if (t[i] < '0' || t[i] > '9') return false;
  }
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!to_number(t.substr(0, 4), y) || !to_number(t.substr(5, 2), mo) || !to_number(t.substr(8, 2), d) ||
      !to_number(t.substr(11, 2), h) || !to_number(t.substr(14, 2), mi) || !to_number(t.substr(17, 2), s)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  // The day must exist in that month: 2023-02-31 would otherwise count as 2023-03-03.
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d > kDays[mo - 1] + (mo == 2 && leap ? 1u : 0u)) return false;
  double frac = 0.0;
  if (t.size() > 19) {
    if (t[19] != '.') return false;
    double scale = 0.1;
    for (char c : t.substr(20)) {
      if (c < '0' || c > '9') return false;
      frac += (c - '0') * scale;
      scale /= 10;
    }
  }
  seconds = static_cast<double>(days_from_civil(y, mo, d)) * 86400.0 + h * 3600.0 + mi * 60.0 + s + frac;
  return true;
}

namespace {

std::vector<std::string_view> split_csv(std::string_view line) {
  std::vector<std::string_view> cells;
  std::size_t pos = 0;
  while (true) {
    const auto comma = line.find(',', pos);
    cells.push_back(line.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return cells;
}

bool keep(const TraceOptions& o, std::uint64_t index, std::size_t taken) {
  return index >= o.start && (o.limit == 0 || taken < o.limit);
}

}  // namespace

namespace detail {

std::uint32_t draw_length(Draw& d, const LengthSpec& s) {
  switch (s.distribution) {
    case LengthDistribution::fixed:
      return s.value;
    case LengthDistribution::uniform: {
      const std::uint64_t span = static_cast<std::uint64_t>(s.max) - s.min + 1;
      return s.min + static_cast<std::uint32_t>(std::min<std::uint64_t>(
                         span - 1, static_cast<std::uint64_t>(d.uniform() * static_cast<double>(span))));
    }
    case LengthDistribution::lognormal: {
      const double r = std::round(d.lognormal(s.mean, s.cv));
      const double hi = s.max == 0 ? static_cast<double>(std::numeric_limits<std::uint32_t>::max()) : s.max;
      return static_cast<std::uint32_t>(std::clamp(r, static_cast<double>(s.min), hi));
    }
  }
  return s.value;
}

}  // namespace detail

namespace detail {

// Gamma gaps with mean 1/rate and coefficient of variation cv: shape 1/cv^2,
// scale 1/(rate x shape). Above shape 1e10 (cv below 1e-5) Marsaglia-Tsang's
// acceptance test loses its precision to cancellation (d - d v with d ~ shape), and
// past shape ~1e308 (cv 1e-160) it computes inf - inf and never accepts: there a gap is
// drawn from the normal limit of Gamma(shape) / shape, 1 + cv Z (its skewness 2 cv,
// below 2e-5, is lost), which is exactly 1 / rate once cv Z is below half an ulp.
double arrival_gap(Draw& d, ArrivalProcess process, double rate_per_s, double cv) {
  constexpr double kNormalLimitShape = 1e10;
  if (process == ArrivalProcess::poisson) return d.exponential() / rate_per_s;
  const double shape = 1.0 / (cv * cv);
  if (shape <= kNormalLimitShape) return d.gamma(shape) / (rate_per_s * shape);
  return std::max(0.0, 1.0 + cv * d.normal()) / rate_per_s;
}

nlohmann::json parse_json_line(const TraceOptions& o, std::uint64_t line_no, const std::string& line,
                               const char* what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    bad_line(o, line_no, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object())
    bad_line(o, line_no, std::string("expected a JSON object") + what + ", found " + shown_json(j));
  return j;
}

}  // namespace detail

std::vector<Request> generate_synthetic(const SyntheticOptions& o) {
  Draw d(o.seed);
  std::vector<Request> out;
  out.reserve(o.requests);
  double t = 0.0;
  for (std::uint64_t i = 0; i < o.requests; ++i) {
    if (i > 0) t += arrival_gap(d, o.process, o.rate_per_s, o.cv);
    Request r;
    r.id = i;
    r.arrival_s = t;
    r.input_tokens = draw_length(d, o.input);
    r.output_tokens = draw_length(d, o.output);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Request> read_trace(const TraceOptions& o) {
  if (o.format == TraceFormat::synthetic) {
    auto out = generate_synthetic(o.synthetic);
    for (auto& r : out) r.arrival_s /= o.rate_scale;
    if (out.empty()) throw std::invalid_argument("synthetic trace with no requests");
    // Arrivals never decrease: the last one is the span.
    const double span = out.back().arrival_s;
    if (!(span <= kMaxSimulatedSeconds)) {
      const bool scaled = o.rate_scale != 1.0;
      std::ostringstream m;
      m << out.size() << " requests at " << o.synthetic.rate_per_s << " per second"
        << (scaled ? " and rate_scale " + exact_text(o.rate_scale) : std::string()) << " arrive over " << span
        << " s, longer than a run can simulate, " << max_simulated_time_text() << "; raise the rate ("
        << o.rate_key << (scaled ? " or " + o.rate_scale_key : std::string())
        << ") or generate fewer requests (workload.trace.requests)";
      throw config::ConfigError(scaled ? o.rate_scale_source : o.rate_source,
                                scaled ? o.rate_scale_key : o.rate_key, m.str());
    }
    return out;
  }
  if (o.format == TraceFormat::synthetic_sessions) {
    SessionOptions kept = o.sessions;
    if (o.limit > 0) kept.sessions = std::min(kept.sessions, o.limit);
    auto out = generate_sessions(kept);
    for (auto& r : out) r.arrival_s /= o.rate_scale;
    // Session starts never decrease: the last one is the span of the starts.
    const double span = out.back().arrival_s;
    if (!(span <= kMaxSimulatedSeconds)) {
      std::ostringstream m;
      m << o.sessions.sessions << " sessions at " << o.sessions.rate_per_s << " per second start over "
        << span << " s, longer than a run can simulate, " << max_simulated_time_text() << "; raise the rate ("
        << o.rate_key << ") or generate fewer sessions (workload.trace.sessions)";
      throw config::ConfigError(o.rate_source, o.rate_key, m.str());
    }
    return out;
  }
  if (o.format == TraceFormat::sessions_jsonl) return read_sessions_file(o);
  std::ifstream in(o.path);
  if (!in) {
    throw config::ConfigError(config::Source{o.path.string(), 0, 0}, "",
                              "cannot open the trace file; check workload.trace.path");
  }
  std::vector<Request> out;
  std::string line;
  std::uint64_t line_no = 0;
  std::uint64_t index = 0;
  double first_s = 0.0;
  double last_s = 0.0;
  bool have_first = false;
  const auto add = [&](double t_s, std::uint64_t in_tok, std::uint64_t out_tok,
                       std::vector<std::uint64_t> hashes, std::int64_t priority = 0) {
    if (!keep(o, index++, out.size())) return;
    if (!have_first) {
      first_s = last_s = t_s;
      have_first = true;
    }
    // Against the previous request, not only the first: the serving models take the
    // requests in this order and a later request arriving earlier would start in the past.
    if (t_s < last_s) bad_line(o, line_no, "timestamp goes backwards (earlier than the request before)");
    last_s = t_s;
    Request r;
    r.id = out.size();
    r.arrival_s = (t_s - first_s) / o.rate_scale;
    // Beyond the longest simulated time SystemC would clamp the arrival silently.
    if (!(r.arrival_s <= kMaxSimulatedSeconds)) {
      std::ostringstream m;
      m << "request " << r.id << " arrives " << r.arrival_s << " s after the first one"
        << (o.rate_scale != 1.0 ? " (after " + o.rate_scale_key + " " + exact_text(o.rate_scale) + ")"
                                : std::string())
        << ", later than a run can simulate, " << max_simulated_time_text() << "; select fewer requests ("
        << "workload.trace.start, workload.trace.limit)"
        << (o.rate_scale < 1.0 ? " or raise " + o.rate_scale_key : std::string());
      bad_line(o, line_no, m.str());
    }
    if (o.max_context_tokens > 0 && in_tok + std::max<std::uint64_t>(1, out_tok) > o.max_context_tokens) {
      throw config::ConfigError(
          config::Source{o.path.string(), static_cast<int>(line_no), 1}, "",
          "request " + std::to_string(r.id) + " needs " +
              std::to_string(in_tok + std::max<std::uint64_t>(1, out_tok)) + " tokens of context (" +
              std::to_string(in_tok) + " of prompt + " + std::to_string(std::max<std::uint64_t>(1, out_tok)) +
              " of output), more than the model's context window, " + o.max_context_what +
              "; select other requests (workload.trace.start, workload.trace.limit) or a "
              "model with a longer context");
    }
    r.input_tokens = static_cast<std::uint32_t>(in_tok);
    r.output_tokens = static_cast<std::uint32_t>(out_tok);
    r.hash_ids = std::move(hashes);
    r.priority = priority;
    out.push_back(std::move(r));
  };

  if (o.format == TraceFormat::azure_csv) {
    if (!std::getline(in, line))
      bad_line(o, 1, "empty file; expected the header TIMESTAMP,ContextTokens,GeneratedTokens");
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line != "TIMESTAMP,ContextTokens,GeneratedTokens") {
      bad_line(o, line_no,
               "expected the header 'TIMESTAMP,ContextTokens,GeneratedTokens', found '" + line + "'");
    }
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const auto cells = split_csv(line);
      if (cells.size() != 3)
        bad_line(o, line_no, "expected 3 comma-separated columns, found " + std::to_string(cells.size()));
      double t = 0;
      std::uint64_t ctx = 0, gen = 0;
      if (!parse_azure_timestamp(cells[0], t))
        bad_line(o, line_no,
                 "TIMESTAMP '" + std::string(cells[0]) + "' is not 'YYYY-MM-DD hh:mm:ss.fffffff'");
      if (!to_number(cells[1], ctx) || ctx == 0)
        bad_line(o, line_no, "ContextTokens '" + std::string(cells[1]) + "' is not a positive integer");
      if (!to_number(cells[2], gen))
        bad_line(o, line_no, "GeneratedTokens '" + std::string(cells[2]) + "' is not an integer");
      constexpr std::uint64_t kMaxTokens = std::numeric_limits<std::uint32_t>::max();
      if (ctx > kMaxTokens || gen > kMaxTokens)
        bad_line(o, line_no,
                 "token count " + std::to_string(std::max(ctx, gen)) +
                     " is too large (at most 4294967295 tokens)");
      add(t, ctx, gen, {});
      if (o.limit && out.size() >= o.limit) break;
    }
  } else {
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      const nlohmann::json j = parse_json_line(o, line_no, line, "");
      const auto field = [&](const char* key) -> const nlohmann::json& {
        const auto it = j.find(key);
        if (it == j.end())
          bad_line(o, line_no,
                   std::string("missing \"") + key + "\"; expected timestamp, input_length, output_length");
        return *it;
      };
      const nlohmann::json& ts = field("timestamp");
      if (!ts.is_number()) bad_line(o, line_no, "timestamp must be a number (ms), found " + shown_json(ts));
      const double ts_ms = ts.get<double>();
      if (!std::isfinite(ts_ms))
        bad_line(o, line_no, "timestamp must be a finite number (ms), found " + shown_json(ts));
      const std::uint64_t in_len = token_count(o, line_no, "input_length", field("input_length"));
      const std::uint64_t out_len = token_count(o, line_no, "output_length", field("output_length"));
      std::vector<std::uint64_t> hashes;
      if (const auto h = j.find("hash_ids"); h != j.end()) {
        if (!h->is_array())
          bad_line(o, line_no, "hash_ids must be a list of block ids, found " + shown_json(*h));
        hashes.reserve(h->size());
        for (const auto& id : *h) {
          if (!id.is_number_unsigned())
            bad_line(o, line_no, "hash_ids must hold non-negative integers, found " + shown_json(id));
          hashes.push_back(id.get<std::uint64_t>());
        }
      }
      std::int64_t priority = 0;
      if (const auto p = j.find("priority"); p != j.end()) {
        if (!p->is_number_integer() ||
            (p->is_number_unsigned() &&
             p->get<std::uint64_t>() >
                 static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
          bad_line(o, line_no,
                   "priority must be an integer (lower is admitted first), found " + shown_json(*p));
        }
        priority = p->get<std::int64_t>();
      }
      if (in_len == 0) bad_line(o, line_no, "input_length must be positive");
      add(ts_ms / 1000.0, in_len, out_len, std::move(hashes), priority);
      if (o.limit && out.size() >= o.limit) break;
    }
  }
  if (out.empty()) {
    throw config::ConfigError(config::Source{o.path.string(), 0, 0}, "",
                              "no requests selected from the trace (check start and limit)");
  }
  return out;
}

namespace detail {

LengthSpec read_length(config::Section& s) {
  LengthSpec l;
  l.distribution = s.enumeration<LengthDistribution>(
      "distribution", {.doc = "fixed, uniform (min..max) or lognormal (mean, cv, clamped to min..max)"},
      {{"fixed", LengthDistribution::fixed},
       {"uniform", LengthDistribution::uniform},
       {"lognormal", LengthDistribution::lognormal}});
  const auto u32 = [&](std::string_view key, std::string_view doc, std::optional<std::string_view> def) {
    return static_cast<std::uint32_t>(
        s.integer(key, {.doc = doc, .def = def, .min = 1, .max = 4294967295.0}));
  };
  switch (l.distribution) {
    case LengthDistribution::fixed:
      l.value = u32("value", "tokens of every request", std::nullopt);
      break;
    case LengthDistribution::uniform:
      l.min = u32("min", "fewest tokens (inclusive)", std::nullopt);
      l.max = u32("max", "most tokens (inclusive)", std::nullopt);
      if (l.max < l.min) s.fail("max", "is below min (" + std::to_string(l.min) + ")");
      break;
    case LengthDistribution::lognormal:
      l.mean = s.number("mean", {.doc = "mean tokens", .min = 1});
      l.cv = s.number("cv", {.doc = "coefficient of variation (standard deviation / mean)",
                             .min = 0,
                             .max = 100,
                             .min_exclusive = true});
      l.min = u32("min", "clamp: fewest tokens", "1");
      l.max = static_cast<std::uint32_t>(s.integer(
          "max", {.doc = "clamp: most tokens (0 = no clamp)", .def = "0", .min = 0, .max = 4294967295.0}));
      if (l.max != 0 && l.max < l.min) s.fail("max", "is below min (" + std::to_string(l.min) + ")");
      break;
  }
  return l;
}

}  // namespace detail

TraceOptions read_trace_options(config::Section& s) {
  TraceOptions o;
  o.format =
      s.enumeration<TraceFormat>("format",
                                 {.doc = "azure_csv, mooncake_jsonl, sessions_jsonl (files), synthetic or "
                                         "synthetic_sessions (generated)"},
                                 {{"azure_csv", TraceFormat::azure_csv},
                                  {"mooncake_jsonl", TraceFormat::mooncake_jsonl},
                                  {"synthetic", TraceFormat::synthetic},
                                  {"sessions_jsonl", TraceFormat::sessions_jsonl},
                                  {"synthetic_sessions", TraceFormat::synthetic_sessions}});
  if (o.format == TraceFormat::synthetic_sessions) {
    read_session_options(s, o);
  } else if (o.format == TraceFormat::synthetic) {
    SyntheticOptions& y = o.synthetic;
    y.requests = static_cast<std::uint64_t>(
        s.integer("requests", {.doc = "requests to generate", .min = 1, .max = 1e9}));
    y.seed = static_cast<std::uint64_t>(
        s.integer("seed", {.doc = "random seed (same seed, same trace)", .def = "1", .min = 0}));
    config::Section a = s.section("arrival", "arrival process");
    y.process = a.enumeration<ArrivalProcess>(
        "process", {.doc = "poisson (exponential gaps) or gamma (gaps with a chosen CV)", .def = "poisson"},
        {{"poisson", ArrivalProcess::poisson}, {"gamma", ArrivalProcess::gamma}});
    y.rate_per_s = a.number("rate", {.doc = "mean arrivals per second", .min = 0, .min_exclusive = true});
    o.rate_source = a.source_of("rate");
    o.rate_key = a.key_path("rate");
    if (y.process == ArrivalProcess::gamma) {
      y.cv = a.number("cv", {.doc = "coefficient of variation of the gaps (1 = Poisson)",
                             .min = 0,
                             .max = 100,
                             .min_exclusive = true});
    }
    config::Section in = s.section("input_tokens", "prompt length distribution");
    y.input = read_length(in);
    config::Section out = s.section("output_tokens", "generated length distribution");
    y.output = read_length(out);
  } else {
    o.path = s.path("path", {.doc = "request trace file"});
    // With error codes: a symlink loop or an unreadable folder is bad input with its
    // reason, not an exception out of the filesystem library.
    std::error_code ec;
    const auto st = std::filesystem::status(o.path, ec);
    if (ec && st.type() != std::filesystem::file_type::not_found) {
      s.fail("path", "cannot read trace file '" + o.path.string() + "': " + ec.message());
    }
    if (st.type() == std::filesystem::file_type::not_found) {
      s.fail("path", "trace file '" + o.path.string() + "' does not exist");
    }
    if (st.type() == std::filesystem::file_type::directory) {
      s.fail("path", "'" + o.path.string() + "' is a directory, not a trace file");
    }
    if (st.type() != std::filesystem::file_type::regular) {
      s.fail("path",
             "'" + o.path.string() + "' is not a regular file (a FIFO, socket or device); give a trace file");
    }
    const bool sessions = o.format == TraceFormat::sessions_jsonl;
    o.start = static_cast<std::uint64_t>(s.integer(
        "start", {.doc = sessions ? "sessions to skip at the start" : "requests to skip at the start",
                  .def = "0",
                  .min = 0}));
    o.limit = static_cast<std::uint64_t>(
        s.integer("limit", {.doc = sessions ? "sessions to read (0 = all)" : "requests to read (0 = all)",
                            .def = "0",
                            .min = 0}));
  }
  o.rate_scale = s.number("rate_scale", {.doc = "arrival rate multiplier (2 = twice the trace's rate)",
                                         .def = "1.0",
                                         .min = 0,
                                         .min_exclusive = true});
  o.rate_scale_source = s.source_of("rate_scale");
  o.rate_scale_key = s.key_path("rate_scale");
  return o;
}

}  // namespace wse::workloads
