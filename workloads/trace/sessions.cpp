// Multi-turn sessions: a JSON Lines file of sessions, or seeded synthetic ones, turned
// into requests whose later turns arrive closed loop (docs/serving.md, "Sessions").
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "systemc_models/units/units.h"
#include "workloads/trace/trace_detail.h"

namespace wse::workloads {

namespace {

// SplitMix64's finaliser: a fixed mixing of 64 bits, the same on every platform.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t block_hash(std::uint64_t domain, std::uint64_t owner, std::uint64_t block,
                         std::uint64_t fill = 0) {
  return mix(domain ^ mix(owner ^ mix(block ^ mix(fill))));
}

constexpr std::uint64_t kPrefixDomain = 0x5052454649580001ull;   // shared-prefix blocks
constexpr std::uint64_t kSessionDomain = 0x53455353494F0002ull;  // a session's own full blocks
constexpr std::uint64_t kPartialDomain = 0x5041525449410003ull;  // a last, partial block

}  // namespace

bool append_session(std::vector<Request>& out, std::uint64_t session, double start_s,
                    std::uint32_t shared_prefix, std::uint64_t prefix_key,
                    const std::vector<SessionTurn>& turns) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint32_t>::max();
  const std::size_t first = out.size();
  std::uint64_t context = shared_prefix;
  for (std::size_t t = 0; t < turns.size(); ++t) {
    const std::uint64_t input = context + turns[t].prompt;
    if (input > kMax || input + turns[t].output > kMax) {
      out.resize(first);
      return false;
    }
    Request r;
    r.id = out.size();
    r.arrival_s = start_s;
    r.input_tokens = static_cast<std::uint32_t>(input);
    r.output_tokens = turns[t].output;
    r.session = static_cast<std::int64_t>(session);
    r.turn = static_cast<std::uint32_t>(t);
    r.previous = t == 0 ? -1 : static_cast<std::int64_t>(out.size() - 1);
    r.think_s = t == 0 ? 0.0 : turns[t].think_s;
    r.new_tokens = t == 0 ? static_cast<std::uint32_t>(input) : turns[t].prompt;
    const std::uint64_t blocks = (input + kSessionBlockTokens - 1) / kSessionBlockTokens;
    r.hash_ids.reserve(blocks);
    for (std::uint64_t b = 0; b < blocks; ++b) {
      const std::uint64_t end = (b + 1) * kSessionBlockTokens;
      if (end > input) {
        r.hash_ids.push_back(block_hash(kPartialDomain, session, b, input - b * kSessionBlockTokens));
      } else if (end <= shared_prefix) {
        r.hash_ids.push_back(block_hash(kPrefixDomain, prefix_key, b));
      } else {
        r.hash_ids.push_back(block_hash(kSessionDomain, session, b));
      }
    }
    out.push_back(std::move(r));
    context = input + turns[t].output;
  }
  return true;
}

namespace detail {

double draw_think(Draw& d, const ThinkSpec& s) {
  switch (s.distribution) {
    case LengthDistribution::fixed:
      return s.value;
    case LengthDistribution::uniform:
      return s.min + d.uniform() * (s.max - s.min);
    case LengthDistribution::lognormal:
      return std::clamp(d.lognormal(s.mean, s.cv), s.min,
                        s.max > 0 ? s.max : std::numeric_limits<double>::max());
  }
  return s.value;
}

}  // namespace detail

std::vector<Request> generate_sessions(const SessionOptions& o) {
  detail::Draw d(o.seed);
  std::vector<Request> out;
  double t = 0.0;
  std::vector<SessionTurn> turns;
  for (std::uint64_t i = 0; i < o.sessions; ++i) {
    if (i > 0) t += detail::arrival_gap(d, o.process, o.rate_per_s, o.cv);
    const std::uint32_t n = detail::draw_length(d, o.turns);
    const std::uint32_t shared = o.has_shared_prefix ? detail::draw_length(d, o.shared_prefix) : 0;
    // A session's own prefix is keyed apart from the groups (top bit set).
    std::uint64_t prefix_key = (1ull << 63) | i;
    if (o.prefix_groups > 0) {
      prefix_key = std::min<std::uint64_t>(
          o.prefix_groups - 1,
          static_cast<std::uint64_t>(d.uniform() * static_cast<double>(o.prefix_groups)));
    }
    turns.assign(n, {});
    for (std::uint32_t k = 0; k < n; ++k) {
      turns[k].prompt = detail::draw_length(d, o.prompt);
      turns[k].output = detail::draw_length(d, o.output);
      turns[k].think_s = k == 0 ? 0.0 : detail::draw_think(d, o.think);
    }
    if (!append_session(out, i, t, shared, prefix_key, turns)) {
      throw std::invalid_argument("generated session " + std::to_string(i) +
                                  " holds more than 4294967295 tokens");
    }
  }
  return out;
}

