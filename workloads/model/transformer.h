// Transformer architectures as described by a Hugging Face config.json, with the
// sizes every model of the system needs (weights, KV cache per token).
#pragma once

#include <cstdint>
#include <string>

#include "systemc_models/config/config.h"

namespace wse::workloads {

enum class DType { fp32, bf16, fp16, fp8 };

std::uint32_t bytes_per_value(DType t);
const char* to_string(DType t);

struct TransformerModel {
  std::string name;
  std::uint32_t layers = 0;             // num_hidden_layers
  std::uint32_t hidden = 0;             // hidden_size
  std::uint32_t heads = 0;              // num_attention_heads
  std::uint32_t kv_heads = 0;           // num_key_value_heads (GQA)
  std::uint32_t head_dim = 0;           // head_dim, or hidden / heads
  std::uint32_t intermediate = 0;       // intermediate_size (gated MLP: 3 matrices)
  std::uint32_t vocab = 0;              // vocab_size
  bool tied_embeddings = false;         // tie_word_embeddings
  DType weight_dtype = DType::bf16;
  DType kv_dtype = DType::bf16;

  // Parameters of one decoder layer: Q, K, V, O projections, gated MLP, two norms.
  [[nodiscard]] std::uint64_t layer_parameters() const;
  // All parameters: layers, embedding, final norm, LM head (unless tied).
  [[nodiscard]] std::uint64_t parameters() const;
  [[nodiscard]] std::uint64_t weight_bytes() const;
  // K and V of every layer for one token: 2 x layers x kv_heads x head_dim x bytes.
  [[nodiscard]] std::uint64_t kv_bytes_per_token() const;
  [[nodiscard]] std::uint64_t kv_bytes_per_token_per_layer() const;
  // Forward FLOPs of one token excluding attention over the context (2 per MAC).
  [[nodiscard]] std::uint64_t linear_flops_per_token() const;
};

// Reads `model:` (usually a Hugging Face config.json included as it is, plus
// `weight_dtype` / `kv_dtype` overrides).
TransformerModel read_transformer(config::Section& model);

}  // namespace wse::workloads
