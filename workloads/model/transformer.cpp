#include "workloads/model/transformer.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace wse::workloads {

std::uint32_t bytes_per_value(DType t) {
  switch (t) {
    case DType::fp32:
      return 4;
    case DType::bf16:
    case DType::fp16:
      return 2;
    case DType::fp8:
      return 1;
    case DType::mxfp4:
      break;
  }
  throw std::invalid_argument("mxfp4 has no whole number of bytes per value (4.25 bits); use bytes_of()");
}

double bits_per_value(DType t) {
  // mxfp4: 32 x 4-bit elements + one 8-bit shared scale (E8M0) = 136 bits / 32 values.
  return t == DType::mxfp4 ? 136.0 / 32.0 : 8.0 * bytes_per_value(t);
}

std::uint64_t bytes_of(std::uint64_t values, DType t) {
  if (t == DType::mxfp4) return (values + 31) / 32 * 17;  // 16 B of nibbles + 1 B scale per block
  return values * bytes_per_value(t);
}

const char* to_string(DType t) {
  switch (t) {
    case DType::fp32:
      return "fp32";
    case DType::bf16:
      return "bf16";
    case DType::fp16:
      return "fp16";
    case DType::fp8:
      return "fp8";
    case DType::mxfp4:
      return "mxfp4";
  }
  return "?";
}

const char* to_string(WeightRole r) {
  switch (r) {
    case WeightRole::embedding:
      return "embedding";
    case WeightRole::lm_head:
      return "lm_head";
    case WeightRole::attention:
      return "attention";
    case WeightRole::mlp:
      return "mlp";
    case WeightRole::shared_expert:
      return "shared_expert";
    case WeightRole::routed_expert:
      return "routed_expert";
    case WeightRole::router:
      return "router";
    case WeightRole::norm:
      return "norm";
    case WeightRole::bias:
      return "bias";
    case WeightRole::sink:
      return "sink";
  }
  return "?";
}

bool WeightTensor::is_gemm() const {
  switch (role) {
    case WeightRole::lm_head:
    case WeightRole::attention:
    case WeightRole::mlp:
    case WeightRole::shared_expert:
    case WeightRole::routed_expert:
    case WeightRole::router:
      return true;
    default:
      return false;
  }
}

namespace {

// Tensors whose use depends on routing: a token touches experts_per_token of `copies`.
bool per_expert(const WeightTensor& w, const TransformerModel& m) {
  return m.experts > 0 && w.copies == m.experts &&
         (w.role == WeightRole::routed_expert || w.role == WeightRole::bias);
}

std::uint64_t active_of(const WeightTensor& w, const TransformerModel& m) {
  if (per_expert(w, m)) return w.rows * w.cols * m.experts_per_token;
  return w.parameters();
}

}  // namespace

std::vector<WeightTensor> TransformerModel::top_weights() const {
  std::vector<WeightTensor> w;
  w.push_back({"embed_tokens", WeightRole::embedding, vocab, hidden, 1, weight_dtype});
  w.push_back({"norm", WeightRole::norm, 1, hidden, 1, weight_dtype});
  if (!tied_embeddings) w.push_back({"lm_head", WeightRole::lm_head, hidden, vocab, 1, weight_dtype});
  return w;
}

std::uint64_t TransformerModel::layer_parameters(std::uint32_t layer) const {
  std::uint64_t n = 0;
  for (const auto& w : layer_specs.at(layer).weights) n += w.parameters();
  return n;
}

std::uint64_t TransformerModel::parameters() const {
  std::uint64_t n = 0;
  for (std::uint32_t l = 0; l < layers; ++l) n += layer_parameters(l);
  for (const auto& w : top_weights()) n += w.parameters();
  return n;
}

std::uint64_t TransformerModel::active_parameters() const {
  std::uint64_t n = 0;
  for (const auto& spec : layer_specs) {
    for (const auto& w : spec.weights) n += active_of(w, *this);
  }
  for (const auto& w : top_weights()) n += w.parameters();
  return n;
}

