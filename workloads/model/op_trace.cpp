#include "workloads/model/op_trace.h"

#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"

namespace wse::workloads {

namespace {

using nlohmann::ordered_json;

constexpr std::array<DType, kDTypeCount> kAllDTypes{DType::fp32, DType::bf16, DType::fp16, DType::fp8,
                                                    DType::mxfp4};

// Reads one JSON object line, checking each key's type and reporting unknown keys.
class LineReader {
 public:
  LineReader(const std::string& file, int line, const nlohmann::json& j) : file_(file), line_(line), j_(j) {
    if (!j_.is_object()) fail("", "expected a JSON object");
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw config::ConfigError(config::Source{file_, line_, 1}, key, what);
  }

  bool has(const std::string& key) {
    known_.insert(key);
    return j_.contains(key);
  }

  const nlohmann::json& get(const std::string& key) {
    known_.insert(key);
    used_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) fail(key, "missing");
    return *it;
  }

  std::uint64_t u64(const std::string& key) {
    const auto& v = get(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      fail(key, "expected a non-negative integer, found " + v.dump());
    }
    return v.get<std::uint64_t>();
  }
  std::uint64_t u64_or(const std::string& key, std::uint64_t def) { return has(key) ? u64(key) : def; }
  std::int64_t i64(const std::string& key) {
    const auto& v = get(key);
    if (!v.is_number_integer()) fail(key, "expected an integer, found " + v.dump());
    return v.get<std::int64_t>();
  }
  std::string str(const std::string& key) {
    const auto& v = get(key);
    if (!v.is_string()) fail(key, "expected a string, found " + v.dump());
    return v.get<std::string>();
  }
  bool boolean_or(const std::string& key, bool def) {
    if (!has(key)) return def;
    const auto& v = get(key);
    if (!v.is_boolean()) fail(key, "expected true or false, found " + v.dump());
    return v.get<bool>();
  }
  DType dtype_or(const std::string& key, DType def) {
    if (!has(key)) return def;
    const std::string s = str(key);
    DType d{};
    if (!parse_dtype(s, d)) fail(key, "'" + s + "' is not a dtype; allowed: fp32, bf16, fp16, fp8, mxfp4");
    return d;
  }
  std::uint32_t u32(const std::string& key) {
    const auto v = u64(key);
    if (v > 0xffffffffULL) fail(key, "too large (at most 4294967295)");
    return static_cast<std::uint32_t>(v);
  }
  std::uint32_t u32_or(const std::string& key, std::uint32_t def) { return has(key) ? u32(key) : def; }

  // Unknown keys are errors: a typo must not silently become a default.
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!used_.count(it.key())) {
        std::vector<std::string> known(known_.begin(), known_.end());
        const auto hint = config::did_you_mean(it.key(), known);
        fail(it.key(), "unknown key" + (hint ? "; did you mean '" + *hint + "'?" : std::string()));
      }
    }
  }

 private:
  const std::string& file_;
  int line_;
  const nlohmann::json& j_;
  std::set<std::string> used_;
  std::set<std::string> known_;  // keys the schema looked for, present or not
};

ordered_json model_json(const ModelSummary& m) {
  ordered_json j;
  j["name"] = m.name;
  j["model_type"] = m.model_type;
  j["layers"] = m.layers;
  j["hidden"] = m.hidden;
  j["heads"] = m.heads;
  j["kv_heads"] = m.kv_heads;
  j["head_dim"] = m.head_dim;
  j["vocab"] = m.vocab;
  j["experts"] = m.experts;
  j["experts_per_token"] = m.experts_per_token;
  j["parameters"] = m.parameters;
  j["active_parameters"] = m.active_parameters;
  j["weight_bytes"] = m.weight_bytes;
  j["kv_bytes_per_token_per_layer"] = m.kv_bytes_per_token_per_layer;
  j["weight_dtype"] = to_string(m.weight_dtype);
  j["kv_dtype"] = to_string(m.kv_dtype);
  return j;
}

ordered_json op_json(const Operator& op) {
  ordered_json j;
  j["kind"] = to_string(op.kind);
  j["name"] = op.name;
  j["layer"] = op.layer;
  if (op.count != 1) j["count"] = op.count;
  switch (op.kind) {
    case OpKind::gemm:
      j["m"] = op.m;
      j["k"] = op.k;
      j["n"] = op.n;
      break;
    case OpKind::attention:
      j["sequence"] = op.sequence;
      j["q_heads"] = op.q_heads;
      j["kv_heads"] = op.kv_heads;
      j["qk_head_dim"] = op.qk_head_dim;
      j["v_head_dim"] = op.v_head_dim;
      j["query_len"] = op.query_len;
      j["kv_len"] = op.kv_len;
      j["context_offset"] = op.context_offset;
      if (op.window) j["window"] = op.window;
      if (op.sinks) j["sinks"] = true;
      break;
    default:
      j["elements"] = op.elements;
      break;
  }
  j["weight_dtype"] = to_string(op.weight_dtype);
  j["activation_dtype"] = to_string(op.activation_dtype);
  j["flops"] = op.flops;
  j["vector_ops"] = op.vector_ops;
  j["weight_bytes"] = op.weight_bytes;
  j["input_bytes"] = op.input_bytes;
  j["output_bytes"] = op.output_bytes;
  j["kv_read_bytes"] = op.kv_read_bytes;
  j["kv_write_bytes"] = op.kv_write_bytes;
  return j;
}

