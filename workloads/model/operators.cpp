#include "workloads/model/operators.h"

#include <string_view>

#include <array>
#include <stdexcept>
#include <utility>

namespace wse::workloads {

namespace {

constexpr std::array<std::pair<OpKind, const char*>, 9> kOpNames{{
    {OpKind::embedding, "embedding"},
    {OpKind::norm, "norm"},
    {OpKind::gemm, "gemm"},
    {OpKind::rope, "rope"},
    {OpKind::attention, "attention"},
    {OpKind::activation, "activation"},
    {OpKind::router, "router"},
    {OpKind::expert_combine, "expert_combine"},
    {OpKind::residual_add, "residual_add"},
}};

// Element operations per value of the vector operators (an estimate of the work of
// the vector engines; matrix work is counted exactly in `flops`):
constexpr std::uint64_t kNormOps = 4;     // square, accumulate, scale by rsqrt, scale by weight
constexpr std::uint64_t kRopeOps = 3;     // two multiplies and an add per rotated value
constexpr std::uint64_t kSwigluOps = 5;   // exp, add, divide (sigmoid), two multiplies
constexpr std::uint64_t kSoftmaxOps = 5;  // max, subtract, exp, sum, scale
constexpr std::uint64_t kCombineOps = 2;  // multiply by the gate weight, accumulate
constexpr std::uint64_t kAddOps = 1;

class Lowering {
 public:
  Lowering(const TransformerModel& m, const std::vector<Sequence>& batch) : m_(m), batch_(batch) {
    for (const auto& s : batch) {
      if (s.new_tokens == 0) throw std::invalid_argument("a sequence of the batch has no new tokens");
      tokens_ += s.new_tokens;
      if (s.logits) logit_rows_ += s.logits_all ? s.new_tokens : 1;
      (is_decode(s) ? decode_tokens_ : prefill_tokens_) += s.new_tokens;
    }
    act_ = m.activation_dtype;
  }

  std::vector<Operator> run() {
    // Per layer: about 25 operators plus one attention per sequence.
    ops_.reserve(m_.layers * (32 + batch_.size()) + 4);
    embedding();
    for (std::uint32_t l = 0; l < m_.layers; ++l) layer(l);
    if (logit_rows_ > 0) {
      elementwise(OpKind::norm, "norm", -1, logit_rows_ * m_.hidden, kNormOps, find_top("norm"));
      gemm("lm_head", -1, logit_rows_, m_.hidden, m_.vocab, m_.weight_dtype,
           bytes_of(static_cast<std::uint64_t>(m_.hidden) * m_.vocab, m_.weight_dtype));
    }
    return std::move(ops_);
  }

 private:
  // MLA decode uses the absorbed latent form; a one-token pass with context is a decode step.
  static bool is_decode(const Sequence& s) { return s.new_tokens == 1 && s.offset > 0; }

  std::uint64_t act_bytes(std::uint64_t values) const { return bytes_of(values, act_); }

  const WeightTensor* find(std::uint32_t layer, std::string_view name) const {
    for (const auto& w : m_.layer_specs[layer].weights) {
      if (w.name == name) return &w;
    }
    return nullptr;
  }
  const WeightTensor* find_top(std::string_view name) const {
    for (const auto& w : top_) {
      if (w.name == name) return &w;
    }
    return nullptr;
  }

  Operator& push(OpKind kind, std::string name, std::int32_t layer) {
    Operator op;
    op.kind = kind;
    op.name = std::move(name);
    op.layer = layer;
    op.activation_dtype = act_;
    op.weight_dtype = m_.weight_dtype;
    ops_.push_back(std::move(op));
    return ops_.back();
  }

  void embedding() {
    Operator& op = push(OpKind::embedding, "embed_tokens", -1);
    op.elements = tokens_ * m_.hidden;
    op.weight_dtype = m_.weight_dtype;
    // One table row per token (tokens assumed distinct: the upper bound).
    op.weight_bytes = tokens_ * bytes_of(m_.hidden, m_.weight_dtype);
    op.output_bytes = act_bytes(op.elements);
  }

  void elementwise(OpKind kind, std::string name, std::int32_t layer, std::uint64_t elements,
                   std::uint64_t ops_per_value, const WeightTensor* w = nullptr, std::uint64_t inputs = 1) {
    Operator& op = push(kind, std::move(name), layer);
    op.elements = elements;
    op.vector_ops = elements * ops_per_value;
    op.input_bytes = inputs * act_bytes(elements);
    op.output_bytes = act_bytes(elements);
    if (w) {
      op.weight_dtype = w->dtype;
      op.weight_bytes = w->bytes();
    }
  }

