// Request traces: when requests arrive and how many tokens they bring and ask for.
//   Azure LLM inference CSV (2023 and 2024): TIMESTAMP, ContextTokens, GeneratedTokens
//   Mooncake JSONL: {"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}
// A malformed line stops the run with the file and line named.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "systemc_models/config/config.h"

namespace wse::workloads {

struct Request {
  std::uint64_t id = 0;            // position in the trace after `start`
  double arrival_s = 0.0;          // relative to the first request read
  std::uint32_t input_tokens = 0;
  std::uint32_t output_tokens = 0;
  std::vector<std::uint64_t> hash_ids;  // Mooncake 512-token prefix blocks
};

enum class TraceFormat { azure_csv, mooncake_jsonl };

struct TraceOptions {
  TraceFormat format = TraceFormat::azure_csv;
  std::filesystem::path path;
  std::uint64_t start = 0;          // skip this many requests
  std::uint64_t limit = 0;          // 0 = all
  double rate_scale = 1.0;          // arrival rate multiplier (2 = twice as fast)
};

// Throws config::ConfigError naming the file and line of a malformed line.
std::vector<Request> read_trace(const TraceOptions& opt);

// Reads `trace:` (format, path, start, limit, rate_scale).
TraceOptions read_trace_options(config::Section& s);

}  // namespace wse::workloads