std::uint64_t TransformerModel::active_parameters_without_embedding() const {
  return active_parameters() - static_cast<std::uint64_t>(vocab) * hidden;
}

std::uint64_t TransformerModel::mtp_parameters() const {
  std::uint64_t n = 0;
  for (const auto& spec : mtp_layers) {
    for (const auto& w : spec.weights) n += w.parameters();
  }
  return n;
}

BytesByDType TransformerModel::weight_bytes_by_dtype() const {
  BytesByDType b{};
  for (const auto& spec : layer_specs) {
    for (const auto& w : spec.weights) b[static_cast<std::size_t>(w.dtype)] += w.bytes();
  }
  for (const auto& w : top_weights()) b[static_cast<std::size_t>(w.dtype)] += w.bytes();
  return b;
}

std::uint64_t TransformerModel::weight_bytes() const {
  std::uint64_t n = 0;
  for (auto b : weight_bytes_by_dtype()) n += b;
  return n;
}

BytesByDType TransformerModel::layer_weight_bytes_by_dtype(std::uint32_t layer) const {
  BytesByDType b{};
  for (const auto& w : layer_specs.at(layer).weights) b[static_cast<std::size_t>(w.dtype)] += w.bytes();
  return b;
}

std::uint64_t TransformerModel::layer_weight_bytes(std::uint32_t layer) const {
  std::uint64_t n = 0;
  for (const auto& w : layer_specs.at(layer).weights) n += w.bytes();
  return n;
}

std::uint64_t TransformerModel::kv_values_per_token_per_layer() const {
  if (attention == AttentionKind::mla) return static_cast<std::uint64_t>(kv_lora_rank) + qk_rope_head_dim;
  return 2ULL * kv_heads * head_dim;
}

std::uint64_t TransformerModel::kv_bytes_per_token_per_layer() const {
  return bytes_of(kv_values_per_token_per_layer(), kv_dtype);
}

std::uint64_t TransformerModel::kv_bytes_per_token() const { return layers * kv_bytes_per_token_per_layer(); }

std::uint64_t TransformerModel::kv_tokens(std::uint32_t layer, std::uint64_t context_tokens) const {
  const std::uint32_t w = layer_specs.at(layer).window_tokens;
  return w == 0 ? context_tokens : std::min<std::uint64_t>(context_tokens, w);
}

std::uint64_t TransformerModel::kv_bytes(std::uint64_t context_tokens) const {
  // Called for every admission and KV transfer of a serving run: the layers' windows
  // read straight from the specs (kv_tokens, without its bounds check).
  if (layer_specs.size() < layers) throw std::out_of_range("kv_bytes: fewer layer specs than layers");
  std::uint64_t tokens = 0;
  for (std::uint32_t l = 0; l < layers; ++l) {
    const std::uint32_t w = layer_specs[l].window_tokens;
    tokens += w == 0 ? context_tokens : std::min<std::uint64_t>(context_tokens, w);
  }
  return tokens * kv_bytes_per_token_per_layer();
}

bool TransformerModel::has_sliding_layers() const {
  return std::any_of(layer_specs.begin(), layer_specs.end(),
                     [](const LayerSpec& s) { return s.window_tokens > 0; });
}

std::uint64_t TransformerModel::layer_linear_flops_per_token() const {
  std::uint64_t macs = 0;
  for (const auto& spec : layer_specs) {
    for (const auto& w : spec.weights) {
      if (w.is_gemm()) macs += active_of(w, *this);
    }
  }
  return 2 * macs;
}

std::uint64_t TransformerModel::lm_head_flops_per_token() const {
  return 2ULL * hidden * vocab;  // tied or not, the head is a hidden x vocab GEMM
}

std::uint64_t TransformerModel::linear_flops_per_token() const {
  return layer_linear_flops_per_token() + lm_head_flops_per_token();
}

