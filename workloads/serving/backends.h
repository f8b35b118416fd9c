// What the serving layer asks of the machines. The hardware models implement these
// (the Trainium instance, the CS-3 systems, the EFA network); tests use small doubles.
// Backends are called from SystemC threads of the serving system and return simulated
// durations; the serving system advances simulated time by them, so machines are busy
// exactly as long as their model says.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace wse::serving {

// One piece of prefill work: `tokens` prompt tokens of one request, starting at
// position `context_offset` of its prompt (chunked prefill runs a long prompt as
// several such chunks; earlier chunks' KV is already in place).
struct PrefillChunk {
  std::uint64_t request = 0;
  std::uint32_t tokens = 0;
  std::uint32_t context_offset = 0;
};

struct PrefillTiming {
  double seconds = 0.0;              // the whole batch, start to end
  std::vector<double> layer_done_s;  // per layer: when its output is ready, from the start
  // A pipelined machine (prefill pipeline stages) takes its next batch into its first stage
  // while this one is in later stages: it may begin the next batch this long after the
  // start (below `seconds`). Negative: once this batch has ended (every other machine).
  double next_batch_s = -1.0;
};

class PrefillBackend {
 public:
  virtual ~PrefillBackend() = default;
  virtual PrefillTiming prefill(const std::vector<PrefillChunk>& batch) = 0;
};

// The two parts of a speculative decode step (docs/serving.md, "Speculative decoding").
struct SpeculativeTiming {
  double draft_s = 0.0;   // the draft model's draft_tokens single-token passes, one after another
  double verify_s = 0.0;  // the target's one pass of draft_tokens + 1 tokens per request
};

class DecodeBackend {
 public:
  virtual ~DecodeBackend() = default;
  // One decode step of a batch: one new token for each request, whose context lengths
  // (prompt + tokens generated so far) are given. Returns the step's duration.
  virtual double step(const std::vector<std::uint32_t>& context_lengths) = 0;
  // A speculative step of the same batch: the draft model (placed on this machine) runs
  // `draft_tokens` decode steps, the i-th (from 0) over contexts + i, then the target
  // verifies draft_tokens + 1 tokens per request over its context. Only a machine built
  // with a draft model implements it.
  virtual SpeculativeTiming speculative_step(const std::vector<std::uint32_t>& context_lengths,
                                             std::uint32_t draft_tokens) {
    (void)context_lengths;
    (void)draft_tokens;
    throw std::logic_error("serving: this decode machine has no draft model for speculative decoding");
  }
};

// Moves KV-cache bytes from a prefill instance to a decode system. Blocks the calling
// SystemC thread until the bytes are in place at the destination.
class KvPath {
 public:
  virtual ~KvPath() = default;
  virtual void transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) = 0;
  // The KV of layers first_layer..last_layer (inclusive), `bytes` in all. A decode system
  // whose layers live on several machines (a pipeline of wafers) sends each layer's share
  // to the machine holding that layer; by default the layers go as one transfer.
  // `request` names the request the KV belongs to (for timelines).
  virtual void transfer_layers(unsigned prefill_instance, unsigned decode_system, std::uint32_t first_layer,
                               std::uint32_t last_layer, std::uint64_t bytes, std::uint64_t request) {
    (void)first_layer;
    (void)last_layer;
    (void)request;
    transfer(prefill_instance, decode_system, bytes);
  }
};

}  // namespace wse::serving