  // A GEMM of `count` instances, each [m x k] x [k x n]; `weight_bytes` over all instances.
  Operator& gemm(std::string name, std::int32_t layer, std::uint64_t m, std::uint64_t k, std::uint64_t n,
                 DType wdt, std::uint64_t weight_bytes, std::uint32_t count = 1) {
    Operator& op = push(OpKind::gemm, std::move(name), layer);
    op.m = m;
    op.k = k;
    op.n = n;
    op.count = count;
    op.weight_dtype = wdt;
    op.flops = 2 * m * k * n * count;
    op.weight_bytes = weight_bytes;
    op.input_bytes = count * act_bytes(m * k);
    op.output_bytes = count * act_bytes(m * n);
    return op;
  }

  // A GEMM over one weight tensor of the layer (plus its bias when the model has one).
  void weight_gemm(std::uint32_t l, std::string_view name, std::uint64_t m) {
    const WeightTensor* w = find(l, name);
    if (!w)
      throw std::logic_error("lowering: layer " + std::to_string(l) + " has no weight " + std::string(name));
    std::uint64_t wb = w->bytes();
    if (m_.attention_bias) {
      if (const WeightTensor* b = find(l, std::string(name) + ".bias")) wb += b->bytes();
    }
    gemm(std::string(name), static_cast<std::int32_t>(l), m, w->rows, w->cols, w->dtype, wb);
  }

  void layer(std::uint32_t l) {
    const auto L = static_cast<std::int32_t>(l);
    const std::uint64_t h = m_.hidden, T = tokens_;
    elementwise(OpKind::norm, "input_layernorm", L, T * h, kNormOps, find(l, "input_layernorm"));
    if (m_.attention == AttentionKind::mla)
      mla_attention(l);
    else
      gqa_attention(l);
    elementwise(OpKind::residual_add, "attn_residual", L, T * h, kAddOps, nullptr, 2);
    elementwise(OpKind::norm, "post_attention_layernorm", L, T * h, kNormOps,
                find(l, "post_attention_layernorm"));
    if (m_.layer_specs[l].mlp == MlpKind::moe)
      moe(l);
    else
      dense_mlp(l, "mlp");
    elementwise(OpKind::residual_add, "mlp_residual", L, T * h, kAddOps, nullptr, 2);
  }

  void gqa_attention(std::uint32_t l) {
    const auto L = static_cast<std::int32_t>(l);
    const std::uint64_t T = tokens_, d = m_.head_dim, H = m_.heads, KV = m_.kv_heads;
    weight_gemm(l, "self_attn.q_proj", T);
    weight_gemm(l, "self_attn.k_proj", T);
    weight_gemm(l, "self_attn.v_proj", T);
    if (m_.qk_norm) {
      elementwise(OpKind::norm, "self_attn.q_norm", L, T * H * d, kNormOps, find(l, "self_attn.q_norm"));
      elementwise(OpKind::norm, "self_attn.k_norm", L, T * KV * d, kNormOps, find(l, "self_attn.k_norm"));
    }
    elementwise(OpKind::rope, "rope", L, T * (H + KV) * d, kRopeOps);
    for (std::uint32_t i = 0; i < batch_.size(); ++i) {
      const Sequence& s = batch_[i];
      Operator& op = attention_op(l, i, static_cast<std::uint32_t>(H), static_cast<std::uint32_t>(KV),
                                  static_cast<std::uint32_t>(d), static_cast<std::uint32_t>(d), false);
      // Inputs: this chunk's q, k, v; output: its attention result.
      op.input_bytes = act_bytes(s.new_tokens * (H + 2 * KV) * d);
      op.output_bytes = act_bytes(s.new_tokens * H * d);
      // The sink logits are read once per layer, by the first sequence's operator.
      const WeightTensor* sinks = find(l, "self_attn.sinks");
      if (sinks && i == 0) op.weight_bytes = sinks->bytes();
    }
    weight_gemm(l, "self_attn.o_proj", T);
  }

