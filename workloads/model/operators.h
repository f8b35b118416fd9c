// Lowering a forward pass of a batch to operators: what the Trainium and wafer models
// execute. A batch is a list of sequences, each bringing `new_tokens` tokens at context
// position `offset` (prefill chunk: c tokens at o; decode step: 1 token at the request's
// context length). GEMMs of all sequences are batched (M = total new tokens); attention
// is one operator per sequence and layer.
//
// Conventions (docs/workloads.md has the details):
//  - flops: matrix FLOPs (2 per multiply-accumulate) of GEMMs and attention (QK^T, PV);
//    vector_ops: element operations of norms, activations, softmax, residual adds, RoPE.
//  - bytes are for all `count` instances of the operator together.
//  - Expert routing is uniform: the T x k token-expert assignments of a layer are spread
//    evenly, so floor(Tk/E) or floor(Tk/E)+1 tokens per expert; experts that get no token
//    read no weights.
//  - KV cache: the new tokens' K/V are written by the attention operator; it then reads
//    every cached token it attends to (a sliding layer keeps and reads at most `window`).
//  - MLA: prefill decompresses K/V with kv_b_proj over the cached + new latents; decode
//    attends in the latent space with kv_b_proj absorbed (two batched per-head GEMMs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "workloads/model/transformer.h"

namespace wse::workloads {

enum class OpKind {
  embedding,       // token-row gather from the embedding table
  norm,            // RMSNorm over `elements` values
  gemm,            // [M x K] x [K x N], `count` independent instances (experts, heads)
  rope,            // rotary position embedding on q and k
  attention,       // one sequence: softmax(QK^T)V, causal within the chunk
  activation,      // SwiGLU: silu(gate) * up
  router,          // expert scores: softmax / top-k over experts
  expert_combine,  // weighted sum of the k expert outputs of each token
  residual_add,
};
const char* to_string(OpKind k);
bool parse_op_kind(std::string_view s, OpKind& out);

struct Operator {
  OpKind kind = OpKind::gemm;
  std::string name;         // weight or step name, e.g. "self_attn.q_proj", "mlp.experts.gate_proj"
  std::int32_t layer = -1;  // decoder layer; -1 before the first layer / after the last
  std::uint32_t count = 1;  // identical instances (experts with the same token count, heads)

  // gemm
  std::uint64_t m = 0, k = 0, n = 0;
  // attention
  std::uint32_t sequence = 0;  // index of the sequence in the batch
  std::uint32_t q_heads = 0, kv_heads = 0;
  std::uint32_t qk_head_dim = 0, v_head_dim = 0;
  std::uint64_t query_len = 0;       // new tokens of this sequence
  std::uint64_t kv_len = 0;          // keys the last query attends to
  std::uint64_t context_offset = 0;  // position of the first query
  std::uint32_t window = 0;          // sliding window (0 = full attention)
  bool sinks = false;                // gpt-oss attention sinks (one extra logit per head)
  // elementwise operators: values processed
  std::uint64_t elements = 0;

  DType weight_dtype = DType::bf16;
  DType activation_dtype = DType::bf16;

  // Costs (totals over `count`).
  std::uint64_t flops = 0;
  std::uint64_t vector_ops = 0;
  std::uint64_t weight_bytes = 0;
  std::uint64_t input_bytes = 0;   // activations read
  std::uint64_t output_bytes = 0;  // activations written
  std::uint64_t kv_read_bytes = 0;
  std::uint64_t kv_write_bytes = 0;

  [[nodiscard]] std::uint64_t bytes() const {
    return weight_bytes + input_bytes + output_bytes + kv_read_bytes + kv_write_bytes;
  }
  bool operator==(const Operator&) const = default;
};

struct Sequence {
  std::uint64_t new_tokens = 0;  // tokens computed in this pass
  std::uint64_t offset = 0;      // tokens already in the KV cache
  bool logits = true;            // the last new token goes through the LM head
  // Every new token goes through the LM head (with `logits`): a speculative verification
  // pass, which needs the target's distribution at each drafted position.
  bool logits_all = false;
  bool operator==(const Sequence&) const = default;
};

struct OperatorGraph {
  std::string phase;  // "prefill", "decode" or "mixed"
  std::vector<Sequence> sequences;
  std::vector<Operator> ops;  // in execution order, layer by layer

  [[nodiscard]] std::uint64_t total_flops() const;
  [[nodiscard]] std::uint64_t total_vector_ops() const;
  [[nodiscard]] std::uint64_t total_weight_bytes() const;
  [[nodiscard]] std::uint64_t total_kv_read_bytes() const;
  [[nodiscard]] std::uint64_t total_kv_write_bytes() const;
  [[nodiscard]] std::uint64_t total_bytes() const;
  bool operator==(const OperatorGraph&) const = default;
};

// Any batch (prefill chunks and decode steps may be mixed).
OperatorGraph lower(const TransformerModel& model, const std::vector<Sequence>& batch);

// Prefill chunks: chunk_tokens[i] tokens of prompt i at offsets[i] (empty offsets = whole
// prompts from 0); a chunk produces logits when it ends its prompt (prompt_tokens[i] given,
// or always when prompt_tokens is empty).
OperatorGraph lower_prefill(const TransformerModel& model, const std::vector<std::uint64_t>& chunk_tokens,
                            const std::vector<std::uint64_t>& offsets = {},
                            const std::vector<std::uint64_t>& prompt_tokens = {});
// One decode step: one new token per running request with context_tokens[i] tokens cached.
OperatorGraph lower_decode(const TransformerModel& model, const std::vector<std::uint64_t>& context_tokens);
// A speculative verification pass (docs/serving.md, "Speculative decoding"): per running
// request with context_tokens[i] tokens cached, draft_tokens + 1 new tokens (its last token
// and the drafted ones) at that offset, every one through the LM head. The GEMMs have
// M = requests x (draft_tokens + 1); attention covers the context and the new tokens,
// causal among them.
OperatorGraph lower_verify(const TransformerModel& model, const std::vector<std::uint64_t>& context_tokens,
                           std::uint32_t draft_tokens);

// Tensor parallelism's split of a projection: row-parallel (o_proj, down_proj: the input
// features split, the partial outputs all-reduced), or column-parallel (every other GEMM).
bool row_parallel(const Operator& op);
// ops[from, to) with each run of column-parallel GEMMs of the same input, one after
// another (q, k, v; gate, up: same m, k, dtypes, one copy each), fused into one GEMM
// named "a+b+...", as serving software fuses them.
std::vector<Operator> fuse_projections(const std::vector<Operator>& ops, std::size_t from, std::size_t to);

}  // namespace wse::workloads
