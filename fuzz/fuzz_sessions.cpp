// Fuzz target: the session JSON Lines reader (workloads/trace/sessions.cpp). The input
// is the session file; the checks are those of fuzz/trace_target.h.
#include "fuzz/trace_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return wse::fuzz::fuzz_trace(wse::workloads::TraceFormat::sessions_jsonl, "sessions.jsonl", data, size);
}
