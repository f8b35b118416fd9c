// Transformer architectures as described by a Hugging Face config.json, with the
// sizes every model of the system needs: weight bytes per dtype, total and active
// parameters, KV-cache bytes for a context, FLOPs per token and attention FLOPs.
//
// Families (dispatched on `model_type`):
//   llama, qwen3         dense decoder, grouped-query attention (Qwen3: per-head q/k norms)
//   mixtral, qwen3_moe   GQA + mixture-of-experts MLP (Qwen3-MoE: decoder_sparse_step,
//                        mlp_only_layers)
//   deepseek_v3          multi-head latent attention (MLA), first_k_dense_replace dense
//                        layers then routed + shared experts; optional MTP layer
//   gpt_oss              GQA with attention biases and sinks, alternating 128-token
//                        sliding-window / full attention (layer_types), biased experts
// Every model is described by one list of weight tensors per layer (`LayerSpec`); all
// counts (parameters, bytes, FLOPs) and the operator lowering are sums over that list,
// so they cannot disagree with each other.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "systemc_models/config/config.h"

namespace wse::workloads {

// Storage types. mxfp4 (OCP Microscaling): 32 4-bit values share one 8-bit scale,
// 17 bytes per 32 values = 4.25 bits per value.
enum class DType { fp32, bf16, fp16, fp8, mxfp4 };
inline constexpr std::size_t kDTypeCount = 5;

// Whole bytes per value; mxfp4 has none (4.25 bits) and raises std::invalid_argument.
std::uint32_t bytes_per_value(DType t);
double bits_per_value(DType t);
// Bytes that `values` values occupy (mxfp4: whole 32-value blocks, rounded up).
std::uint64_t bytes_of(std::uint64_t values, DType t);
const char* to_string(DType t);

enum class AttentionKind { gqa, mla };
enum class MlpKind { dense, moe };

// What a weight tensor is for; decides whether a token uses it and how it is lowered.
enum class WeightRole {
  embedding,      // token embedding table (a row lookup per token, not a GEMM)
  lm_head,        // output projection to the vocabulary
  attention,      // Q/K/V/O and MLA down/up projections (GEMM)
  mlp,            // dense gated MLP (GEMM)
  shared_expert,  // DeepSeek shared experts: used by every token (GEMM)
  routed_expert,  // one tensor per expert: `copies` experts, `experts_per_token` used (GEMM)
  router,         // expert gate (GEMM, small)
  norm,           // RMSNorm scale vectors
  bias,           // linear-layer biases, expert score-correction bias
  sink,           // gpt-oss attention sink logits (one per head)
};
const char* to_string(WeightRole r);

// One weight tensor. GEMM tensors are `rows` = input features (K) x `cols` = output
// features (N); vectors have rows = 1. `copies` > 1 for routed experts (one per expert).
struct WeightTensor {
  std::string name;
  WeightRole role = WeightRole::attention;
  std::uint64_t rows = 1;
  std::uint64_t cols = 0;
  std::uint32_t copies = 1;
  DType dtype = DType::bf16;

  [[nodiscard]] std::uint64_t parameters() const { return rows * cols * copies; }
  [[nodiscard]] std::uint64_t bytes() const { return copies * bytes_of(rows * cols, dtype); }
  [[nodiscard]] bool is_gemm() const;
};

struct LayerSpec {
  MlpKind mlp = MlpKind::dense;
  std::uint32_t window_tokens = 0;  // sliding-window length; 0 = full attention
  bool mtp = false;                 // DeepSeek multi-token-prediction layer (not in the main stack)
  std::vector<WeightTensor> weights;
};

// Bytes per dtype (index = DType).
using BytesByDType = std::array<std::uint64_t, kDTypeCount>;

struct TransformerModel {
  std::string name;
  std::string model_type;                     // Hugging Face model_type
  std::uint32_t layers = 0;                   // num_hidden_layers (the main stack, without MTP)
  std::uint64_t max_position_embeddings = 0;  // the context window in tokens (0: not given)
  std::uint32_t hidden = 0;                   // hidden_size
  std::uint32_t heads = 0;                    // num_attention_heads
  std::uint32_t kv_heads = 0;                 // num_key_value_heads (GQA); MLA: = heads
  std::uint32_t head_dim = 0;                 // head_dim or hidden / heads (GQA)
  std::uint32_t intermediate = 0;             // intermediate_size (dense MLP width)
  std::uint32_t vocab = 0;                    // vocab_size
  bool tied_embeddings = false;               // tie_word_embeddings
  DType weight_dtype = DType::bf16;           // everything not named below
  DType linear_dtype = DType::bf16;           // attention projections, dense MLP, shared experts
  DType expert_dtype = DType::bf16;           // routed-expert matrices
  DType kv_dtype = DType::bf16;
  DType activation_dtype = DType::bf16;

  AttentionKind attention = AttentionKind::gqa;
  bool qk_norm = false;          // Qwen3 per-head RMSNorm on q and k
  bool attention_bias = false;   // gpt-oss
  bool attention_sinks = false;  // gpt-oss
  // MLA (DeepSeek-V3); q_lora_rank 0 = plain q projection.
  std::uint32_t q_lora_rank = 0;
  std::uint32_t kv_lora_rank = 0;
  std::uint32_t qk_nope_head_dim = 0;
  std::uint32_t qk_rope_head_dim = 0;
  std::uint32_t v_head_dim = 0;

