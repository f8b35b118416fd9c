// The serving system: requests arrive, are routed to prefill machines, batched and
// prefilled; their KV cache crosses to a decode machine (disaggregated) or stays
// (colocated); decode machines run continuous batching until every request has its
// tokens. Machines are busy exactly as long as their backends say; the KV path is
// simulated concurrently with everything else, so transfers contend with each other.
//
// Token accounting: the prefill of a request produces its first output token (TTFT is
// the end of its last prefill chunk); each decode step gives every request in the
// batch one more token. A request admitted to a decode machine reserves the KV of its
// whole context (prompt + all output tokens) there, so a running batch never runs out
// of memory and nothing is preempted; requests wait, in order, for room.
//
// Faults (ServingConfig::decode_outages, docs/faults.md): a decode system that fails
// loses the KV of its running and waiting requests (and the step in progress); each is
// sent back to its prefill instance, which resends or recomputes its KV for another
// decode system. A request is never dropped: it ends completed or rejected with a
// reason (no decode system up for serving.reject_after, or none up when the run ended).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "systemc_models/stats/stats.h"
#include "systemc_models/trace/trace.h"
#include "workloads/serving/backends.h"
#include "workloads/serving/prefix_cache.h"
#include "workloads/serving/serving_config.h"
#include "workloads/trace/request_trace.h"

namespace wse::serving {

// What happened to one request; times in simulated seconds (-1 = did not happen).
struct RequestRecord {
  double arrival_s = -1;
  double prefill_start_s = -1;  // its first chunk starts
  double first_token_s = -1;    // its last chunk ends
  double kv_start_s = -1;       // first KV byte leaves (disaggregated)
  double kv_end_s = -1;         // all KV in place at the decode machine
  double decode_start_s = -1;   // joins a decode batch
  double last_token_s = -1;
  std::uint32_t tokens_out = 0;
  std::uint32_t prefix_hit_tokens = 0;
  int prefill_instance = -1;
  int decode_system = -1;
  std::uint64_t kv_bytes = 0;  // KV bytes moved (with any sent again after a fault)
  // Terminal state: completed (last_token_s >= 0) or rejected (rejected_s >= 0, reason).
  double rejected_s = -1;
  std::string reason;
  // Fault bookkeeping.
  std::uint32_t reroutes = 0;    // moved off a failed decode system
  std::uint32_t reprefills = 0;  // the prefill side recomputed the prompt's KV
  std::uint32_t kv_resends = 0;  // the prefill side sent the prompt's KV it held again
  std::uint64_t tokens_recomputed = 0;
  std::uint64_t kv_bytes_resent = 0;

  bool completed() const { return last_token_s >= 0; }
  bool rejected() const { return rejected_s >= 0; }
  const char* state() const { return completed() ? "completed" : rejected() ? "rejected" : "unfinished"; }
};

class ServingSystem : public sc_core::sc_module, public stats::Provider {
 public:
  // `prefill[i]` and `decode[j]` are the machines; in colocated placement prefill[i]
  // and decode[i] are the same machine. `kv_path` is required when disaggregated.
  ServingSystem(const sc_core::sc_module_name& name, const ServingConfig& config,
                std::vector<workloads::Request> requests, std::vector<PrefillBackend*> prefill,
                std::vector<DecodeBackend*> decode, KvPath* kv_path, trace::Writer* trace = nullptr);

  const stats::Group& stats() const override { return stats_; }
  const std::vector<workloads::Request>& requests() const { return requests_; }
  const std::vector<RequestRecord>& records() const { return records_; }
  // Called (with the simulated time and the requests ended so far) each time a request
  // completes or is rejected: `wse-emu run`'s progress line on a terminal.
  void on_request_end(std::function<void(double, std::uint64_t)> f) { on_end_ = std::move(f); }
  std::uint64_t completed() const { return completed_; }
  std::uint64_t rejected() const { return rejected_; }
  std::uint64_t decode_failures() const { return decode_failures_; }
  // Call once after the simulation has ended: a request still waiting then (for a
  // decode system that never came back) is rejected with that reason, so every request
  // ends in a terminal state.
  void close_run();
  // Simulated time at which the last request finished.
  double end_s() const { return end_s_; }