  // Attention of sequence i in layer l; KV cache traffic from the model's cached values.
  Operator& attention_op(std::uint32_t l, std::uint32_t i, std::uint32_t q_heads, std::uint32_t kv_heads,
                         std::uint32_t qk_dim, std::uint32_t v_dim, bool latent_decode) {
    const Sequence& s = batch_[i];
    const std::uint32_t window = m_.layer_specs[l].window_tokens;
    Operator& op = push(OpKind::attention, "self_attn", static_cast<std::int32_t>(l));
    op.sequence = i;
    op.q_heads = q_heads;
    op.kv_heads = kv_heads;
    op.qk_head_dim = qk_dim;
    op.v_head_dim = v_dim;
    op.query_len = s.new_tokens;
    op.context_offset = s.offset;
    op.window = window;
    op.sinks = m_.attention_sinks;
    op.weight_dtype = m_.kv_dtype;
    op.kv_len =
        window == 0 ? s.offset + s.new_tokens : std::min<std::uint64_t>(s.offset + s.new_tokens, window);
    const std::uint64_t keys = causal_keys(s.new_tokens, s.offset, window);
    op.flops = keys * m_.attention_flops_per_key(l, latent_decode);
    op.vector_ops = keys * q_heads * kSoftmaxOps;
    const std::uint64_t per_token = m_.kv_bytes_per_token_per_layer();
    // The cache keeps at most `window` tokens per sliding layer.
    op.kv_write_bytes = m_.kv_tokens(l, s.new_tokens) * per_token;
    // Decode reads the whole cache including the token just written; prefill reads the
    // cached earlier chunks (the chunk's own K/V arrive as activations).
    op.kv_read_bytes =
        is_decode(s) ? m_.kv_tokens(l, s.offset + 1) * per_token : m_.kv_tokens(l, s.offset) * per_token;
    return op;
  }

  void mla_attention(std::uint32_t l) {
    const auto L = static_cast<std::int32_t>(l);
    const std::uint64_t T = tokens_, H = m_.heads, nope = m_.qk_nope_head_dim, rope = m_.qk_rope_head_dim,
                        v = m_.v_head_dim, r = m_.kv_lora_rank;
    if (m_.q_lora_rank > 0) {
      weight_gemm(l, "self_attn.q_a_proj", T);
      elementwise(OpKind::norm, "self_attn.q_a_layernorm", L, T * m_.q_lora_rank, kNormOps,
                  find(l, "self_attn.q_a_layernorm"));
      weight_gemm(l, "self_attn.q_b_proj", T);
    } else {
      weight_gemm(l, "self_attn.q_proj", T);
    }
    weight_gemm(l, "self_attn.kv_a_proj_with_mqa", T);
    elementwise(OpKind::norm, "self_attn.kv_a_layernorm", L, T * r, kNormOps,
                find(l, "self_attn.kv_a_layernorm"));
    elementwise(OpKind::rope, "rope", L, T * (H + 1) * rope, kRopeOps);
    const WeightTensor* kvb = find(l, "self_attn.kv_b_proj");
    const std::uint64_t per_token = m_.kv_bytes_per_token_per_layer();
    if (prefill_tokens_ > 0) {
      // Decompress the latents of every prefill sequence (cached + new) into per-head K, V.
      std::uint64_t rows = 0, cached = 0;
      for (const auto& s : batch_) {
        if (!is_decode(s)) {
          rows += s.offset + s.new_tokens;
          cached += s.offset;
        }
      }
      Operator& op = gemm("self_attn.kv_b_proj", L, rows, kvb->rows, kvb->cols, kvb->dtype, kvb->bytes());
      op.kv_read_bytes = cached * per_token;  // the cached latents come from the KV cache
      op.input_bytes = act_bytes((rows - cached) * kvb->rows);
    }
    if (decode_tokens_ > 0) {
      // Absorbed: q_nope x W_UK per head, then (latent output) x W_UV per head.
      const std::uint64_t half_uk = bytes_of(nope * r, kvb->dtype), half_uv = bytes_of(r * v, kvb->dtype);
      gemm("self_attn.kv_b_proj.absorb_k", L, decode_tokens_, nope, r, kvb->dtype, H * half_uk,
           static_cast<std::uint32_t>(H));
      decode_uv_pending_ = H * half_uv;
    }
    for (std::uint32_t i = 0; i < batch_.size(); ++i) {
      const Sequence& s = batch_[i];
      if (is_decode(s)) {
        Operator& op =
            attention_op(l, i, static_cast<std::uint32_t>(H), 1, static_cast<std::uint32_t>(r + rope),
                         static_cast<std::uint32_t>(r), true);
        op.input_bytes = act_bytes(H * (r + rope));  // absorbed query of the one token
        op.output_bytes = act_bytes(H * r);
      } else {
        Operator& op =
            attention_op(l, i, static_cast<std::uint32_t>(H), static_cast<std::uint32_t>(H),
                         static_cast<std::uint32_t>(nope + rope), static_cast<std::uint32_t>(v), false);
        // The decompressed K/V of cached tokens arrive as activations from kv_b_proj.
        op.kv_read_bytes = 0;
        op.input_bytes =
            act_bytes(s.new_tokens * H * (nope + rope) + (s.offset + s.new_tokens) * H * (nope + rope + v));
        op.output_bytes = act_bytes(s.new_tokens * H * v);
      }
    }
    if (decode_tokens_ > 0) {
      gemm("self_attn.kv_b_proj.absorb_v", L, decode_tokens_, r, v, kvb->dtype, decode_uv_pending_,
           static_cast<std::uint32_t>(H));
    }
    weight_gemm(l, "self_attn.o_proj", T);
  }

