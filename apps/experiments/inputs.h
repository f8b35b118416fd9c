// The inputs every trace-driven experiment reads the same way: `model:` (a Hugging Face
// config.json plus dtypes) and `workload.trace:`.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "systemc_models/config/config.h"
#include "systemc_models/sim/limits.h"
#include "workloads/model/transformer.h"
#include "workloads/trace/request_trace.h"

namespace wse::experiments {

struct ModelAndTrace {
  workloads::TransformerModel model;
  std::vector<workloads::Request> requests;
};

// Reads both sections and the trace file. When `trace_section` is given, it receives
// the `workload.trace` section, so that the caller can report a problem with a request
// at that key. When `memory` is given, the per-request state of the trace is charged to
// it (request_state_estimate) before the trace is read.
ModelAndTrace read_model_and_trace(config::Section& root, config::Section* trace_section = nullptr,
                                   sim::MemoryBudget* memory = nullptr);

// Bytes a run holds per request for its whole length: the trace's Request, the serving
// system's RequestRecord, its two prompt counters and its admission state (the KV it
// holds, when it became ready, when its latest token came, a swapped flag; for KV
// retention the tokens its next send need not send, when its decode system takes it,
// a counted flag), and the
// request's requests.csv row (kRequestsCsvColumns cells of at most kCsvCellBytes
// characters each).
inline constexpr std::uint64_t kRequestsCsvColumns = 26;  // requests_csv (docs/results.md)
inline constexpr std::uint64_t kServingCounterBytes = 2 * 4 + 5 * 8 + 2;
inline constexpr std::uint64_t kCsvCellBytes = 21;  // 20 digits of a 64-bit count and a comma
std::uint64_t request_state_bytes();

// The most requests `opt` can select (synthetic: its count; a file: its limit, else the
// lines of the file) and the bytes of their state (request_state_bytes each, plus for a
// Mooncake file 8 B per hash id, at most one per two bytes of the file). Reads nothing
// but the file's line count.
struct RequestStateEstimate {
  std::uint64_t requests = 0;
  std::uint64_t bytes = 0;
  std::string key;  // the key of workload.trace that sets the count: requests (synthetic) or limit
};
RequestStateEstimate request_state_estimate(const workloads::TraceOptions& opt);

// The model's figures every experiment reports in summary.json: name, weight bytes, KV
// bytes per token, the GEMM FLOPs of one token (decoder layers and LM head, active
// experts only) and the weight bytes one token's decoder-layer GEMMs read (active
// experts only, at the smallest weight dtype: a lower bound on what a decode step reads).
nlohmann::json model_summary(const workloads::TransformerModel& model);

}  // namespace wse::experiments
