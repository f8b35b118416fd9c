// Request traces: when requests arrive and how many tokens they bring and ask for.
//   Azure LLM inference CSV (2023 and 2024): TIMESTAMP, ContextTokens, GeneratedTokens
//   Mooncake JSONL: {"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}
//   synthetic: Poisson or gamma arrivals, fixed / uniform / lognormal lengths, seeded
//   sessions (sessions_jsonl, synthetic_sessions): multi-turn sessions, closed loop: a
//     later turn arrives after its previous turn's answer plus a think time
//     (docs/serving.md, "Sessions")
// A malformed line stops the run with the file and line named.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "systemc_models/config/config.h"

namespace wse::workloads {

struct Request {
  std::uint64_t id = 0;    // position in the trace after `start`
  double arrival_s = 0.0;  // relative to the first request read
  std::uint32_t input_tokens = 0;
  std::uint32_t output_tokens = 0;
  std::vector<std::uint64_t> hash_ids;  // Mooncake 512-token prefix blocks
  std::int64_t priority = 0;  // serving.admission: priority admits the lowest first (Mooncake "priority")
  // Sessions: a turn after the first of its session arrives think_s after the previous
  // turn's last token, so its arrival is known only in the run; arrival_s then holds
  // its session's start (the earliest it can arrive) and the serving record the time
  // it arrived. Its prompt is the whole context: the session's shared prefix, every
  // earlier turn's prompt and answer, and this turn's new tokens.
  std::int64_t previous = -1;  // index of the previous turn of its session (-1: a first turn, or no session)
  std::int64_t session = -1;   // the session's index in the trace (-1: not in a session)
  double think_s = 0;          // after the previous turn's last token
  std::uint32_t turn = 0;      // 0 = the session's first turn
  std::uint32_t new_tokens = 0;  // tokens of the prompt that the previous turn's context did not hold
  bool in_session() const { return session >= 0; }
};

enum class TraceFormat { azure_csv, mooncake_jsonl, synthetic, sessions_jsonl, synthetic_sessions };

// Inter-arrival gaps: exponential (Poisson process, CV 1) or gamma with a chosen
// coefficient of variation (CV > 1 bursty, < 1 regular), mean 1 / rate either way.
enum class ArrivalProcess { poisson, gamma };
enum class LengthDistribution { fixed, uniform, lognormal };

struct LengthSpec {
  LengthDistribution distribution = LengthDistribution::fixed;
  std::uint32_t value = 0;  // fixed
  std::uint32_t min = 1;    // uniform bounds (inclusive); lognormal clamp
  std::uint32_t max = 0;
  double mean = 0.0;  // lognormal mean (tokens)
  double cv = 0.0;    // lognormal coefficient of variation (std / mean)
};

struct SyntheticOptions {
  ArrivalProcess process = ArrivalProcess::poisson;
  double rate_per_s = 1.0;  // mean arrival rate
  double cv = 1.0;          // gamma only
  std::uint64_t requests = 0;
  std::uint64_t seed = 1;
  LengthSpec input, output;
};

// Generates `requests` requests: request 0 arrives at 0, then for each request in turn
// (gap, input length, output length) are drawn from one std::mt19937_64 seeded with
// `seed`. The transforms (uniform from 53 bits, exponential by inversion, normal by
// Box-Muller, gamma by Marsaglia-Tsang) are written out here, not taken from <random>'s
// implementation-defined distributions, so a seed gives the same trace everywhere.
std::vector<Request> generate_synthetic(const SyntheticOptions& opt);

// A think (or tool) time distribution, in seconds: fixed, uniform (min..max) or
// lognormal (mean, cv, clamped to min..max; max 0 = no clamp).
struct ThinkSpec {
  LengthDistribution distribution = LengthDistribution::fixed;
  double value = 0, min = 0, max = 0, mean = 0, cv = 0;
};

// Seeded multi-turn sessions (docs/serving.md, "Sessions"). Session starts follow the
// arrival process; per session: the number of turns, the shared prefix, and per turn
// its new prompt tokens, its output tokens and (after the first) the think time.
struct SessionOptions {
  ArrivalProcess process = ArrivalProcess::poisson;
  double rate_per_s = 1.0;  // sessions started per second
  double cv = 1.0;          // gamma only
  std::uint64_t sessions = 0;
  std::uint64_t seed = 1;
  LengthSpec turns, shared_prefix, prompt, output;
  bool has_shared_prefix = false;  // else no shared prefix
  // Sessions draw their shared prefix's identity from this many (0: each its own);
  // sessions with the same identity share the prefix's cached blocks.
  std::uint64_t prefix_groups = 0;
  ThinkSpec think;
};

// Prompt tokens per prefix block of a session's hash ids (the Mooncake convention, and
// serving.prefix_cache_blocks' unit).
inline constexpr std::uint32_t kSessionBlockTokens = 512;

// Generates `sessions` sessions as requests, turn by turn (sessions.cpp): session 0
// starts at 0; per session (gap, turns, shared prefix, prefix group, then per turn its
// prompt, output and think time) are drawn from one std::mt19937_64 seeded with `seed`.
std::vector<Request> generate_sessions(const SessionOptions& opt);

// One session as requests appended to `out`: turn t's prompt is the shared prefix,
// every earlier turn's prompt and output, and its own new tokens. Its hash ids name its
// 512-token blocks: a block inside the shared prefix by `prefix_key`, a later full block
// by the session, the last partial block by its fill as well (a partial block is never
// reused). Returns false (and appends nothing) when a turn's context would exceed
// 2^32 - 1 tokens.
struct SessionTurn {
  std::uint32_t prompt = 0;  // new tokens
  std::uint32_t output = 0;
  double think_s = 0;  // after the previous turn's last token (0 for the first)
};
bool append_session(std::vector<Request>& out, std::uint64_t session, double start_s,
                    std::uint32_t shared_prefix, std::uint64_t prefix_key,
                    const std::vector<SessionTurn>& turns);

struct TraceOptions {
  TraceFormat format = TraceFormat::azure_csv;
  std::filesystem::path path;
  SyntheticOptions synthetic;  // format synthetic
  SessionOptions sessions;     // format synthetic_sessions
  std::uint64_t start = 0;     // skip this many requests
  std::uint64_t limit = 0;     // 0 = all
  double rate_scale = 1.0;     // arrival rate multiplier (2 = twice as fast)
  // Where rate_scale and the synthetic arrival rate were written, and their key paths,
  // for errors about the span of the arrivals (read_trace_options fills them).
  config::Source rate_scale_source, rate_source;
  std::string rate_scale_key = "workload.trace.rate_scale", rate_key = "workload.trace.arrival.rate";
  // The model's context window (max_position_embeddings; 0 = unchecked) and where it was
  // given: a request whose prompt plus output (at least 1) exceeds it is refused at its
  // line (the caller checks synthetic traces).
  std::uint64_t max_context_tokens = 0;
  std::string max_context_what;
};

// Throws config::ConfigError naming the file and line of a malformed line, and for
// arrivals (after rate_scale) beyond the longest simulated time (kMaxSimulatedSeconds):
// the file and line of the first such request, or for a synthetic trace the arrival
// rate (or rate_scale, if it is not 1).
std::vector<Request> read_trace(const TraceOptions& opt);

// An Azure TIMESTAMP, "YYYY-MM-DD hh:mm:ss[.fffffff]" (or a 'T' between date and time),
// as seconds since 1970-01-01 (proleptic Gregorian, fraction kept); false when malformed
// or when the day does not exist in its month (2023-02-31). Second 60 (a leap second)
// counts as the next minute's second 0, as POSIX time does.
bool parse_azure_timestamp(std::string_view text, double& seconds);

// Reads `trace:` (format, then path, start, limit for files or the synthetic keys;
// rate_scale for all).
TraceOptions read_trace_options(config::Section& s);

}  // namespace wse::workloads
