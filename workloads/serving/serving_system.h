// The serving system: requests arrive, are routed to prefill machines, batched and
// prefilled; their KV cache crosses to a decode machine (disaggregated) or stays
// (colocated); decode machines run continuous batching until every request has its
// tokens. Machines are busy exactly as long as their backends say; the KV path is
// simulated concurrently with everything else, so transfers contend with each other.
//
// Token accounting: the prefill of a request produces its first output token (TTFT is
// the end of its last prefill chunk); each decode step gives every request in the
// batch one more token.
//
// Admission (docs/serving.md): requests waiting for KV capacity on the decode side are
// admitted in the order of serving.admission (fcfs: by arrival); while the first in
// that order does not fit, no request behind it is admitted. With output_length oracle
// a request reserves the KV of its whole context (prompt + all output tokens), so a
// running batch never runs out of memory and nothing is preempted. With unknown it
// reserves the KV of its context so far (prompt + first token) and, before each step,
// of the token that step adds; when that does not fit, the running request last in
// admission order is preempted (serving.preemption: recompute on the prefill side, or
// swap to host memory), until it fits.
//
// Sessions (docs/serving.md, "Sessions"): a request that is a later turn of a session
// (Request::previous >= 0) arrives think_s after its previous turn's last token, closed
// loop; if the previous turn is rejected, so is it (and the rest of its session).
// With serving.kv_retention, a decode system keeps a session's KV after
// each turn (the prompt and every answer token but the last), in the KV room admission
// draws from: an admission that needs the room evicts the least recently used (to the
// host tier, serving.kv_tiers.host_dram, when there is one). A later turn prefers the
// decode system holding its session's KV (if it has room; otherwise it is a miss and
// that KV is dropped); admitted there, it sends only the KV the system lacks, and joins
// once its session's KV is back from the host tier and evicted KV has left for it.
// Colocated, a later turn goes to the machine holding its session's KV, which pins it
// until the turn is admitted; its prefill computes only the tokens after it.
//
// Faults (the constructor's decode_outages, docs/faults.md): a decode system that fails
// loses the KV of its running and waiting requests (and the step in progress); each is
// sent back to its prefill instance, which resends or recomputes its KV for another
// decode system. A request is never dropped: it ends completed or rejected with a
// reason (no decode system up for serving.reject_after, or none up when the run ended).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
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
  // Preemption for KV capacity (output_length unknown).
  std::uint32_t preemptions = 0;
  std::uint32_t swaps = 0;                      // of which by swap (the others recomputed)
  std::uint64_t preempt_tokens_recomputed = 0;  // prompt + generated tokens rebuilt after preemption
  std::uint64_t swap_bytes = 0;                 // KV bytes copied to host memory and back
  // KV retention between session turns (serving.kv_retention).
  std::uint64_t kv_retained_tokens =
      0;                             // its session's KV tokens its decode system held when it was admitted
  std::uint64_t kv_bytes_saved = 0;  // KV bytes not sent because its decode system held them
  double kv_reload_s = 0;            // its session's KV reloading from the host tier: start to end (0: none)

  bool completed() const { return last_token_s >= 0; }
  bool rejected() const { return rejected_s >= 0; }
  const char* state() const { return completed() ? "completed" : rejected() ? "rejected" : "unfinished"; }
};

// KV retention between session turns, over the run (docs/serving.md, "KV retention
// between turns"). A later turn admitted to a decode system is a hit (its session's KV
// is in the decode machine's memory), a host hit (in that system's host tier: it
// reloads) or a miss (nowhere, or on a system it was not admitted to).
struct RetentionCounts {
  std::uint64_t hits = 0;
  std::uint64_t host_hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t bytes_saved = 0;        // KV bytes the hits and host hits did not send
  std::uint64_t evictions = 0;          // sessions' KV evicted from a decode machine's memory for room
  std::uint64_t evicted_to_host = 0;    // of which kept in the host tier
  std::uint64_t host_evictions = 0;     // sessions' KV dropped from the host tier for room
  std::uint64_t host_write_bytes = 0;   // KV bytes evicted to the host tier
  std::uint64_t host_reload_bytes = 0;  // KV bytes reloaded from it
  std::uint64_t prefill_tokens_skipped =
      0;  // colocated: prompt tokens not prefilled (beyond the prefix cache)
};

// Speculative decoding over the run (serving.speculative): what the steps drafted,
// what the target accepted, and the time of the two parts of the steps.
struct SpeculativeCounts {
  std::uint64_t steps = 0;           // decode steps (each a draft and a verification pass)
  std::uint64_t verified = 0;        // request-steps: a request verified in a step
  std::uint64_t drafted = 0;         // drafted tokens verified (tokens per request-step)
  std::uint64_t accepted = 0;        // of which the target accepted
  std::uint64_t emitted_tokens = 0;  // tokens the steps emitted (accepted + 1, clipped to the output length)
  double draft_s = 0;                // the draft passes of every step, summed over decode machines
  double verify_s = 0;               // the verification passes
};

