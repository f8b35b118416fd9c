#include "workloads/model/transformer.h"

namespace wse::workloads {

std::uint32_t bytes_per_value(DType t) {
  switch (t) {
    case DType::fp32: return 4;
    case DType::bf16:
    case DType::fp16: return 2;
    case DType::fp8: return 1;
  }
  return 2;
}

const char* to_string(DType t) {
  switch (t) {
    case DType::fp32: return "fp32";
    case DType::bf16: return "bf16";
    case DType::fp16: return "fp16";
    case DType::fp8: return "fp8";
  }
  return "?";
}

std::uint64_t TransformerModel::layer_parameters() const {
  const std::uint64_t h = hidden;
  const std::uint64_t q = h * heads * head_dim;
  const std::uint64_t kv = 2 * h * kv_heads * head_dim;
  const std::uint64_t o = static_cast<std::uint64_t>(heads) * head_dim * h;
  const std::uint64_t mlp = 3 * h * intermediate;  // gate, up, down
  const std::uint64_t norms = 2 * h;
  return q + kv + o + mlp + norms;
}

std::uint64_t TransformerModel::parameters() const {
  const std::uint64_t embed = static_cast<std::uint64_t>(vocab) * hidden;
  return layers * layer_parameters() + embed + hidden + (tied_embeddings ? 0 : embed);
}

std::uint64_t TransformerModel::weight_bytes() const { return parameters() * bytes_per_value(weight_dtype); }

std::uint64_t TransformerModel::kv_bytes_per_token_per_layer() const {
  return 2ULL * kv_heads * head_dim * bytes_per_value(kv_dtype);
}

std::uint64_t TransformerModel::kv_bytes_per_token() const {
  return layers * kv_bytes_per_token_per_layer();
}

std::uint64_t TransformerModel::linear_flops_per_token() const {
  const std::uint64_t embed = static_cast<std::uint64_t>(vocab) * hidden;
  return 2 * (layers * (layer_parameters() - 2ULL * hidden) + embed);
}

TransformerModel read_transformer(config::Section& s) {
  // Architectures this reader cannot size correctly are refused, not approximated.
  for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts", "kv_lora_rank"}) {
    if (s.has(key)) {
      s.fail(key, "mixture-of-experts and latent-attention models are not supported by this "
                  "version's model reader; use a dense model (Llama-3.1, Qwen3 dense)");
    }
  }
  TransformerModel m;
  m.name = s.string("name", {.doc = "model name shown in results", .def = "model"});
  const auto u32 = [&](std::string_view key, std::string_view doc) {
    return static_cast<std::uint32_t>(s.integer(key, {.doc = doc, .min = 1, .max = 1e9}));
  };
  m.layers = u32("num_hidden_layers", "decoder layers");
  m.hidden = u32("hidden_size", "model width");
  m.heads = u32("num_attention_heads", "query heads");
  m.kv_heads = static_cast<std::uint32_t>(
      s.integer("num_key_value_heads", {.doc = "key/value heads (GQA); defaults to the query heads",
                                        .def = std::to_string(m.heads), .min = 1, .max = m.heads}));
  if (m.heads % m.kv_heads != 0) {
    s.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(m.heads) + ")");
  }
  if (s.has("head_dim")) {
    m.head_dim = u32("head_dim", "width of one attention head");
  } else {
    if (m.hidden % m.heads != 0) s.fail("hidden_size", "is not a multiple of num_attention_heads; give head_dim");
    m.head_dim = m.hidden / m.heads;
  }
  m.intermediate = u32("intermediate_size", "MLP width");
  m.vocab = u32("vocab_size", "vocabulary size");
  m.tied_embeddings = s.boolean("tie_word_embeddings", {.doc = "LM head shares the embedding", .def = "false"});
  const auto dtype = [&](std::string_view key, std::string_view doc, std::string_view def) {
    return s.enumeration<DType>(key, {.doc = doc, .def = def},
                                {{"fp32", DType::fp32}, {"bf16", DType::bf16},
                                 {"fp16", DType::fp16}, {"fp8", DType::fp8}});
  };
  m.weight_dtype = dtype("weight_dtype", "storage type of the weights", "bf16");
  m.kv_dtype = dtype("kv_dtype", "storage type of the KV cache", "bf16");
  return m;
}

}  // namespace wse::workloads
