#include "workloads/trace/request_trace.h"

#include <charconv>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace wse::workloads {

namespace {

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

template <class T>
bool to_number(std::string_view s, T& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// "2023-11-16 18:17:03.9799600" -> seconds since the epoch (fraction kept).
bool parse_timestamp(std::string_view t, double& seconds) {
  if (t.size() < 19 || t[4] != '-' || t[7] != '-' || (t[10] != ' ' && t[10] != 'T') ||
      t[13] != ':' || t[16] != ':') {
    return false;
  }
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!to_number(t.substr(0, 4), y) || !to_number(t.substr(5, 2), mo) ||
      !to_number(t.substr(8, 2), d) || !to_number(t.substr(11, 2), h) ||
      !to_number(t.substr(14, 2), mi) || !to_number(t.substr(17, 2), s)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
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

std::vector<Request> read_trace(const TraceOptions& o) {
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
  bool have_first = false;
  const auto add = [&](double t_s, std::uint64_t in_tok, std::uint64_t out_tok,
                       std::vector<std::uint64_t> hashes) {
    if (!keep(o, index++, out.size())) return;
    if (!have_first) {
      first_s = t_s;
      have_first = true;
    }
    if (t_s < first_s) bad_line(o, line_no, "timestamp goes backwards");
    Request r;
    r.id = out.size();
    r.arrival_s = (t_s - first_s) / o.rate_scale;
    r.input_tokens = static_cast<std::uint32_t>(in_tok);
    r.output_tokens = static_cast<std::uint32_t>(out_tok);
    r.hash_ids = std::move(hashes);
    out.push_back(std::move(r));
  };

  if (o.format == TraceFormat::azure_csv) {
    if (!std::getline(in, line)) bad_line(o, 1, "empty file; expected the header TIMESTAMP,ContextTokens,GeneratedTokens");
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line != "TIMESTAMP,ContextTokens,GeneratedTokens") {
      bad_line(o, line_no, "expected the header 'TIMESTAMP,ContextTokens,GeneratedTokens', found '" + line + "'");
    }
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const auto cells = split_csv(line);
      if (cells.size() != 3) bad_line(o, line_no, "expected 3 comma-separated columns, found " + std::to_string(cells.size()));
      double t = 0;
      std::uint64_t ctx = 0, gen = 0;
      if (!parse_timestamp(cells[0], t)) bad_line(o, line_no, "TIMESTAMP '" + std::string(cells[0]) + "' is not 'YYYY-MM-DD hh:mm:ss.fffffff'");
      if (!to_number(cells[1], ctx) || ctx == 0) bad_line(o, line_no, "ContextTokens '" + std::string(cells[1]) + "' is not a positive integer");
      if (!to_number(cells[2], gen)) bad_line(o, line_no, "GeneratedTokens '" + std::string(cells[2]) + "' is not an integer");
      add(t, ctx, gen, {});
      if (o.limit && out.size() >= o.limit) break;
    }
  } else {
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        bad_line(o, line_no, std::string("not valid JSON: ") + e.what());
      }
      try {
        const double ts_ms = j.at("timestamp").get<double>();
        const auto in_len = j.at("input_length").get<std::uint64_t>();
        const auto out_len = j.at("output_length").get<std::uint64_t>();
        auto hashes = j.contains("hash_ids") ? j["hash_ids"].get<std::vector<std::uint64_t>>() : std::vector<std::uint64_t>{};
        if (in_len == 0) bad_line(o, line_no, "input_length must be positive");
        add(ts_ms / 1000.0, in_len, out_len, std::move(hashes));
      } catch (const nlohmann::json::exception& e) {
        bad_line(o, line_no, std::string("expected timestamp, input_length, output_length (numbers): ") + e.what());
      }
      if (o.limit && out.size() >= o.limit) break;
    }
  }
  if (out.empty()) {
    throw config::ConfigError(config::Source{o.path.string(), 0, 0}, "",
                              "no requests selected from the trace (check start and limit)");
  }
  return out;
}

TraceOptions read_trace_options(config::Section& s) {
  TraceOptions o;
  o.format = s.enumeration<TraceFormat>("format", {.doc = "file format of the request trace"},
                                        {{"azure_csv", TraceFormat::azure_csv},
                                         {"mooncake_jsonl", TraceFormat::mooncake_jsonl}});
  o.path = s.path("path", {.doc = "request trace file"});
  if (!std::filesystem::is_regular_file(o.path)) {
    s.fail("path", "trace file '" + o.path.string() + "' does not exist");
  }
  o.start = static_cast<std::uint64_t>(s.integer("start", {.doc = "requests to skip at the start", .def = "0", .min = 0}));
  o.limit = static_cast<std::uint64_t>(s.integer("limit", {.doc = "requests to read (0 = all)", .def = "0", .min = 0}));
  o.rate_scale = s.number("rate_scale", {.doc = "arrival rate multiplier (2 = twice the trace's rate)",
                                         .def = "1.0", .min = 0, .min_exclusive = true});
  return o;
}

}  // namespace wse::workloads
