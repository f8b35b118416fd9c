// The inputs every trace-driven experiment reads the same way: `model:` (a Hugging Face
// config.json plus dtypes) and `workload.trace:`.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "systemc_models/config/config.h"
#include "workloads/model/transformer.h"
#include "workloads/trace/request_trace.h"

namespace wse::experiments {

struct ModelAndTrace {
  workloads::TransformerModel model;
  std::vector<workloads::Request> requests;
};

// Reads both sections and the trace file. When `trace_section` is given, it receives
// the `workload.trace` section, so that the caller can report a problem with a request
// at that key.
ModelAndTrace read_model_and_trace(config::Section& root, config::Section* trace_section = nullptr);

// The model's figures every experiment reports in summary.json: name, weight bytes, KV
// bytes per token, the GEMM FLOPs of one token (decoder layers and LM head, active
// experts only) and the weight bytes one token's decoder-layer GEMMs read (active
// experts only, at the smallest weight dtype: a lower bound on what a decode step reads).
nlohmann::json model_summary(const workloads::TransformerModel& model);

}  // namespace wse::experiments