std::uint64_t TransformerModel::attention_flops_per_key(std::uint32_t /*layer*/, bool decode) const {
  const std::uint64_t h = heads;
  if (attention == AttentionKind::mla) {
    // Prefill decompresses K and V (qk = nope + rope, v = v_head_dim per head). Decode
    // works on the cached latent with the up-projections absorbed into q and the output:
    // scores over kv_lora_rank + rope, values of kv_lora_rank.
    if (decode) return 2 * h * (2ULL * kv_lora_rank + qk_rope_head_dim);
    return 2 * h * (static_cast<std::uint64_t>(qk_nope_head_dim) + qk_rope_head_dim + v_head_dim);
  }
  return 2 * h * 2ULL * head_dim;  // QK^T and PV, head_dim each
}

std::uint64_t causal_keys(std::uint64_t chunk, std::uint64_t offset, std::uint32_t window) {
  // Query at position p sees keys 0..p (p + 1 of them), at most `window`.
  const auto tri = [](std::uint64_t n) { return n * (n + 1) / 2; };  // sum of 1..n
  const std::uint64_t end = offset + chunk;  // positions offset..end-1 see offset+1..end keys
  if (window == 0 || end <= window) return tri(end) - tri(offset);
  if (offset >= window) return chunk * window;
  return (tri(window) - tri(offset)) + (end - window) * window;
}

std::uint64_t TransformerModel::prefill_attention_flops(std::uint64_t chunk, std::uint64_t offset) const {
  std::uint64_t f = 0;
  for (std::uint32_t l = 0; l < layers; ++l) {
    f += causal_keys(chunk, offset, layer_specs[l].window_tokens) * attention_flops_per_key(l, false);
  }
  return f;
}

std::uint64_t TransformerModel::decode_attention_flops(std::uint64_t context_tokens) const {
  std::uint64_t f = 0;
  for (std::uint32_t l = 0; l < layers; ++l)
    f += kv_tokens(l, context_tokens) * attention_flops_per_key(l, true);
  return f;
}

// ---------------------------------------------------------------------------------------
// Reading a config.json