 private:
  struct PrefillState {
    std::deque<std::uint64_t> queue;  // requests with prompt left, FIFO
    std::uint64_t queued_tokens = 0;
    sc_core::sc_event work;
    std::unique_ptr<PrefixCache> cache;
    stats::Utilization* busy = nullptr;
    trace::TrackId track = 0;
  };
  struct DecodeState {
    std::deque<std::uint64_t> ready;   // KV in place, waiting for a batch slot
    std::vector<std::uint64_t> running;
    std::uint64_t reserved_bytes = 0;
    bool up = true;
    std::uint64_t epoch = 0;  // failures so far: work begun in an older epoch was lost
    sc_core::sc_event work;
    sc_core::sc_event failed;
    stats::Utilization* busy = nullptr;
    trace::TrackId track = 0;
  };

  void arrivals();
  void prefill_machine(unsigned i);
  void decode_machine(unsigned j);
  void colocated_machine(unsigned i);
  // Runs one prefill batch on instance i; returns true if it ran anything.
  bool run_prefill_batch(unsigned i);
  bool run_decode_step(unsigned j);
  // Disaggregated: reserves room on a decode system and sends the KV of `r`.
  // `recovery`: the KV is sent again after a decode system failed.
  void send_kv(std::uint64_t r, double batch_start_s, PrefillTiming timing, bool recovery);
  // The decode system with room for r (-1: rejected, no decode system came up in time).
  int reserve_decode(std::uint64_t r);
  // Waits until the prefill batch of r has ended and been accounted (its first token).
  void wait_prefill_end(std::uint64_t r, double batch_end_s);
  void outage(DecodeOutage o);
  // Every request completed or rejected: the run has ended.
  bool all_done() const { return completed_ + rejected_ == requests_.size(); }
  // Waits until simulated time t_s, unless the run ends first; false if it did (then
  // nothing scheduled for later happens, and the simulation does not run on to it).
  bool wait_until_unless_done(double t_s);
  void fail_decode(unsigned j);
  // Sends r, whose decode system failed, back to its prefill instance (docs/faults.md).
  void recover(std::uint64_t r);
  void reject(std::uint64_t r, std::string reason);
  void finish_prefill(std::uint64_t r, unsigned instance);
  void finish_request(std::uint64_t r);
  unsigned route(std::uint64_t r);

  const ServingConfig config_;
  std::vector<workloads::Request> requests_;
  std::vector<RequestRecord> records_;
  std::vector<std::uint32_t> prompt_left_;  // prompt tokens not yet prefilled
  std::vector<std::uint32_t> prompt_done_;  // prompt tokens whose KV exists
  std::vector<std::uint64_t> kv_tokens_;    // tokens whose KV send_kv moves (prompt, + generated in recovery)
  std::vector<std::uint8_t> recovering_;    // queued for prefill to rebuild KV lost with a decode system
  std::vector<std::uint8_t> waiting_decode_;  // in reserve_decode
  std::vector<std::uint8_t> in_prefill_;      // in a prefill batch that has not ended
  sc_core::sc_event prefill_done_;            // a prefill batch ended
  std::vector<PrefillBackend*> prefill_;
  std::vector<DecodeBackend*> decode_;
  KvPath* kv_path_;
  trace::Writer* trace_;
  std::vector<PrefillState> pf_;
  std::vector<DecodeState> dc_;
  sc_core::sc_event room_freed_;  // a decode system released KV capacity
  sc_core::sc_event all_done_;    // the last request completed or was rejected
  std::function<void(double, std::uint64_t)> on_end_;
  bool closing_ = false;          // in close_run(), after the simulation
  unsigned next_round_robin_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t rejected_ = 0;
  std::uint64_t decode_failures_ = 0;
  double end_s_ = 0;

  stats::Group stats_;
  stats::Distribution& ttft_;
  stats::Distribution& tpot_;
  stats::Distribution& e2e_;
  stats::Distribution& kv_time_;
  stats::Distribution& decode_batch_;
  stats::Distribution& prefill_batch_tokens_;
  stats::Counter& kv_bytes_;
  stats::Counter& output_tokens_;
  stats::Counter& prefix_hit_tokens_;
};

}  // namespace wse::serving
