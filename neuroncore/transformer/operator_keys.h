// Keys of everything that decides an operator's time on a given configuration: the reuse
// cache of the transformer mapping (prefill.h) is keyed by them, and two operators or
// decode attention batches of equal keys take the same time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "systemc_models/sim/key_writer.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

using sim::KeyWriter;  // systemc_models/sim/key_writer.h

// Key of everything that decides an operator's time on a given configuration.
std::string operator_key(const workloads::Operator& op);
// Key of a batched decode attention: the shape of the first operator and the sorted key
// counts (kv_len) with the KV bytes of every sequence; the order of the sequences and
// their positions do not change the kernel's time.
std::string decode_attention_key(const std::vector<workloads::Operator>& sequences);
// A decode attention operator: one query token of one sequence.
bool is_decode_attention(const workloads::Operator& op);
// KV bytes of one key of one kv head: what the operator reads from the cache (MLA decode
// reads one latent per key for both K and V), or K and V of the head dims when the
// operator names none.
std::uint64_t kv_bytes_per_key(const workloads::Operator& op);
// Everything of two operators but their layer is equal: the two decide the same time
// (their operator_key / decode_attention_key would be equal).
bool same_but_layer(const workloads::Operator& a, const workloads::Operator& b);
// `b` joins the decode attention batch that `a` starts: same layer and shape.
bool same_decode_batch(const workloads::Operator& a, const workloads::Operator& b);

}  // namespace wse::neuron