namespace detail {

std::vector<Request> read_sessions_file(const TraceOptions& o) {
  std::ifstream in(o.path);
  if (!in) {
    throw config::ConfigError(config::Source{o.path.string(), 0, 0}, "",
                              "cannot open the session file; check workload.trace.path");
  }
  std::vector<Request> out;
  std::string line;
  std::uint64_t line_no = 0, index = 0, kept = 0;
  double first_s = 0, last_s = 0;
  bool have_first = false;
  std::vector<SessionTurn> turns;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const nlohmann::json j = parse_json_line(o, line_no, line, " (one session)");
    for (const auto& [key, value] : j.items()) {
      if (key != "start_s" && key != "shared_prefix" && key != "prefix_id" && key != "turns")
        bad_line(o, line_no,
                 "unknown field \"" + key + "\"; a session has start_s, shared_prefix, prefix_id, turns");
    }
    const auto start = j.find("start_s");
    if (start == j.end()) bad_line(o, line_no, "missing \"start_s\" (seconds)");
    if (!start->is_number() || !std::isfinite(start->get<double>()) || start->get<double>() < 0)
      bad_line(o, line_no, "start_s must be a non-negative number of seconds, found " + shown_json(*start));
    const double start_s = start->get<double>();
    std::uint32_t shared = 0;
    if (const auto p = j.find("shared_prefix"); p != j.end())
      shared = static_cast<std::uint32_t>(token_count(o, line_no, "shared_prefix", *p));
    std::uint64_t prefix_key = (1ull << 63) | index;  // its own
    if (const auto p = j.find("prefix_id"); p != j.end()) {
      if (!p->is_number_unsigned() || p->get<std::uint64_t>() >= (1ull << 63))
        bad_line(o, line_no, "prefix_id must be a non-negative integer below 2^63, found " + shown_json(*p));
      prefix_key = p->get<std::uint64_t>();
    }
    const auto tl = j.find("turns");
    if (tl == j.end() || !tl->is_array() || tl->empty())
      bad_line(o, line_no, "\"turns\" must be a non-empty list of {prompt, output, think_s}");
    turns.assign(tl->size(), {});
    for (std::size_t k = 0; k < tl->size(); ++k) {
      const nlohmann::json& turn = (*tl)[k];
      const std::string where = "turn " + std::to_string(k) + ": ";
      if (!turn.is_object())
        bad_line(o, line_no, where + "expected {prompt, output, think_s}, found " + shown_json(turn));
      for (const auto& [key, value] : turn.items()) {
        if (key != "prompt" && key != "output" && key != "think_s")
          bad_line(o, line_no, where + "unknown field \"" + key + "\"; a turn has prompt, output, think_s");
      }
      const auto field = [&](const char* key) -> const nlohmann::json& {
        const auto it = turn.find(key);
        if (it == turn.end()) bad_line(o, line_no, where + "missing \"" + key + "\"");
        return *it;
      };
      turns[k].prompt = static_cast<std::uint32_t>(token_count(o, line_no, "prompt", field("prompt")));
      turns[k].output = static_cast<std::uint32_t>(token_count(o, line_no, "output", field("output")));
      if (turns[k].prompt == 0 && (k > 0 || shared == 0))
        bad_line(o, line_no, where + "prompt must be positive (the turn's new tokens)");
      if (const auto th = turn.find("think_s"); th != turn.end()) {
        if (!th->is_number() || !std::isfinite(th->get<double>()))
          bad_line(o, line_no, where + "think_s must be a number of seconds, found " + shown_json(*th));
        const double think = th->get<double>();
        if (k == 0 && think != 0)
          bad_line(o, line_no, "turn 0: think_s must be 0 or absent: the first turn arrives at start_s");
        if (think < 0)
          bad_line(o, line_no,
                   where + "think_s " + exact_text(think) +
                       " would make the turn arrive before its previous turn's answer; give 0 or more");
        if (think > kMaxSimulatedSeconds)
          bad_line(o, line_no,
                   where + "think_s " + exact_text(think) + " is longer than a run can simulate, " +
                       max_simulated_time_text());
        turns[k].think_s = think;
      }
    }
    const std::uint64_t session_index = index++;
    if (session_index < o.start || (o.limit > 0 && kept >= o.limit)) continue;
    if (!have_first) {
      first_s = last_s = start_s;
      have_first = true;
    }
    if (start_s < last_s) bad_line(o, line_no, "start_s goes backwards (earlier than the session before)");
    last_s = start_s;
    const double at = (start_s - first_s) / o.rate_scale;
    if (!(at <= kMaxSimulatedSeconds)) {
      std::ostringstream m;
      m << "session starts " << at << " s after the first one, later than a run can simulate, "
        << max_simulated_time_text()
        << "; select fewer sessions (workload.trace.start, workload.trace.limit)";
      bad_line(o, line_no, m.str());
    }
    const std::size_t before = out.size();
    if (!append_session(out, kept, at, shared, prefix_key, turns))
      bad_line(o, line_no, "the session's context grows past 4294967295 tokens");
    if (o.max_context_tokens > 0) {
      for (std::size_t r = before; r < out.size(); ++r) {
        const std::uint64_t need =
            std::uint64_t{out[r].input_tokens} + std::max<std::uint32_t>(1, out[r].output_tokens);
        if (need > o.max_context_tokens) {
          bad_line(
              o, line_no,
              "turn " + std::to_string(out[r].turn) + " needs " + std::to_string(need) +
                  " tokens of context (the shared prefix, every earlier turn and its own prompt and output), "
                  "more than the model's context window, " +
                  o.max_context_what + "; shorten the session or use a model with a longer context");
        }
      }
    }
    ++kept;
    if (o.limit > 0 && kept >= o.limit) break;
  }
  if (out.empty()) {
    throw config::ConfigError(config::Source{o.path.string(), 0, 0}, "",
                              "no sessions selected from the file (check start and limit)");
  }
  return out;
}