  // Mixture of experts (0 experts = dense model).
  std::uint32_t experts = 0;            // routed experts per MoE layer
  std::uint32_t experts_per_token = 0;  // top-k
  std::uint32_t expert_intermediate = 0;
  std::uint32_t shared_experts = 0;  // DeepSeek n_shared_experts (of expert_intermediate)
  bool expert_bias = false;          // gpt-oss experts carry biases

  std::vector<LayerSpec> layer_specs;  // `layers` entries
  std::vector<LayerSpec> mtp_layers;   // DeepSeek num_nextn_predict_layers (not counted)

  // --- sizes ---------------------------------------------------------------------------
  // Embedding, final norm and LM head (unless tied); not per layer.
  [[nodiscard]] std::vector<WeightTensor> top_weights() const;
  // Parameters of decoder layer `layer` (default: layer 0).
  [[nodiscard]] std::uint64_t layer_parameters(std::uint32_t layer = 0) const;
  // All parameters of the main model (layers, embedding, final norm, LM head).
  [[nodiscard]] std::uint64_t parameters() const;
  // Parameters a token uses: all but the routed experts it is not sent to
  // (experts_per_token of experts). Embedding table included (the published convention of
  // Mixtral, Qwen3 and DeepSeek-V3); see also active_parameters_without_embedding().
  [[nodiscard]] std::uint64_t active_parameters() const;
  [[nodiscard]] std::uint64_t active_parameters_without_embedding() const;
  // The DeepSeek-V3 MTP module(s): decoder layer, its norms, eh_proj, and the embedding
  // and head copies the checkpoint stores with it.
  [[nodiscard]] std::uint64_t mtp_parameters() const;
  [[nodiscard]] std::uint64_t weight_bytes() const;
  [[nodiscard]] BytesByDType weight_bytes_by_dtype() const;
  [[nodiscard]] std::uint64_t layer_weight_bytes(std::uint32_t layer) const;
  [[nodiscard]] BytesByDType layer_weight_bytes_by_dtype(std::uint32_t layer) const;

  // --- KV cache -------------------------------------------------------------------------
  // Values cached per token by one layer: GQA 2 x kv_heads x head_dim; MLA the latent
  // kv_lora_rank + qk_rope_head_dim.
  [[nodiscard]] std::uint64_t kv_values_per_token_per_layer() const;
  [[nodiscard]] std::uint64_t kv_bytes_per_token_per_layer() const;
  // Bytes per token summed over layers as if every layer kept every token (the
  // full-attention bound; exact for models without sliding windows).
  [[nodiscard]] std::uint64_t kv_bytes_per_token() const;
  // Tokens layer `layer` holds for a context of n tokens: min(n, window) on sliding layers.
  [[nodiscard]] std::uint64_t kv_tokens(std::uint32_t layer, std::uint64_t context_tokens) const;
  // KV bytes of all layers for a context of n tokens.
  [[nodiscard]] std::uint64_t kv_bytes(std::uint64_t context_tokens) const;
  [[nodiscard]] bool has_sliding_layers() const;

  // --- FLOPs (2 per multiply-accumulate; biases, norms, activations not counted) ----------
  // GEMM FLOPs of one token in all decoder layers (active experts only).
  [[nodiscard]] std::uint64_t layer_linear_flops_per_token() const;
  [[nodiscard]] std::uint64_t lm_head_flops_per_token() const;
  // Decoder layers + LM head: the FLOPs of generating one token, excluding attention.
  [[nodiscard]] std::uint64_t linear_flops_per_token() const;
  // Query-key and probability-value FLOPs of one layer for one query over `keys` keys.
  [[nodiscard]] std::uint64_t attention_flops_per_key(std::uint32_t layer, bool decode) const;
  // Attention FLOPs (all layers) of a causal prefill chunk: `chunk` query tokens at
  // positions offset..offset+chunk-1, each attending to the keys up to itself (within the
  // window on sliding layers).
  [[nodiscard]] std::uint64_t prefill_attention_flops(std::uint64_t chunk, std::uint64_t offset = 0) const;
  // Attention FLOPs (all layers) of one decode token whose context (including itself) is
  // `context_tokens` long.
  [[nodiscard]] std::uint64_t decode_attention_flops(std::uint64_t context_tokens) const;
};

// Number of keys (summed over queries) a causal chunk attends to in one layer:
// sum over p in [offset, offset+chunk) of min(p + 1, window) (window 0 = unbounded).
std::uint64_t causal_keys(std::uint64_t chunk, std::uint64_t offset, std::uint32_t window);

// Reads `model:` (a Hugging Face config.json included as it is, plus `name` and dtype
// choices: weight_dtype, linear_weight_dtype, expert_weight_dtype, kv_dtype,
// activation_dtype). Unsupported model_type -> ConfigError.
TransformerModel read_transformer(config::Section& model);

}  // namespace wse::workloads
