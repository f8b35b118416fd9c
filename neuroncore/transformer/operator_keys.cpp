#include "neuroncore/transformer/operator_keys.h"

#include <algorithm>
#include <utility>

#include "neuroncore/transformer/kernel_builders.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

std::string operator_key(const Operator& op) {
  std::string s;
  s.reserve(160);
  KeyWriter k{s};
  k << std::string_view(workloads::to_string(op.kind)) << '|' << op.name << '|' << op.count << '|' << op.m
    << ',' << op.k << ',' << op.n << '|' << op.q_heads << ',' << op.kv_heads << ',' << op.qk_head_dim << ','
    << op.v_head_dim << '|' << op.query_len << ',' << op.kv_len << ',' << op.context_offset << ','
    << op.window << ',' << static_cast<std::uint64_t>(op.sinks) << '|' << op.elements << ',' << op.vector_ops
    << '|' << static_cast<std::uint64_t>(op.weight_dtype) << ','
    << static_cast<std::uint64_t>(op.activation_dtype) << '|' << op.input_bytes << ',' << op.output_bytes
    << ',' << op.weight_bytes;
  return s;
}

bool is_decode_attention(const Operator& op) { return op.kind == OpKind::attention && op.query_len == 1; }

std::uint64_t kv_bytes_per_key(const Operator& op) {
  const std::uint64_t keys = std::max<std::uint64_t>(op.kv_len, 1) * std::max<std::uint32_t>(op.kv_heads, 1);
  if (op.kv_read_bytes >= keys) return op.kv_read_bytes / keys;
  return std::uint64_t{op.qk_head_dim + op.v_head_dim} * bytes_of(chip_dtype(op.weight_dtype));
}

bool same_but_layer(const Operator& a, const Operator& b) {
  static_assert(sizeof(Operator) == 200, "an Operator field was added or removed: compare it here");
  return a.kind == b.kind && a.count == b.count && a.m == b.m && a.k == b.k && a.n == b.n &&
         a.sequence == b.sequence && a.q_heads == b.q_heads && a.kv_heads == b.kv_heads &&
         a.qk_head_dim == b.qk_head_dim && a.v_head_dim == b.v_head_dim && a.query_len == b.query_len &&
         a.kv_len == b.kv_len && a.context_offset == b.context_offset && a.window == b.window &&
         a.sinks == b.sinks && a.elements == b.elements && a.weight_dtype == b.weight_dtype &&
         a.activation_dtype == b.activation_dtype && a.flops == b.flops && a.vector_ops == b.vector_ops &&
         a.weight_bytes == b.weight_bytes && a.input_bytes == b.input_bytes &&
         a.output_bytes == b.output_bytes && a.kv_read_bytes == b.kv_read_bytes &&
         a.kv_write_bytes == b.kv_write_bytes && a.name == b.name;
}

bool same_decode_batch(const Operator& a, const Operator& b) {
  return is_decode_attention(b) && b.layer == a.layer && b.name == a.name && b.q_heads == a.q_heads &&
         b.kv_heads == a.kv_heads && b.qk_head_dim == a.qk_head_dim && b.v_head_dim == a.v_head_dim &&
         b.weight_dtype == a.weight_dtype;
}

std::string decode_attention_key(const std::vector<Operator>& sequences) {
  if (sequences.empty()) return {};
  const Operator& a = sequences.front();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> keys;
  for (const Operator& op : sequences) keys.emplace_back(op.kv_len, kv_bytes_per_key(op));
  std::sort(keys.begin(), keys.end());
  std::string s;
  s.reserve(64 + 12 * keys.size());
  KeyWriter k{s};
  k << std::string_view("decode_attention|") << a.name << '|' << a.q_heads << ',' << a.kv_heads << ','
    << a.qk_head_dim << ',' << a.v_head_dim << ',' << static_cast<std::uint64_t>(a.weight_dtype) << '|';
  for (const auto& [n, b] : keys) k << n << ':' << b << ',';
  return s;
}

}  // namespace wse::neuron