  void dense_mlp(std::uint32_t l, const std::string& prefix) {
    const auto L = static_cast<std::int32_t>(l);
    const WeightTensor* gate = find(l, prefix + ".gate_proj");
    weight_gemm(l, prefix + ".gate_proj", tokens_);
    weight_gemm(l, prefix + ".up_proj", tokens_);
    elementwise(OpKind::activation, prefix + ".act", L, tokens_ * gate->cols, kSwigluOps, nullptr, 2);
    weight_gemm(l, prefix + ".down_proj", tokens_);
  }

  void moe(std::uint32_t l) {
    const auto L = static_cast<std::int32_t>(l);
    const std::uint64_t T = tokens_, E = m_.experts, k = m_.experts_per_token, h = m_.hidden,
                        I = m_.expert_intermediate;
    {
      const WeightTensor* g = find(l, "mlp.gate");
      std::uint64_t wb = g->bytes();
      if (const WeightTensor* b = find(l, "mlp.router.bias")) wb += b->bytes();
      if (const WeightTensor* b = find(l, "mlp.gate.e_score_correction_bias")) wb += b->bytes();
      gemm("mlp.gate", L, T, h, E, g->dtype, wb);
    }
    elementwise(OpKind::router, "mlp.router", L, T * E, kSoftmaxOps);
    // Uniform routing: T*k assignments, q = floor(Tk/E) tokens to each expert, one more to
    // the first Tk mod E experts.
    const std::uint64_t assignments = T * k, q = assignments / E, extra = assignments % E;
    const auto group = [&](std::uint64_t tokens, std::uint64_t experts) {
      if (tokens == 0 || experts == 0) return;
      const auto c = static_cast<std::uint32_t>(experts);
      for (const char* name : {"mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj"}) {
        const WeightTensor* w = find(l, name);
        std::uint64_t wb = bytes_of(w->rows * w->cols, w->dtype);
        // gpt-oss expert biases travel with their matrices.
        if (m_.expert_bias) {
          if (std::string_view(name) == "mlp.experts.down_proj")
            wb += bytes_of(h, m_.weight_dtype);
          else
            wb += bytes_of(I, m_.weight_dtype);  // half of gate_up_proj_bias
        }
        gemm(name, L, tokens, w->rows, w->cols, w->dtype, c * wb, c);
      }
    };
    group(q + 1, extra);
    group(q, E - extra);
    elementwise(OpKind::activation, "mlp.experts.act", L, assignments * I, kSwigluOps, nullptr, 2);
    elementwise(OpKind::expert_combine, "mlp.experts.combine", L, assignments * h, kCombineOps);
    if (m_.shared_experts > 0) dense_mlp(l, "mlp.shared_experts");
  }

