// Fuzz target: the Mooncake JSONL request-trace reader (workloads/trace). The input is the
// trace file; the checks are those of fuzz/trace_target.h.
#include "fuzz/trace_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return wse::fuzz::fuzz_trace(wse::workloads::TraceFormat::mooncake_jsonl, "trace.jsonl", data, size);
}
