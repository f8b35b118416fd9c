// The serving policy: how requests are routed, batched and admitted.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "systemc_models/config/config.h"

namespace wse::serving {

enum class Placement {
  // Prefill on one pool of machines, decode on another; the KV cache crosses a KvPath.
  disaggregated,
  // Each machine does both (prefill first when it has any, then decode steps); the KV
  // cache stays where it was made.
  colocated,
};

enum class KvSend {
  layerwise,      // each layer's KV leaves as soon as that layer of the last chunk is done
  after_prefill,  // the whole KV leaves after the prefill ends
};

enum class Routing {
  round_robin,      // request i goes to prefill instance i mod P
  least_loaded,     // the instance with the fewest prompt tokens queued or running
  prefix_affinity,  // the instance whose prefix cache holds most of the prompt (ties: least loaded)
};

// What a request whose decode system failed does to get its KV cache back.
enum class Failover {
  // The prefill instance sends the prompt's KV again if it still holds it (see
  // prefill_kv_hold) and recomputes only the KV of the tokens generated so far;
  // otherwise as reprefill.
  resend_kv,
  // The prefill instance recomputes the KV of the prompt and the generated tokens.
  reprefill,
};

// The order in which requests waiting for decode KV capacity are admitted
// (docs/serving.md). The first in the order is admitted first; while it does not fit,
// nothing behind it is (no request overtakes another).
enum class Admission {
  fcfs,            // by arrival
  shortest_first,  // fewest tokens the scheduler knows of (prompt + output under oracle, prompt under
                   // unknown); ties by arrival
  priority,        // lowest workloads::Request::priority first; ties by arrival
};

// What admission knows of a request's output length.
enum class OutputLength {
  // Every output length is known in advance: a request reserves the KV of its whole
  // context (prompt + all outputs) when admitted, and nothing is ever preempted.
  oracle,
  // Output lengths are discovered as tokens are generated: a request reserves the KV of
  // its context so far and grows it token by token; when a decode system runs out, the
  // last in admission order is preempted (serving.preemption).
  unknown,
};

// What a preempted request gives up (output_length unknown).
enum class Preemption {
  recompute,  // its KV is dropped; the prefill side recomputes prompt + generated tokens and sends it again
  swap,       // its KV is copied to host memory (swap_bandwidth) and back when there is room again
};

// Decode system `system` fails at `start_s` (its running and waiting requests lose their
// KV) and comes back empty at `end_s` (< 0: it does not come back). An entry of a run's
// fault schedule (`faults:`, kind decode_system_down), given to the ServingSystem beside
// its ServingConfig.
struct DecodeOutage {
  unsigned system = 0;
  double start_s = 0;
  double end_s = -1;
};

// A tier of KV memory below the decode machine's own (SRAM on a CS-3, HBM on Trainium),
// to which a session's retained KV is evicted and from which a returning turn reloads
// it (docs/serving.md, "KV retention between turns").
struct KvTier {
  std::uint64_t capacity_bytes = 0;  // per decode system
  double bandwidth_Bps = 0;          // between the tier and the decode machine, each way
};

// Speculative decoding (serving.speculative, docs/serving.md "Speculative decoding"):
// each decode step, a draft model on the decode machine proposes `tokens` tokens one
// single-token pass at a time, then the target verifies them in one forward of tokens + 1
// tokens per request. Drafted position i (1-based) is accepted with probability
// acceptance[i - 1] given that the positions before it were; the step emits the accepted
// tokens and one more (the target's correction, or its bonus token when all are accepted).
struct Speculative {
  std::uint32_t tokens = 1;        // k: tokens drafted per step
  std::vector<double> acceptance;  // per drafted position, size k (a fixed alpha: all equal)
  std::uint64_t seed = 1;          // of the acceptance draws (filled from experiment.seed)
  // Closed form of the tokens a step emits on average (Leviathan et al. 2023):
  // 1 + sum_{i=1..k} prod_{j<=i} acceptance[j-1]; (1 - a^(k+1)) / (1 - a) for a fixed a.
  [[nodiscard]] double expected_tokens_per_step() const;
};

struct ServingConfig {
  Placement placement = Placement::disaggregated;
  unsigned prefill_instances = 1;
  unsigned decode_systems = 1;
  Routing routing = Routing::round_robin;
  // Prompt tokens one prefill batch may hold, and the chunk a long prompt is cut into
  // (0 = whole prompts; a prompt larger than the batch budget then runs alone).
  std::uint32_t prefill_max_batch_tokens = 8192;
  std::uint32_t prefill_chunk_tokens = 0;
  // Requests one decode step may hold (the KV capacity limits it further).
  std::uint32_t decode_max_batch = 64;
  KvSend kv_send = KvSend::layerwise;
  // Layers whose KV travels as one message in layer-wise sending.
  std::uint32_t kv_layers_per_message = 1;
  bool prefix_reuse = false;
  std::uint64_t prefix_cache_blocks = 0;  // per prefill instance, 512-token blocks
  std::uint32_t prefix_block_tokens = 512;
  double ttft_slo_s = 0.0;  // 0 = no target
  double tpot_slo_s = 0.0;
  // Recovery from decode-system failures (docs/faults.md).
  Failover failover = Failover::resend_kv;
  double prefill_kv_hold_s =
      0.0;  // the prefill side keeps a request's KV this long after its prefill (0 = until it ends)
  double reject_after_s =
      0.0;  // a request waiting this long with no decode system up is rejected (0 = never)
  Admission admission = Admission::fcfs;
  OutputLength output_length = OutputLength::oracle;
  Preemption preemption = Preemption::recompute;
  double swap_bandwidth_Bps = 64e9;  // decode machine <-> host memory, each way, for preemption by swap
  // Sessions: a decode machine keeps a session's KV after each turn, evicting the least
  // recently used when an admission needs the room; a later turn admitted where its
  // session's KV is sends (colocated: prefills) only the KV the machine lacks.
  bool kv_retention = true;
  std::optional<KvTier> host_tier;  // serving.kv_tiers.host_dram (none: evicted KV is dropped)
  // serving.speculative (none: one token per request per decode step). Its draft_model is
  // read by the experiment (it places the draft on the decode machines).
  std::optional<Speculative> speculative;

  // Filled by the system from the model and hardware, not from the serving section.
  std::uint32_t layers = 1;
  std::function<std::uint64_t(std::uint64_t tokens)> kv_bytes;  // KV of a context of `tokens`
  std::uint64_t decode_kv_capacity_bytes = 0;                   // per decode system
};

// Reads `serving:` (everything except the fields the system fills).
ServingConfig read_serving_config(config::Section& s);
// Reads `serving.speculative:` but its draft_model (tokens, and acceptance or
// acceptance_by_position: exactly one). Bad values fail at their key.
Speculative read_speculative(config::Section& s);

}  // namespace wse::serving