class ServingSystem : public sc_core::sc_module, public stats::Provider {
 public:
  // `prefill[i]` and `decode[j]` are the machines; in colocated placement prefill[i]
  // and decode[i] are the same machine. `kv_path` is required when disaggregated.
  // `decode_outages`: the decode-system failures of the run's fault schedule (given
  // beside the configuration, not in it; disaggregated only).
  ServingSystem(const sc_core::sc_module_name& name, const ServingConfig& config,
                std::vector<workloads::Request> requests, std::vector<PrefillBackend*> prefill,
                std::vector<DecodeBackend*> decode, KvPath* kv_path, trace::Writer* trace = nullptr,
                const std::vector<DecodeOutage>& decode_outages = {});

  const stats::Group& stats() const override { return stats_; }
  const std::vector<workloads::Request>& requests() const { return requests_; }
  const std::vector<RequestRecord>& records() const { return records_; }
  // Called (with the simulated time and the requests ended so far) each time a request
  // completes or is rejected: `wse-emu run`'s progress line on a terminal.
  void on_request_end(std::function<void(double, std::uint64_t)> f) { on_end_ = std::move(f); }
  std::uint64_t completed() const { return completed_; }
  std::uint64_t rejected() const { return rejected_; }
  std::uint64_t decode_failures() const { return decode_failures_; }
  std::uint64_t preemptions() const { return preemptions_.value(); }
  // Inter-token latency: the gap before each token after a request's first, over every
  // such token emitted in the run.
  const stats::Distribution& itl() const { return itl_; }
  // Keep every token's emission time (call before the simulation): token_times()[r]
  // lists request r's, the first token's first (`wse-emu run --token-times`).
  void record_token_times(bool on) {
    record_token_times_ = on;
    token_times_.assign(on ? requests_.size() : 0, {});
  }
  const std::vector<std::vector<double>>& token_times() const { return token_times_; }
  // Call once after the simulation has ended: a request still waiting then (for a
  // decode system that never came back) is rejected with that reason, so every request
  // ends in a terminal state.
  void close_run();
  // Simulated time at which the last request finished.
  double end_s() const { return end_s_; }
  const RetentionCounts& retention() const { return retention_; }
  // The sessions whose KV was evicted from a decode machine's memory, in eviction order.
  const std::vector<std::int64_t>& evicted_sessions() const { return evicted_sessions_; }
  const SpeculativeCounts& speculative() const { return spec_; }

 private:
  struct PrefillState {
    std::deque<std::uint64_t> queue;  // requests with prompt left, FIFO
    std::uint64_t queued_tokens = 0;
    sc_core::sc_event work;
    std::unique_ptr<PrefixCache> cache;
    double busy_until_s = 0;  // the last batch begun ends then (pipelined batches overlap)
    stats::Utilization* busy = nullptr;
    trace::TrackId track = 0;
  };
  struct DecodeState {
    std::deque<std::uint64_t> ready;  // KV in place, waiting for a batch slot; in admission order
    std::vector<std::uint64_t> running;
    std::uint64_t reserved_bytes = 0;
    double swap_s = 0;  // swap traffic the next step waits for (preemption by swap)
    bool up = true;
    std::uint64_t epoch = 0;  // failures so far: work begun in an older epoch was lost
    // Sessions' retained KV (kv_retention): in the machine's memory and in its host
    // tier, most recently used first.
    std::list<std::int64_t> kept;
    std::list<std::int64_t> host;
    std::uint64_t kept_bytes = 0;
    std::uint64_t host_bytes = 0;
    double host_out_free_s = 0;  // the host tier's link is busy each way until then
    double host_in_free_s = 0;
    sc_core::sc_event work;
    sc_core::sc_event failed;
    stats::Utilization* busy = nullptr;
    trace::TrackId track = 0;
  };