namespace {

enum class Family { llama, qwen3, mixtral, qwen3_moe, deepseek_v3, gpt_oss };

DType read_dtype(config::Section& s, std::string_view key, std::string_view doc, std::string_view def) {
  return s.enumeration<DType>(key, {.doc = doc, .def = def},
                              {{"fp32", DType::fp32},
                               {"bf16", DType::bf16},
                               {"fp16", DType::fp16},
                               {"fp8", DType::fp8},
                               {"mxfp4", DType::mxfp4}});
}

constexpr double kMaxLayers = 4096;

std::uint32_t u32(config::Section& s, std::string_view key, std::string_view doc) {
  return static_cast<std::uint32_t>(s.integer(key, {.doc = doc, .min = 1, .max = 1e9}));
}

void add_gqa_attention(TransformerModel& m, LayerSpec& L) {
  const std::uint64_t h = m.hidden, q = static_cast<std::uint64_t>(m.heads) * m.head_dim,
                      kv = static_cast<std::uint64_t>(m.kv_heads) * m.head_dim;
  const DType lin = m.linear_dtype, other = m.weight_dtype;
  L.weights.push_back({"input_layernorm", WeightRole::norm, 1, h, 1, other});
  L.weights.push_back({"self_attn.q_proj", WeightRole::attention, h, q, 1, lin});
  L.weights.push_back({"self_attn.k_proj", WeightRole::attention, h, kv, 1, lin});
  L.weights.push_back({"self_attn.v_proj", WeightRole::attention, h, kv, 1, lin});
  if (m.attention_bias) {
    L.weights.push_back({"self_attn.q_proj.bias", WeightRole::bias, 1, q, 1, other});
    L.weights.push_back({"self_attn.k_proj.bias", WeightRole::bias, 1, kv, 1, other});
    L.weights.push_back({"self_attn.v_proj.bias", WeightRole::bias, 1, kv, 1, other});
  }
  if (m.qk_norm) {
    L.weights.push_back({"self_attn.q_norm", WeightRole::norm, 1, m.head_dim, 1, other});
    L.weights.push_back({"self_attn.k_norm", WeightRole::norm, 1, m.head_dim, 1, other});
  }
  if (m.attention_sinks) L.weights.push_back({"self_attn.sinks", WeightRole::sink, 1, m.heads, 1, other});
  L.weights.push_back({"self_attn.o_proj", WeightRole::attention, q, h, 1, lin});
  if (m.attention_bias) L.weights.push_back({"self_attn.o_proj.bias", WeightRole::bias, 1, h, 1, other});
  L.weights.push_back({"post_attention_layernorm", WeightRole::norm, 1, h, 1, other});
}

void add_mla_attention(TransformerModel& m, LayerSpec& L) {
  const std::uint64_t h = m.hidden, H = m.heads;
  const std::uint64_t qk = static_cast<std::uint64_t>(m.qk_nope_head_dim) + m.qk_rope_head_dim;
  const DType lin = m.linear_dtype, other = m.weight_dtype;
  L.weights.push_back({"input_layernorm", WeightRole::norm, 1, h, 1, other});
  if (m.q_lora_rank > 0) {
    L.weights.push_back({"self_attn.q_a_proj", WeightRole::attention, h, m.q_lora_rank, 1, lin});
    L.weights.push_back({"self_attn.q_a_layernorm", WeightRole::norm, 1, m.q_lora_rank, 1, other});
    L.weights.push_back({"self_attn.q_b_proj", WeightRole::attention, m.q_lora_rank, H * qk, 1, lin});
  } else {
    L.weights.push_back({"self_attn.q_proj", WeightRole::attention, h, H * qk, 1, lin});
  }
  L.weights.push_back({"self_attn.kv_a_proj_with_mqa", WeightRole::attention, h,
                       static_cast<std::uint64_t>(m.kv_lora_rank) + m.qk_rope_head_dim, 1, lin});
  L.weights.push_back({"self_attn.kv_a_layernorm", WeightRole::norm, 1, m.kv_lora_rank, 1, other});
  L.weights.push_back({"self_attn.kv_b_proj", WeightRole::attention, m.kv_lora_rank,
                       H * (static_cast<std::uint64_t>(m.qk_nope_head_dim) + m.v_head_dim), 1, lin});
  L.weights.push_back({"self_attn.o_proj", WeightRole::attention, H * m.v_head_dim, h, 1, lin});
  L.weights.push_back({"post_attention_layernorm", WeightRole::norm, 1, h, 1, other});
}

void add_dense_mlp(TransformerModel& m, LayerSpec& L, std::uint64_t width) {
  const std::uint64_t h = m.hidden;
  L.mlp = MlpKind::dense;
  L.weights.push_back({"mlp.gate_proj", WeightRole::mlp, h, width, 1, m.linear_dtype});
  L.weights.push_back({"mlp.up_proj", WeightRole::mlp, h, width, 1, m.linear_dtype});
  L.weights.push_back({"mlp.down_proj", WeightRole::mlp, width, h, 1, m.linear_dtype});
}

void add_moe(TransformerModel& m, LayerSpec& L, bool router_bias, bool score_bias) {
  const std::uint64_t h = m.hidden, I = m.expert_intermediate;
  const std::uint32_t E = m.experts;
  L.mlp = MlpKind::moe;
  L.weights.push_back({"mlp.gate", WeightRole::router, h, E, 1, m.weight_dtype});
  if (router_bias) L.weights.push_back({"mlp.router.bias", WeightRole::bias, 1, E, 1, m.weight_dtype});
  if (score_bias)
    L.weights.push_back({"mlp.gate.e_score_correction_bias", WeightRole::bias, 1, E, 1, m.weight_dtype});
  L.weights.push_back({"mlp.experts.gate_proj", WeightRole::routed_expert, h, I, E, m.expert_dtype});
  L.weights.push_back({"mlp.experts.up_proj", WeightRole::routed_expert, h, I, E, m.expert_dtype});
  L.weights.push_back({"mlp.experts.down_proj", WeightRole::routed_expert, I, h, E, m.expert_dtype});
  if (m.expert_bias) {
    L.weights.push_back({"mlp.experts.gate_up_proj_bias", WeightRole::bias, 1, 2 * I, E, m.weight_dtype});
    L.weights.push_back({"mlp.experts.down_proj_bias", WeightRole::bias, 1, h, E, m.weight_dtype});
  }
  if (m.shared_experts > 0) {
    const std::uint64_t S = static_cast<std::uint64_t>(m.shared_experts) * I;
    L.weights.push_back({"mlp.shared_experts.gate_proj", WeightRole::shared_expert, h, S, 1, m.linear_dtype});
    L.weights.push_back({"mlp.shared_experts.up_proj", WeightRole::shared_expert, h, S, 1, m.linear_dtype});
    L.weights.push_back({"mlp.shared_experts.down_proj", WeightRole::shared_expert, S, h, 1, m.linear_dtype});
  }
}

// Parameter, byte and FLOP counts are 64-bit integers. Each dimension is checked on its
// own (at most 1e9), but their products can still pass 2^64 and wrap around to a small,
// wrong figure. The weights (the largest count; FLOPs per token are at most twice the
// parameters) are summed in floating point and a description beyond 2^62 values is
// refused, leaving headroom for bytes (x4 for fp32) and sums of the counts.
void check_counts_fit(const TransformerModel& m, config::Section& s) {
  long double values = 0;
  const auto add = [&](const std::vector<WeightTensor>& ws) {
    for (const auto& w : ws) values += static_cast<long double>(w.rows) * w.cols * w.copies;
  };
  for (const auto& spec : m.layer_specs) add(spec.weights);
  for (const auto& spec : m.mtp_layers) add(spec.weights);
  add(m.top_weights());
  constexpr long double kLimit = 4611686018427387904.0L;  // 2^62
  if (values > kLimit) {
    std::ostringstream os;
    os << "the model would have about " << static_cast<double>(values)
       << " weights, more than 64-bit counts hold (limit 2^62); check hidden_size, intermediate_size, "
          "vocab_size, num_hidden_layers and the expert counts";
    s.fail("hidden_size", os.str());
  }
}

}  // namespace