Operator read_op(LineReader& r) {
  Operator op;
  const std::string kind = r.str("kind");
  if (!parse_op_kind(kind, op.kind)) {
    r.fail("kind", "'" + kind +
                       "' is not an operator kind; allowed: embedding, norm, gemm, rope, attention, "
                       "activation, router, expert_combine, residual_add");
  }
  op.name = r.str("name");
  const auto layer = r.i64("layer");
  if (layer < -1 || layer > 1000000)
    r.fail("layer", "must be -1 (outside the decoder layers) or a layer index");
  op.layer = static_cast<std::int32_t>(layer);
  op.count = r.u32_or("count", 1);
  if (op.count == 0) r.fail("count", "must be at least 1");
  switch (op.kind) {
    case OpKind::gemm:
      op.m = r.u64("m");
      op.k = r.u64("k");
      op.n = r.u64("n");
      break;
    case OpKind::attention:
      op.sequence = r.u32_or("sequence", 0);
      op.q_heads = r.u32("q_heads");
      op.kv_heads = r.u32("kv_heads");
      if (op.kv_heads == 0 || op.q_heads % op.kv_heads != 0)
        r.fail("kv_heads", "must be positive and divide q_heads");
      op.qk_head_dim = r.u32("qk_head_dim");
      op.v_head_dim = r.u32("v_head_dim");
      op.query_len = r.u64("query_len");
      op.kv_len = r.u64("kv_len");
      op.context_offset = r.u64_or("context_offset", 0);
      op.window = r.u32_or("window", 0);
      op.sinks = r.boolean_or("sinks", false);
      break;
    default:
      op.elements = r.u64("elements");
      break;
  }
  op.weight_dtype = r.dtype_or("weight_dtype", DType::bf16);
  op.activation_dtype = r.dtype_or("activation_dtype", DType::bf16);
  // A hand-written GEMM may leave its FLOPs out: 2 x M x K x N per instance.
  // Checked: a product past 2^64 would wrap around to a small (or zero) count.
  std::uint64_t gemm_flops = 0;
  if (op.kind == OpKind::gemm && !r.has("flops")) {
    std::uint64_t f = 2;
    for (const std::uint64_t factor : {op.m, op.k, op.n, std::uint64_t{op.count}}) {
      if (__builtin_mul_overflow(f, factor, &f)) {
        std::ostringstream m;
        m << "2 x m x k x n x count = "
          << 2.0 * static_cast<double>(op.m) * static_cast<double>(op.k) * static_cast<double>(op.n) *
                 op.count
          << " FLOPs does not fit in 64 bits (at most 18446744073709551615); split the operator into smaller "
             "ones or give smaller dimensions";
        r.fail("m", m.str());
      }
    }
    gemm_flops = f;
  }
  op.flops = r.u64_or("flops", gemm_flops);
  op.vector_ops = r.u64_or("vector_ops", 0);
  op.weight_bytes = r.u64_or("weight_bytes", 0);
  op.input_bytes = r.u64_or("input_bytes", 0);
  op.output_bytes = r.u64_or("output_bytes", 0);
  op.kv_read_bytes = r.u64_or("kv_read_bytes", 0);
  op.kv_write_bytes = r.u64_or("kv_write_bytes", 0);
  r.finish();
  return op;
}

}  // namespace

bool parse_dtype(std::string_view s, DType& out) {
  for (DType d : kAllDTypes) {
    if (s == to_string(d)) {
      out = d;
      return true;
    }
  }
  return false;
}

ModelSummary summarize(const TransformerModel& m) {
  ModelSummary s;
  s.name = m.name;
  s.model_type = m.model_type;
  s.layers = m.layers;
  s.hidden = m.hidden;
  s.heads = m.heads;
  s.kv_heads = m.kv_heads;
  s.head_dim = m.head_dim;
  s.vocab = m.vocab;
  s.experts = m.experts;
  s.experts_per_token = m.experts_per_token;
  s.parameters = m.parameters();
  s.active_parameters = m.active_parameters();
  s.weight_bytes = m.weight_bytes();
  s.kv_bytes_per_token_per_layer = m.kv_bytes_per_token_per_layer();
  s.weight_dtype = m.weight_dtype;
  s.kv_dtype = m.kv_dtype;
  return s;
}

void write_op_trace(std::ostream& out, const OpTrace& t) {
  ordered_json h;
  h["format"] = kOpTraceFormat;
  h["version"] = kOpTraceVersion;
  h["model"] = model_json(t.model);
  h["phase"] = t.graph.phase;
  ordered_json seqs = ordered_json::array();
  for (const auto& s : t.graph.sequences) {
    seqs.push_back(ordered_json{{"new_tokens", s.new_tokens}, {"offset", s.offset}, {"logits", s.logits}});
  }
  h["sequences"] = seqs;
  h["operators"] = t.graph.ops.size();
  out << h.dump() << '\n';
  for (const auto& op : t.graph.ops) out << op_json(op).dump() << '\n';
}