  void arrivals();
  // Sessions: a later turn arrives its think time after its previous turn's last token
  // (scheduled by finish_request); later_turns() releases them in time order.
  void later_turns();
  void schedule_next_turn(std::uint64_t r);
  // r arrives now: routed to a prefill instance (prefix cache looked up) and queued.
  void arrive(std::uint64_t r);
  void prefill_machine(unsigned i);
  void decode_machine(unsigned j);
  void colocated_machine(unsigned i);
  // Runs one prefill batch on instance i; returns true if it ran anything. A pipelined
  // machine (PrefillTiming::next_batch_s) returns once it may take the next batch, and the
  // batch ends later (end_prefill_batch).
  bool run_prefill_batch(unsigned i);
  void end_prefill_batch(unsigned i, const std::vector<PrefillChunk>& batch,
                         const std::vector<std::uint64_t>& finishing,
                         const std::vector<std::uint8_t>& rebuilt, double start, double seconds,
                         std::uint32_t tokens);
  bool run_decode_step(unsigned j);
  // Disaggregated: reserves room on a decode system and sends the KV of `r`.
  // `recovery`: the KV is sent again after a decode system failed.
  void send_kv(std::uint64_t r, double batch_start_s, PrefillTiming timing, bool recovery);
  // The decode system with room for r, admitted in serving.admission order (-1:
  // rejected, no decode system came up in time; or `bound` >= 0, the only system r may
  // use, is down).
  int reserve_decode(std::uint64_t r, int bound = -1);
  // r comes before q in admission order.
  bool admitted_before(std::uint64_t r, std::uint64_t q) const;
  // KV bytes r reserves when admitted (output_length oracle: its whole context).
  std::uint64_t admission_bytes(std::uint64_t r) const;
  // Output length unknown: reserves the KV each running request's next token adds on
  // decode system j, preempting the last in admission order while it does not fit.
  void grow_kv(unsigned j);
  void preempt(std::uint64_t r, unsigned j);
  // r waits on decode system j for a batch slot (colocated: and for room).
  void make_ready(unsigned j, std::uint64_t r);
  // Disaggregated swap: r's KV, in decode system j's host memory, comes back once r is
  // admitted there again.
  void swap_back(std::uint64_t r, unsigned j);
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
  // KV retention (sessions, disaggregated, serving.kv_retention).
  bool retains(std::uint64_t r) const;
  // r, just admitted to decode system j: takes its session's retained KV (a hit if it
  // is on j) and evicts others' until j's reservations and retained KV fit.
  void admit_retained(std::uint64_t r, unsigned j);
  // r ended on decode system j: j keeps its session's KV.
  void retain(std::uint64_t r, unsigned j);
  // Evicts the least recently used retained KV of j until its reservations, its retained
  // KV and `extra` fit; returns when the evicted KV has left for the host tier.
  double make_room(unsigned j, std::uint64_t extra);
  void forget(std::int64_t session);  // drops its retained KV, wherever it is
  // Colocated: r arrives on machine i, which may hold its session's KV: pinned for r
  // (reserved until r is admitted), its prefill skips those tokens. Returns when r may
  // join the prefill queue (after a reload from the host tier).
  double pin_retained(std::uint64_t r, unsigned i);
  void queue_prefill(std::uint64_t r, unsigned i);
  // Speculative decoding: draws how many of the step's drafted tokens the target accepts
  // and returns the tokens the step gives the request (accepted + 1, not yet clipped).
  std::uint32_t speculate(const Speculative& sp);

  const ServingConfig config_;
  std::vector<workloads::Request> requests_;
  std::vector<RequestRecord> records_;
  std::vector<std::uint32_t> prompt_left_;      // prompt tokens not yet prefilled
  std::vector<std::uint32_t> prompt_done_;      // prompt tokens whose KV exists
  std::vector<std::uint32_t> prompt_inflight_;  // prompt tokens in batches not yet ended (of prompt_left_)
  std::vector<std::uint64_t> kv_tokens_;  // tokens whose KV send_kv moves (prompt, + generated in recovery)
  std::vector<std::uint8_t>
      recovering_;  // queued for prefill to rebuild KV: lost with a decode system (1) or preempted (2)
  std::vector<std::uint64_t> held_;       // KV bytes reserved on its decode system
  std::vector<std::uint8_t> swapped_;     // colocated: its KV is in host memory, to come back when admitted
  std::vector<double> last_token_at_;     // when its latest token was emitted
  std::vector<std::uint64_t> ready_seq_;  // when it last became ready, as a sequence number
  std::uint64_t next_ready_seq_ = 0;
  std::vector<std::uint64_t> waiting_;   // disaggregated: in reserve_decode, in admission order
  std::uint64_t bound_waiting_ = 0;      // of which bound to one decode system (swapped out)
  std::vector<std::int64_t> next_turn_;  // the next turn of its session (-1: none)
  using DueTurn = std::pair<std::uint64_t, std::uint64_t>;  // (arrival time in simulator ticks, request)
  std::priority_queue<DueTurn, std::vector<DueTurn>, std::greater<DueTurn>> turn_queue_;
  sc_core::sc_event turn_due_;  // a turn was queued
  std::vector<std::vector<double>> token_times_;
  bool record_token_times_ = false;
  struct Kept {
    unsigned system = 0;
    bool host = false;  // in the host tier (else in the machine's memory)
    std::uint64_t tokens = 0;
    std::uint64_t bytes = 0;
    std::list<std::int64_t>::iterator pos;
  };
  std::unordered_map<std::int64_t, Kept> kept_;  // by session
  std::vector<std::uint64_t> retained_now_;      // tokens its next KV send need not send
  std::vector<double> ready_after_;              // its decode system takes it no earlier (reload, evictions)
  std::vector<std::uint8_t> retention_seen_;     // its first admission was counted (hit or miss)
  RetentionCounts retention_;
  SpeculativeCounts spec_;
  std::mt19937_64 spec_rng_;  // acceptance draws, seeded by serving.speculative's seed
  std::vector<std::int64_t> evicted_sessions_;
  std::vector<std::uint8_t> waiting_decode_;  // in reserve_decode
  std::vector<std::uint8_t> in_prefill_;      // in prefill batches that have not ended (how many)
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
  bool closing_ = false;  // in close_run(), after the simulation
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
  stats::Distribution& itl_;
  stats::Counter& preemptions_;
  stats::Counter& swap_bytes_;
};

}  // namespace wse::serving
