#include "workloads/model/reference_models.h"

#include <string_view>

#include "systemc_models/config/config.h"

namespace wse::workloads {

namespace {

constexpr std::string_view kLlama8B = R"(model:
  name: Llama-3.1-8B
  model_type: llama
  hidden_size: 4096
  intermediate_size: 14336
  num_attention_heads: 32
  num_hidden_layers: 32
  num_key_value_heads: 8
  vocab_size: 128256
  tie_word_embeddings: false
)";
constexpr std::string_view kLlama70B = R"(model:
  name: Llama-3.1-70B
  model_type: llama
  hidden_size: 8192
  intermediate_size: 28672
  num_attention_heads: 64
  num_hidden_layers: 80
  num_key_value_heads: 8
  vocab_size: 128256
  tie_word_embeddings: false
)";

// Qwen3-32B (Qwen/Qwen3-32B config.json): GQA with per-head q/k norms, head_dim 128.
constexpr std::string_view kQwen32B = R"(model:
  name: Qwen3-32B
  model_type: qwen3
  hidden_size: 5120
  intermediate_size: 25600
  num_attention_heads: 64
  num_hidden_layers: 64
  num_key_value_heads: 8
  head_dim: 128
  vocab_size: 151936
  tie_word_embeddings: false
)";
// Llama-3.1-405B (meta-llama/Meta-Llama-3.1-405B config.json).
constexpr std::string_view kLlama405B = R"(model:
  name: Llama-3.1-405B
  model_type: llama
  hidden_size: 16384
  intermediate_size: 53248
  num_attention_heads: 128
  num_hidden_layers: 126
  num_key_value_heads: 8
  vocab_size: 128256
  tie_word_embeddings: false
)";

TransformerModel model_of(std::string_view yaml, std::string_view name) {
  auto doc = config::parse(yaml, name);
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  TransformerModel t = read_transformer(m);
  doc.finish();
  return t;
}

}  // namespace

TransformerModel llama31_8b() { return model_of(kLlama8B, "llama-3.1-8b"); }
TransformerModel llama31_70b() { return model_of(kLlama70B, "llama-3.1-70b"); }
TransformerModel qwen3_32b() { return model_of(kQwen32B, "qwen3-32b"); }
TransformerModel llama31_405b() { return model_of(kLlama405B, "llama-3.1-405b"); }

}  // namespace wse::workloads