ThinkSpec read_think(config::Section& s) {
  ThinkSpec t;
  t.distribution = s.enumeration<LengthDistribution>(
      "distribution", {.doc = "fixed, uniform (min..max) or lognormal (mean, cv, clamped to min..max)"},
      {{"fixed", LengthDistribution::fixed},
       {"uniform", LengthDistribution::uniform},
       {"lognormal", LengthDistribution::lognormal}});
  const auto seconds = [&](std::string_view key, std::string_view doc, std::optional<std::string_view> def) {
    const double v = s.duration(key, {.doc = doc, .def = def, .min = 0}).seconds;
    if (v > kMaxSimulatedSeconds)
      s.fail(key, "is longer than a run can simulate, " + max_simulated_time_text());
    return v;
  };
  switch (t.distribution) {
    case LengthDistribution::fixed:
      t.value = seconds("value", "think time after every answer", std::nullopt);
      break;
    case LengthDistribution::uniform:
      t.min = seconds("min", "shortest think time", std::nullopt);
      t.max = seconds("max", "longest think time", std::nullopt);
      if (t.max < t.min) s.fail("max", "is below min");
      break;
    case LengthDistribution::lognormal:
      t.mean = s.duration("mean", {.doc = "mean think time", .min = 0, .min_exclusive = true}).seconds;
      if (t.mean > kMaxSimulatedSeconds)
        s.fail("mean", "is longer than a run can simulate, " + max_simulated_time_text());
      t.cv = s.number("cv", {.doc = "coefficient of variation (standard deviation / mean)",
                             .min = 0,
                             .max = 100,
                             .min_exclusive = true});
      t.min = seconds("min", "clamp: shortest think time", "0 s");
      t.max = seconds("max", "clamp: longest think time (0 s = no clamp)", "0 s");
      if (t.max > 0 && t.max < t.min) s.fail("max", "is below min");
      break;
  }
  return t;
}

void read_session_options(config::Section& s, TraceOptions& o) {
  SessionOptions& y = o.sessions;
  y.sessions = static_cast<std::uint64_t>(
      s.integer("sessions", {.doc = "sessions to generate", .min = 1, .max = 1e8}));
  y.seed = static_cast<std::uint64_t>(
      s.integer("seed", {.doc = "random seed (same seed, same sessions)", .def = "1", .min = 0}));
  // As a file's limit: the first sessions of the same draws (a quick look, a test).
  o.limit = static_cast<std::uint64_t>(s.integer(
      "limit", {.doc = "sessions to keep, the first of those generated (0 = all)", .def = "0", .min = 0}));
  config::Section a = s.section("arrival", "session start process");
  y.process = a.enumeration<ArrivalProcess>(
      "process", {.doc = "poisson (exponential gaps) or gamma (gaps with a chosen CV)", .def = "poisson"},
      {{"poisson", ArrivalProcess::poisson}, {"gamma", ArrivalProcess::gamma}});
  y.rate_per_s =
      a.number("rate", {.doc = "mean sessions started per second", .min = 0, .min_exclusive = true});
  o.rate_source = a.source_of("rate");
  o.rate_key = a.key_path("rate");
  if (y.process == ArrivalProcess::gamma) {
    y.cv = a.number("cv", {.doc = "coefficient of variation of the gaps (1 = Poisson)",
                           .min = 0,
                           .max = 100,
                           .min_exclusive = true});
  }
  config::Section turns = s.section("turns", "turns per session");
  y.turns = read_length(turns);
  if (auto sp =
          s.optional_section("shared_prefix", "tokens of context every turn of a session starts with")) {
    y.shared_prefix = read_length(*sp);
    y.has_shared_prefix = true;
  }
  y.prefix_groups = static_cast<std::uint64_t>(s.integer(
      "prefix_groups", {.doc = "distinct shared prefixes the sessions draw from (0 = each session its own)",
                        .def = "0",
                        .min = 0,
                        .max = 1e12}));
  config::Section pr = s.section("prompt_tokens", "new prompt tokens per turn");
  y.prompt = read_length(pr);
  config::Section out = s.section("output_tokens", "output tokens per turn");
  y.output = read_length(out);
  config::Section th = s.section("think", "time after an answer before the next turn (tool or user)");
  y.think = read_think(th);
}

}  // namespace detail

}  // namespace wse::workloads
