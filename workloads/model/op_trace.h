// Operator-trace files (docs/trace_format.md): JSON Lines, one header line with the
// format version, the model summary and the batch, then one operator per line. Written
// from a lowered batch, or by hand / by other tools; read back into an OperatorGraph.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>

#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"

namespace wse::workloads {

inline constexpr const char* kOpTraceFormat = "wse-emu-operator-trace";
inline constexpr int kOpTraceVersion = 1;

// What the header says about the model (informative: operators carry their own costs).
struct ModelSummary {
  std::string name;
  std::string model_type;
  std::uint64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  std::uint64_t experts = 0, experts_per_token = 0;
  std::uint64_t parameters = 0, active_parameters = 0, weight_bytes = 0;
  std::uint64_t kv_bytes_per_token_per_layer = 0;
  DType weight_dtype = DType::bf16, kv_dtype = DType::bf16;
  bool operator==(const ModelSummary&) const = default;
};
ModelSummary summarize(const TransformerModel& m);

struct OpTrace {
  ModelSummary model;
  OperatorGraph graph;
  bool operator==(const OpTrace&) const = default;
};

void write_op_trace(std::ostream& out, const OpTrace& trace);
void write_op_trace(const std::filesystem::path& file, const OpTrace& trace);

// Throws config::ConfigError naming file:line, the key and what is wrong.
OpTrace read_op_trace(std::istream& in, const std::string& file_name);
OpTrace read_op_trace(const std::filesystem::path& file);

bool parse_dtype(std::string_view s, DType& out);

}  // namespace wse::workloads