void write_op_trace(const std::filesystem::path& file, const OpTrace& t) {
  std::ostringstream s;
  write_op_trace(s, t);
  sim::write_file_atomic(file, s.str());
}

OpTrace read_op_trace(std::istream& in, const std::string& file) {
  OpTrace t;
  std::string text;
  int line_no = 0;
  bool have_header = false;
  std::uint64_t expected_ops = 0;
  std::uint64_t total_flops = 0;  // checked: OperatorGraph::total_flops() must not wrap
  const auto parse = [&](const std::string& s) {
    try {
      return nlohmann::json::parse(s);
    } catch (const nlohmann::json::exception& e) {
      throw config::ConfigError(config::Source{file, line_no, 1}, "",
                                std::string("not valid JSON: ") + e.what());
    }
  };
  while (std::getline(in, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const nlohmann::json j = parse(text);
    LineReader r(file, line_no, j);
    if (!have_header) {
      const std::string fmt = r.str("format");
      if (fmt != kOpTraceFormat)
        r.fail("format", "expected \"" + std::string(kOpTraceFormat) + "\", found \"" + fmt + "\"");
      const auto version = r.i64("version");
      if (version != kOpTraceVersion) {
        r.fail("version", "this reader understands version " + std::to_string(kOpTraceVersion) + ", found " +
                              std::to_string(version));
      }
      const auto& mj = r.get("model");
      LineReader mr(file, line_no, mj);
      ModelSummary& m = t.model;
      m.name = mr.str("name");
      m.model_type = mr.str("model_type");
      m.layers = mr.u64("layers");
      m.hidden = mr.u64("hidden");
      m.heads = mr.u64_or("heads", 0);
      m.kv_heads = mr.u64_or("kv_heads", 0);
      m.head_dim = mr.u64_or("head_dim", 0);
      m.vocab = mr.u64_or("vocab", 0);
      m.experts = mr.u64_or("experts", 0);
      m.experts_per_token = mr.u64_or("experts_per_token", 0);
      m.parameters = mr.u64_or("parameters", 0);
      m.active_parameters = mr.u64_or("active_parameters", 0);
      m.weight_bytes = mr.u64_or("weight_bytes", 0);
      m.kv_bytes_per_token_per_layer = mr.u64_or("kv_bytes_per_token_per_layer", 0);
      m.weight_dtype = mr.dtype_or("weight_dtype", DType::bf16);
      m.kv_dtype = mr.dtype_or("kv_dtype", DType::bf16);
      mr.finish();
      t.graph.phase = r.has("phase") ? r.str("phase") : "prefill";
      if (r.has("sequences")) {
        const auto& sj = r.get("sequences");
        if (!sj.is_array()) r.fail("sequences", "expected a list of {new_tokens, offset, logits}");
        for (const auto& e : sj) {
          LineReader sr(file, line_no, e);
          Sequence s;
          s.new_tokens = sr.u64("new_tokens");
          s.offset = sr.u64_or("offset", 0);
          s.logits = sr.boolean_or("logits", true);
          sr.finish();
          t.graph.sequences.push_back(s);
        }
      }
      expected_ops = r.u64_or("operators", 0);
      r.finish();
      have_header = true;
      continue;
    }
    Operator op = read_op(r);
    if (op.kind == OpKind::attention && !t.graph.sequences.empty() &&
        op.sequence >= t.graph.sequences.size()) {
      r.fail("sequence", "is " + std::to_string(op.sequence) + " but the header lists " +
                             std::to_string(t.graph.sequences.size()) + " sequences");
    }
    if (op.layer >= 0 && t.model.layers > 0 && static_cast<std::uint64_t>(op.layer) >= t.model.layers) {
      r.fail("layer", "is " + std::to_string(op.layer) + " but the model has " +
                          std::to_string(t.model.layers) + " layers");
    }
    if (__builtin_add_overflow(total_flops, op.flops, &total_flops)) {
      r.fail("flops",
             "the operators' FLOPs up to this line add up to more than 2^64 - 1 "
             "(18446744073709551615); split the trace");
    }
    t.graph.ops.push_back(std::move(op));
  }
  if (!have_header)
    throw config::ConfigError(config::Source{file, 1, 1}, "", "empty operator trace: expected a header line");
  if (expected_ops != 0 && expected_ops != t.graph.ops.size()) {
    throw config::ConfigError(config::Source{file, line_no, 1}, "operators",
                              "the header announces " + std::to_string(expected_ops) +
                                  " operators but the file has " + std::to_string(t.graph.ops.size()) +
                                  " (truncated file?)");
  }
  return t;
}

OpTrace read_op_trace(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw config::ConfigError(config::Source{file.string(), 0, 0}, "", "cannot open the operator trace");
  return read_op_trace(in, file.string());
}

}  // namespace wse::workloads