TransformerModel read_transformer(config::Section& s) {
  TransformerModel m;
  m.name = s.string("name", {.doc = "model name shown in results", .def = "model"});
  m.model_type = s.string("model_type", {.doc = "Hugging Face model_type: decides the architecture family"});
  Family fam{};
  if (m.model_type == "llama")
    fam = Family::llama;
  else if (m.model_type == "qwen3")
    fam = Family::qwen3;
  else if (m.model_type == "mixtral")
    fam = Family::mixtral;
  else if (m.model_type == "qwen3_moe")
    fam = Family::qwen3_moe;
  else if (m.model_type == "deepseek_v3")
    fam = Family::deepseek_v3;
  else if (m.model_type == "gpt_oss")
    fam = Family::gpt_oss;
  else {
    s.fail("model_type", "'" + m.model_type +
                             "' is not a supported architecture; supported: llama, qwen3, "
                             "mixtral, qwen3_moe, deepseek_v3, gpt_oss");
  }

  // Every layer gets its own weight list, so the count bounds memory and time: published
  // models have at most a few hundred layers; 1e9 would allocate gigabytes before any check.
  m.layers = static_cast<std::uint32_t>(
      s.integer("num_hidden_layers", {.doc = "decoder layers", .min = 1, .max = kMaxLayers}));
  m.max_position_embeddings = static_cast<std::uint64_t>(
      s.integer("max_position_embeddings", {.doc = "the context window in tokens: a request whose prompt and "
                                                   "output exceed it is refused (0: unchecked)",
                                            .def = "0",
                                            .min = 0,
                                            .max = 4294967296.0}));
  m.hidden = u32(s, "hidden_size", "model width");
  m.heads = u32(s, "num_attention_heads", "query heads");
  m.kv_heads = static_cast<std::uint32_t>(
      s.integer("num_key_value_heads", {.doc = "key/value heads (GQA); defaults to the query heads",
                                        .def = std::to_string(m.heads),
                                        .min = 1,
                                        .max = m.heads}));
  if (m.heads % m.kv_heads != 0) {
    s.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(m.heads) + ")");
  }
  m.intermediate = u32(s, "intermediate_size", "dense MLP width (gpt-oss: expert width)");
  m.vocab = u32(s, "vocab_size", "vocabulary size");
  m.tied_embeddings =
      s.boolean("tie_word_embeddings", {.doc = "LM head shares the embedding", .def = "false"});

  // Quantization as published: DeepSeek-V3 stores its decoder linear layers in fp8
  // (e4m3, 128x128 blocks), gpt-oss its experts in mxfp4 except modules_to_not_convert.
  std::string quant = "none";
  bool attention_unconverted = true, experts_unconverted = true;
  if (auto q = s.optional_section("quantization_config", "how the published checkpoint is quantized")) {
    quant = q->string("quant_method", {.doc = "quantization method (fp8, mxfp4)"});
    if (quant != "fp8" && quant != "mxfp4") {
      q->fail("quant_method", "'" + quant + "' is not supported; supported: fp8, mxfp4");
    }
    attention_unconverted = experts_unconverted = false;
    if (q->has("modules_to_not_convert")) {
      for (const auto& mod : q->string_list("modules_to_not_convert", {.doc = "modules kept in bf16"})) {
        if (mod.find("self_attn") != std::string::npos) attention_unconverted = true;
        if (mod.find("experts") != std::string::npos) experts_unconverted = true;
      }
    }
  }
  m.weight_dtype =
      read_dtype(s, "weight_dtype",
                 "storage type of weights not named by linear_weight_dtype or expert_weight_dtype "
                 "(embedding, LM head, norms, router, biases)",
                 "bf16");
  const char* wd = to_string(m.weight_dtype);
  const char* lin_def = quant == "fp8" ? "fp8" : (quant == "mxfp4" && !attention_unconverted ? "mxfp4" : wd);
  m.linear_dtype = read_dtype(s, "linear_weight_dtype",
                              "storage type of attention projections, dense MLPs and shared experts "
                              "(default: as quantization_config, else weight_dtype)",
                              lin_def);
  const char* exp_def =
      quant == "fp8" ? "fp8"
                     : (quant == "mxfp4" && !experts_unconverted ? "mxfp4" : to_string(m.linear_dtype));
  m.expert_dtype = read_dtype(s, "expert_weight_dtype",
                              "storage type of routed-expert matrices (default: as quantization_config, "
                              "else linear_weight_dtype)",
                              exp_def);
  m.kv_dtype = read_dtype(s, "kv_dtype", "storage type of the KV cache", "bf16");
  if (m.kv_dtype == DType::mxfp4)
    s.fail("kv_dtype", "mxfp4 is a weight format; the KV cache must be fp32, bf16, fp16 or fp8");
  m.activation_dtype =
      read_dtype(s, "activation_dtype", "storage type of activations between operators", "bf16");
  if (m.activation_dtype == DType::mxfp4)
    s.fail("activation_dtype", "mxfp4 is a weight format, not an activation type");

  // Attention.
  if (fam == Family::deepseek_v3) {
    m.attention = AttentionKind::mla;
    m.kv_heads = m.heads;  // after decompression every head has its own K and V
    m.q_lora_rank = static_cast<std::uint32_t>(
        s.has("q_lora_rank")
            ? s.integer("q_lora_rank",
                        {.doc = "rank of the query down-projection (MLA)", .min = 1, .max = 1e9})
            : 0);
    m.kv_lora_rank = u32(s, "kv_lora_rank", "rank of the compressed KV latent (MLA)");
    m.qk_nope_head_dim =
        u32(s, "qk_nope_head_dim", "per-head query/key width without rotary embedding (MLA)");
    m.qk_rope_head_dim = u32(s, "qk_rope_head_dim", "per-head rotary query/key width, shared key part (MLA)");
    m.v_head_dim = u32(s, "v_head_dim", "per-head value width (MLA)");
    m.head_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
    if (s.boolean("attention_bias", {.doc = "linear biases in attention", .def = "false"})) {
      s.fail("attention_bias", "attention biases are not supported with multi-head latent attention");
    }
  } else {
    if (s.has("head_dim")) {
      m.head_dim = u32(s, "head_dim", "width of one attention head");
    } else {
      if (m.hidden % m.heads != 0)
        s.fail("hidden_size", "is not a multiple of num_attention_heads; give head_dim");
      m.head_dim = m.hidden / m.heads;
    }
    m.attention_bias = s.boolean("attention_bias", {.doc = "linear biases on Q, K, V and O", .def = "false"});
    m.qk_norm = fam == Family::qwen3 || fam == Family::qwen3_moe;
    m.attention_sinks = fam == Family::gpt_oss;
  }
  if (fam == Family::llama && s.boolean("mlp_bias", {.doc = "linear biases in the MLP", .def = "false"})) {
    s.fail("mlp_bias", "MLP biases are not supported for llama models");
  }

  // Per-layer attention windows.
  std::vector<std::uint32_t> window(m.layers, 0);
  if (fam == Family::gpt_oss) {
    const auto w = static_cast<std::uint32_t>(s.integer(
        "sliding_window", {.doc = "tokens a sliding-window layer attends to", .min = 1, .max = 1e9}));
    const auto types = s.string_list("layer_types", {.doc = "sliding_attention or full_attention per layer"});
    if (types.size() != m.layers) {
      s.fail("layer_types", "has " + std::to_string(types.size()) + " entries; num_hidden_layers is " +
                                std::to_string(m.layers));
    }
    for (std::uint32_t l = 0; l < m.layers; ++l) {
      if (types[l] == "sliding_attention")
        window[l] = w;
      else if (types[l] != "full_attention") {
        s.fail("layer_types", "entry " + std::to_string(l) + " is '" + types[l] +
                                  "'; allowed: sliding_attention, full_attention");
      }
    }
  } else if (fam == Family::mixtral && s.has("sliding_window")) {
    const auto w = static_cast<std::uint32_t>(
        s.integer("sliding_window", {.doc = "window of every layer (null = full)", .min = 1, .max = 1e9}));
    std::fill(window.begin(), window.end(), w);
  } else if ((fam == Family::qwen3 || fam == Family::qwen3_moe) &&
             s.boolean("use_sliding_window", {.doc = "Qwen sliding-window attention", .def = "false"})) {
    s.fail("use_sliding_window", "Qwen3 sliding-window attention is not supported");
  }

  // Mixture of experts.
  std::vector<bool> moe(m.layers, false);
  bool router_bias = false, score_bias = false;
  switch (fam) {
    case Family::llama:
    case Family::qwen3:
      break;
    case Family::mixtral:
    case Family::gpt_oss:
      m.experts = u32(s, "num_local_experts", "routed experts per layer");
      m.experts_per_token = static_cast<std::uint32_t>(s.integer(
          "num_experts_per_tok", {.doc = "experts each token is routed to", .min = 1, .max = m.experts}));
      m.expert_intermediate = m.intermediate;
      m.expert_bias = router_bias = fam == Family::gpt_oss;
      std::fill(moe.begin(), moe.end(), true);
      break;
    case Family::qwen3_moe: {
      m.experts = u32(s, "num_experts", "routed experts per MoE layer");
      m.experts_per_token = static_cast<std::uint32_t>(s.integer(
          "num_experts_per_tok", {.doc = "experts each token is routed to", .min = 1, .max = m.experts}));
      m.expert_intermediate = u32(s, "moe_intermediate_size", "width of one expert");
      const auto step = s.integer("decoder_sparse_step",
                                  {.doc = "every step-th layer is MoE", .def = "1", .min = 1, .max = 1e6});
      std::vector<std::int64_t> dense_layers;
      if (s.has("mlp_only_layers")) {
        dense_layers = s.integer_list(
            "mlp_only_layers",
            {.doc = "layers with a dense MLP", .min = 0, .max = static_cast<double>(m.layers) - 1});
      }
      for (std::uint32_t l = 0; l < m.layers; ++l) {
        moe[l] = (l + 1) % step == 0 &&
                 std::find(dense_layers.begin(), dense_layers.end(), l) == dense_layers.end();
      }
      break;
    }
    case Family::deepseek_v3: {
      m.experts = u32(s, "n_routed_experts", "routed experts per MoE layer");
      m.experts_per_token = static_cast<std::uint32_t>(s.integer(
          "num_experts_per_tok", {.doc = "experts each token is routed to", .min = 1, .max = m.experts}));
      m.expert_intermediate = u32(s, "moe_intermediate_size", "width of one expert");
      m.shared_experts = static_cast<std::uint32_t>(
          s.integer("n_shared_experts", {.doc = "always-used experts", .def = "0", .min = 0, .max = 1e6}));
      const auto first_dense =
          s.integer("first_k_dense_replace",
                    {.doc = "leading layers with a dense MLP", .def = "0", .min = 0, .max = m.layers});
      const auto freq = s.integer(
          "moe_layer_freq",
          {.doc = "every freq-th layer after the dense ones is MoE", .def = "1", .min = 1, .max = 1e6});
      for (std::uint32_t l = 0; l < m.layers; ++l) moe[l] = l >= first_dense && l % freq == 0;
      score_bias = s.string("topk_method", {.doc = "expert selection (noaux_tc adds a score-correction bias)",
                                            .def = "greedy"}) == "noaux_tc";
      break;
    }
  }

  const auto make_layer = [&](std::uint32_t l, bool is_moe) {
    LayerSpec L;
    L.window_tokens = window.empty() ? 0 : window[l];
    if (m.attention == AttentionKind::mla)
      add_mla_attention(m, L);
    else
      add_gqa_attention(m, L);
    if (is_moe)
      add_moe(m, L, router_bias, score_bias);
    else
      add_dense_mlp(m, L, m.intermediate);
    return L;
  };
  for (std::uint32_t l = 0; l < m.layers; ++l) m.layer_specs.push_back(make_layer(l, moe[l]));

  // DeepSeek-V3 multi-token prediction: kept apart; it drafts extra tokens (speculative
  // decoding) and is not part of the standard forward pass.
  if (fam == Family::deepseek_v3) {
    const auto mtp = s.integer("num_nextn_predict_layers",
                               {.doc = "MTP modules (counted separately)", .def = "0", .min = 0, .max = 16});
    for (std::int64_t i = 0; i < mtp; ++i) {
      LayerSpec L = make_layer(m.layers - 1, true);  // the MTP block is a MoE decoder layer
      L.mtp = true;
      const std::uint64_t h = m.hidden;
      L.weights.push_back({"enorm", WeightRole::norm, 1, h, 1, m.weight_dtype});
      L.weights.push_back({"hnorm", WeightRole::norm, 1, h, 1, m.weight_dtype});
      L.weights.push_back({"eh_proj", WeightRole::mlp, 2 * h, h, 1, m.weight_dtype});
      L.weights.push_back({"shared_head.norm", WeightRole::norm, 1, h, 1, m.weight_dtype});
      L.weights.push_back({"shared_head.head", WeightRole::lm_head, h, m.vocab, 1, m.weight_dtype});
      L.weights.push_back({"embed_tokens", WeightRole::embedding, m.vocab, h, 1, m.weight_dtype});
      m.mtp_layers.push_back(std::move(L));
    }
  }
  check_counts_fit(m, s);
  return m;
}

}  // namespace wse::workloads