  const TransformerModel& m_;
  const std::vector<Sequence>& batch_;
  std::vector<WeightTensor> top_ = m_.top_weights();
  DType act_ = DType::bf16;
  std::uint64_t tokens_ = 0, logit_rows_ = 0, prefill_tokens_ = 0, decode_tokens_ = 0;
  std::uint64_t decode_uv_pending_ = 0;
  std::vector<Operator> ops_;
};

template <class F>
std::uint64_t sum(const std::vector<Operator>& ops, F f) {
  std::uint64_t s = 0;
  for (const auto& op : ops) s += f(op);
  return s;
}

}  // namespace

const char* to_string(OpKind k) {
  for (const auto& [kind, name] : kOpNames) {
    if (kind == k) return name;
  }
  return "?";
}

bool parse_op_kind(std::string_view s, OpKind& out) {
  for (const auto& [kind, name] : kOpNames) {
    if (s == name) {
      out = kind;
      return true;
    }
  }
  return false;
}

std::uint64_t OperatorGraph::total_flops() const {
  return sum(ops, [](const Operator& o) { return o.flops; });
}
std::uint64_t OperatorGraph::total_vector_ops() const {
  return sum(ops, [](const Operator& o) { return o.vector_ops; });
}
std::uint64_t OperatorGraph::total_weight_bytes() const {
  return sum(ops, [](const Operator& o) { return o.weight_bytes; });
}
std::uint64_t OperatorGraph::total_kv_read_bytes() const {
  return sum(ops, [](const Operator& o) { return o.kv_read_bytes; });
}
std::uint64_t OperatorGraph::total_kv_write_bytes() const {
  return sum(ops, [](const Operator& o) { return o.kv_write_bytes; });
}
std::uint64_t OperatorGraph::total_bytes() const {
  return sum(ops, [](const Operator& o) { return o.bytes(); });
}

OperatorGraph lower(const TransformerModel& model, const std::vector<Sequence>& batch) {
  if (batch.empty()) throw std::invalid_argument("cannot lower an empty batch");
  OperatorGraph g;
  bool any_decode = false, any_prefill = false;
  for (const auto& s : batch) (s.new_tokens == 1 && s.offset > 0 ? any_decode : any_prefill) = true;
  g.phase = any_decode && any_prefill ? "mixed" : (any_decode ? "decode" : "prefill");
  g.sequences = batch;
  g.ops = Lowering(model, batch).run();
  return g;
}

OperatorGraph lower_prefill(const TransformerModel& model, const std::vector<std::uint64_t>& chunk_tokens,
                            const std::vector<std::uint64_t>& offsets,
                            const std::vector<std::uint64_t>& prompt_tokens) {
  if (!offsets.empty() && offsets.size() != chunk_tokens.size()) {
    throw std::invalid_argument("lower_prefill: offsets and chunk_tokens differ in length");
  }
  if (!prompt_tokens.empty() && prompt_tokens.size() != chunk_tokens.size()) {
    throw std::invalid_argument("lower_prefill: prompt_tokens and chunk_tokens differ in length");
  }
  std::vector<Sequence> batch;
  for (std::size_t i = 0; i < chunk_tokens.size(); ++i) {
    Sequence s;
    s.new_tokens = chunk_tokens[i];
    s.offset = offsets.empty() ? 0 : offsets[i];
    s.logits = prompt_tokens.empty() || s.offset + s.new_tokens >= prompt_tokens[i];
    batch.push_back(s);
  }
  OperatorGraph g = lower(model, batch);
  g.phase = "prefill";
  return g;
}

OperatorGraph lower_decode(const TransformerModel& model, const std::vector<std::uint64_t>& context_tokens) {
  std::vector<Sequence> batch;
  for (auto c : context_tokens) {
    if (c == 0) throw std::invalid_argument("lower_decode: a running request has an empty context");
    batch.push_back({1, c, true});
  }
  return lower(model, batch);
}

OperatorGraph lower_verify(const TransformerModel& model, const std::vector<std::uint64_t>& context_tokens,
                           std::uint32_t draft_tokens) {
  std::vector<Sequence> batch;
  for (auto c : context_tokens) {
    if (c == 0) throw std::invalid_argument("lower_verify: a running request has an empty context");
    batch.push_back({std::uint64_t{draft_tokens} + 1, c, true, true});
  }
  OperatorGraph g = lower(model, batch);
  g.phase = "verify";
  return g;
}

bool row_parallel(const Operator& op) {
  const auto ends_with = [&](std::string_view suffix) {
    return op.name.size() >= suffix.size() &&
           op.name.compare(op.name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with("o_proj") || ends_with("down_proj");
}

std::vector<Operator> fuse_projections(const std::vector<Operator>& ops, std::size_t from, std::size_t to) {
  std::vector<Operator> out;
  for (std::size_t o = from; o < to; ++o) {
    const Operator& op = ops[o];
    if (!out.empty()) {
      Operator& prev = out.back();
      if (op.kind == OpKind::gemm && prev.kind == OpKind::gemm && !row_parallel(op) && !row_parallel(prev) &&
          op.m == prev.m && op.k == prev.k && op.count == 1 && prev.count == 1 &&
          op.weight_dtype == prev.weight_dtype && op.activation_dtype == prev.activation_dtype) {
        prev.name += "+" + op.name;
        prev.n += op.n;
        prev.flops += op.flops;
        prev.weight_bytes += op.weight_bytes;
        prev.output_bytes += op.output_bytes;
        continue;
      }
    }
    out.push_back(op);
  }
  return out;
}

}  // namespace wse::workloads
