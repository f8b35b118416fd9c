#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include "workloads/serving/serving_system.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace wse::serving {

namespace {
double now_s() { return sc_core::sc_time_stamp().to_seconds(); }
void wait_until(double t_s) {
  const double dt = t_s - now_s();
  if (dt > 0)
    sc_core::wait(sim_delay(dt, "a scheduled time (an arrival, the end of a prefill batch or a fault)"));
}
std::uint32_t outputs(const workloads::Request& r) { return std::max<std::uint32_t>(1, r.output_tokens); }
// Prompt and output tokens: the context a request's KV cache holds at its end (in 64
// bits; two 32-bit counts may not fit in 32).
std::uint64_t final_context(const workloads::Request& r) {
  return std::uint64_t{r.input_tokens} + outputs(r);
}
}  // namespace

ServingSystem::ServingSystem(const sc_core::sc_module_name& name, const ServingConfig& config,
                             std::vector<workloads::Request> requests, std::vector<PrefillBackend*> prefill,
                             std::vector<DecodeBackend*> decode, KvPath* kv_path, trace::Writer* trace,
                             const std::vector<DecodeOutage>& decode_outages)
    : sc_module(name),
      config_(config),
      requests_(std::move(requests)),
      records_(requests_.size()),
      prompt_left_(requests_.size()),
      prompt_done_(requests_.size(), 0),
      prompt_inflight_(requests_.size(), 0),
      kv_tokens_(requests_.size(), 0),
      recovering_(requests_.size(), 0),
      held_(requests_.size(), 0),
      swapped_(requests_.size(), 0),
      last_token_at_(requests_.size(), 0.0),
      ready_seq_(requests_.size(), 0),
      retained_now_(requests_.size(), 0),
      ready_after_(requests_.size(), 0.0),
      retention_seen_(requests_.size(), 0),
      waiting_decode_(requests_.size(), 0),
      in_prefill_(requests_.size(), 0),
      prefill_(std::move(prefill)),
      decode_(std::move(decode)),
      kv_path_(kv_path),
      trace_(trace),
      pf_(prefill_.size()),
      dc_(decode_.size()),
      stats_(std::string(basename())),
      ttft_(stats_.distribution("ttft", "s",
                                "time to first token: arrival to the end of the last prefill chunk")),
      tpot_(stats_.distribution("tpot", "s", "time per output token after the first, per request")),
      e2e_(stats_.distribution("e2e", "s", "arrival to last token")),
      kv_time_(stats_.distribution("kv_transfer_time", "s",
                                   "first KV byte leaving to all KV in place, per request")),
      decode_batch_(stats_.distribution("decode_batch", "requests", "requests in each decode step")),
      prefill_batch_tokens_(
          stats_.distribution("prefill_batch_tokens", "tokens", "prompt tokens in each prefill batch")),
      kv_bytes_(stats_.counter("kv_bytes", "B", "KV-cache bytes sent from prefill to decode machines")),
      output_tokens_(stats_.counter("output_tokens", "tokens", "tokens generated")),
      prefix_hit_tokens_(
          stats_.counter("prefix_hit_tokens", "tokens", "prompt tokens served from the prefix cache")),
      itl_(stats_.distribution("itl", "s",
                               "inter-token latency: the gap before each token after a request's first")),
      preemptions_(stats_.counter("preemptions", "requests",
                                  "running requests preempted for decode KV capacity "
                                  "(output_length unknown)")),
      swap_bytes_(stats_.counter("swap_bytes", "B",
                                 "KV bytes of preempted requests copied to host memory and back")) {
  if (!config_.kv_bytes) throw std::invalid_argument("serving: kv_bytes function is not set");
  if (config_.speculative) {
    const Speculative& sp = *config_.speculative;
    if (sp.tokens == 0 || sp.acceptance.size() != sp.tokens)
      throw std::invalid_argument("serving: speculative needs tokens >= 1 and one acceptance per token");
    spec_rng_.seed(sp.seed);
  }
  if (prefill_.empty() || decode_.empty())
    throw std::invalid_argument("serving: no prefill or decode machines");
  const bool colocated = config_.placement == Placement::colocated;
  if (colocated && prefill_.size() != decode_.size()) {
    throw std::invalid_argument("serving: colocated machines need as many decode as prefill backends");
  }
  if (!colocated && !kv_path_)
    throw std::invalid_argument("serving: disaggregated placement needs a KV path");
  next_turn_.assign(requests_.size(), -1);
  for (std::size_t r = 0; r < requests_.size(); ++r) {
    prompt_left_[r] = requests_[r].input_tokens;
    kv_tokens_[r] = requests_[r].input_tokens;
    const std::int64_t prev = requests_[r].previous;
    if (prev >= 0) {
      if (static_cast<std::size_t>(prev) >= r || next_turn_[prev] >= 0) {
        throw std::invalid_argument(
            "serving: a session turn must follow its one previous turn in the request list");
      }
      next_turn_[prev] = static_cast<std::int64_t>(r);
    }
  }
  if (colocated && !decode_outages.empty()) {
    throw std::invalid_argument("serving: decode_system_down needs disaggregated placement");
  }
  for (const DecodeOutage& o : decode_outages) {
    if (o.system >= decode_.size())
      throw std::invalid_argument("serving: decode outage of a system that does not exist");
  }
  std::vector<stats::Group*> machine_groups;
  for (unsigned i = 0; i < pf_.size(); ++i) {
    stats::Group& g = stats_.child((colocated ? "machine" : "prefill") + std::to_string(i));
    machine_groups.push_back(&g);
    pf_[i].busy = &g.utilization(colocated ? "prefill_busy" : "utilization",
                                 "fraction of time running prefill batches");
    if (config_.prefix_reuse) pf_[i].cache = std::make_unique<PrefixCache>(config_.prefix_cache_blocks);
    if (trace_)
      pf_[i].track = trace_->track(colocated ? "machines" : "prefill pool", "machine " + std::to_string(i));
  }
  for (unsigned j = 0; j < dc_.size(); ++j) {
    // Colocated: the decode statistics sit beside the prefill ones of the same machine.
    stats::Group& g = colocated ? *machine_groups[j] : stats_.child("decode" + std::to_string(j));
    dc_[j].busy =
        &g.utilization(colocated ? "decode_busy" : "utilization", "fraction of time running decode steps");
    dc_[j].track =
        colocated ? pf_[j].track : (trace_ ? trace_->track("decode pool", "system " + std::to_string(j)) : 0);
  }
  sc_core::sc_spawn([this] { arrivals(); }, "arrivals");
  sc_core::sc_spawn([this] { later_turns(); }, "later_turns");
  for (unsigned i = 0; i < pf_.size(); ++i) {
    if (colocated) {
      sc_core::sc_spawn([this, i] { colocated_machine(i); }, sc_core::sc_gen_unique_name("machine"));
    } else {
      sc_core::sc_spawn([this, i] { prefill_machine(i); }, sc_core::sc_gen_unique_name("prefill"));
    }
  }
  if (!colocated) {
    for (unsigned j = 0; j < dc_.size(); ++j) {
      sc_core::sc_spawn([this, j] { decode_machine(j); }, sc_core::sc_gen_unique_name("decode"));
    }
    for (const DecodeOutage& o : decode_outages) {
      sc_core::sc_spawn([this, o] { outage(o); }, sc_core::sc_gen_unique_name("outage"));
    }
  }
}

unsigned ServingSystem::route(std::uint64_t r) {
  const auto n = static_cast<unsigned>(pf_.size());
  if (config_.placement == Placement::colocated && retains(r)) {
    // Session affinity: the machine holding the session's KV (docs/serving.md).
    if (const auto k = kept_.find(requests_[r].session); k != kept_.end()) return k->second.system;
  }
  if (config_.routing == Routing::round_robin) return next_round_robin_++ % n;
  unsigned best = 0;
  std::uint64_t best_hits = 0;
  for (unsigned i = 0; i < n; ++i) {
    const std::uint64_t hits = config_.routing == Routing::prefix_affinity && pf_[i].cache
                                   ? pf_[i].cache->leading_hits(requests_[r].hash_ids)
                                   : 0;
    const bool better =
        hits > best_hits || (hits == best_hits && pf_[i].queued_tokens < pf_[best].queued_tokens);
    if (i == 0 || better) {
      best = i;
      best_hits = hits;
    }
  }
  return best;
}

void ServingSystem::arrivals() {
  for (std::uint64_t r = 0; r < requests_.size(); ++r) {
    if (requests_[r].previous >= 0) continue;  // arrives after its previous turn's answer (later_turns)
    wait_until(requests_[r].arrival_s);
    arrive(r);
  }
}

void ServingSystem::later_turns() {
  while (true) {
    while (turn_queue_.empty()) sc_core::wait(turn_due_);
    const auto [at_ps, r] = turn_queue_.top();
    const std::uint64_t now_ps = sc_core::sc_time_stamp().value();
    if (at_ps > now_ps) {
      // Woken early if a turn due sooner is queued meanwhile. Times are compared in
      // the simulator's own ticks: in seconds, a rounded delay could leave the
      // wake-up a hair before its turn, and the loop would wait zero time forever.
      sc_core::wait(sc_core::sc_time::from_value(at_ps - now_ps), turn_due_);
      continue;
    }
    turn_queue_.pop();
    arrive(r);
  }
}

void ServingSystem::schedule_next_turn(std::uint64_t r) {
  const std::int64_t next = next_turn_[r];
  if (next < 0) return;
  const auto n = static_cast<std::uint64_t>(next);
  if (!(now_s() + requests_[n].think_s <= kMaxSimulatedSeconds)) {
    reject(n, "its think time ends later than a run can simulate");
    return;
  }
  const sc_core::sc_time at =
      sc_core::sc_time_stamp() + sim_delay(requests_[n].think_s, "a session turn's think time");
  turn_queue_.emplace(at.value(), n);
  turn_due_.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::arrive(std::uint64_t r) {
  records_[r].arrival_s = now_s();
  const unsigned i = route(r);
  PrefillState& p = pf_[i];
  records_[r].prefill_instance = static_cast<int>(i);
  if (p.cache) {
    // A cached prefix skips its tokens; the last prompt token is always computed
    // (its logits give the first output token).
    const std::uint64_t hit_tokens =
        std::min<std::uint64_t>(p.cache->leading_hits(requests_[r].hash_ids) * config_.prefix_block_tokens,
                                requests_[r].input_tokens - 1);
    records_[r].prefix_hit_tokens = static_cast<std::uint32_t>(hit_tokens);
    prompt_left_[r] -= static_cast<std::uint32_t>(hit_tokens);
    prompt_done_[r] = static_cast<std::uint32_t>(hit_tokens);
    prefix_hit_tokens_ += hit_tokens;
  }
  double queue_at = now_s();
  if (config_.placement == Placement::colocated && retains(r)) queue_at = pin_retained(r, i);
  if (queue_at > now_s()) {
    // Its session's KV comes back from the host tier (and evicted KV leaves for it) first.
    sc_core::sc_spawn([this, r, i, queue_at] {
      wait_until(queue_at);
      queue_prefill(r, i);
    });
    return;
  }
  queue_prefill(r, i);
}

void ServingSystem::queue_prefill(std::uint64_t r, unsigned i) {
  PrefillState& p = pf_[i];
  p.queue.push_back(r);
  p.queued_tokens += prompt_left_[r];
  p.work.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::prefill_machine(unsigned i) {
  while (true) {
    while (pf_[i].queue.empty()) sc_core::wait(pf_[i].work);
    // Nothing to begin: the queued prompts are all in a pipelined machine's batches.
    if (!run_prefill_batch(i)) sc_core::wait(pf_[i].work);
  }
}

bool ServingSystem::run_prefill_batch(unsigned i) {
  PrefillState& p = pf_[i];
  std::vector<PrefillChunk> batch;
  std::vector<std::uint64_t> finishing;
  std::uint32_t budget = config_.prefill_max_batch_tokens;
  // FIFO: the batch takes requests from the front, never skipping one that does not fit.
  for (std::uint64_t r : p.queue) {
    if (budget == 0) break;
    const std::uint32_t left = prompt_left_[r] - prompt_inflight_[r];
    if (left == 0) continue;  // all in batches a pipelined machine has not ended
    std::uint32_t chunk = left;
    if (config_.prefill_chunk_tokens > 0) chunk = std::min(chunk, config_.prefill_chunk_tokens);
    if (chunk > budget) {
      if (config_.prefill_chunk_tokens > 0)
        chunk = budget;  // a partial chunk fills the budget
      else if (!batch.empty())
        break;  // a whole prompt waits for the next batch
    }
    batch.push_back(PrefillChunk{r, chunk, prompt_done_[r] + prompt_inflight_[r]});
    budget = chunk >= budget ? 0 : budget - chunk;
    if (chunk == left) finishing.push_back(r);
  }
  if (batch.empty()) return false;
  // Requests whose KV this batch rebuilds after a decode failure produce no token.
  std::vector<std::uint8_t> rebuilt;
  for (std::uint64_t r : finishing) rebuilt.push_back(recovering_[r]);
  for (const auto& c : batch) {
    ++in_prefill_[c.request];
    prompt_inflight_[c.request] += c.tokens;
  }
  const double start = now_s();
  std::uint32_t tokens = 0;
  for (const auto& c : batch) {
    if (records_[c.request].prefill_start_s < 0) {
      records_[c.request].prefill_start_s = start;
      // A flow arrow follows the request from its first prefill batch to its last
      // decode step (Perfetto binds each point to the slice around it).
      if (trace_ && outputs(requests_[c.request]) > 1) trace_->flow(c.request, p.track, start, true, false);
    }
    tokens += c.tokens;
  }
  const PrefillTiming timing = prefill_[i]->prefill(batch);
  if (config_.placement == Placement::disaggregated) {
    for (std::uint64_t r : finishing) {
      if (outputs(requests_[r]) > 1) {
        const bool recovery = recovering_[r] == 1;  // a fault's resend (not a preemption's)
        sc_core::sc_spawn([this, r, start, timing, recovery] { send_kv(r, start, timing, recovery); });
      }
    }
  }
  if (timing.next_batch_s >= 0 && timing.next_batch_s < timing.seconds) {
    // A pipeline: the machine takes its next batch once this one has left its first
    // stage; this one ends later.
    sc_core::sc_spawn([this, i, batch, finishing, rebuilt, start, seconds = timing.seconds, tokens] {
      sc_core::wait(sim_delay(seconds, "a prefill batch"));
      end_prefill_batch(i, batch, finishing, rebuilt, start, seconds, tokens);
    });
    sc_core::wait(sim_delay(timing.next_batch_s, "a pipelined prefill batch's first stage"));
    return true;
  }
  sc_core::wait(sim_delay(timing.seconds, "a prefill batch"));
  end_prefill_batch(i, batch, finishing, rebuilt, start, timing.seconds, tokens);
  return true;
}

void ServingSystem::end_prefill_batch(unsigned i, const std::vector<PrefillChunk>& batch,
                                      const std::vector<std::uint64_t>& finishing,
                                      const std::vector<std::uint8_t>& rebuilt, double start, double seconds,
                                      std::uint32_t tokens) {
  PrefillState& p = pf_[i];
  // Busy while a batch is in the machine: a pipelined batch counts from where the one
  // before it ended.
  p.busy->add_busy(p.busy_until_s <= start ? seconds : start + seconds - p.busy_until_s);
  p.busy_until_s = start + seconds;
  prefill_batch_tokens_.sample(tokens);
  if (trace_) trace_->slice(p.track, "prefill " + std::to_string(tokens) + " tokens", start, seconds);
  for (const auto& c : batch) {
    prompt_inflight_[c.request] -= c.tokens;
    prompt_left_[c.request] -= c.tokens;
    prompt_done_[c.request] += c.tokens;
    p.queued_tokens -= c.tokens;
  }
  while (!p.queue.empty() && prompt_left_[p.queue.front()] == 0) p.queue.pop_front();
  for (std::size_t k = 0; k < finishing.size(); ++k) {
    recovering_[finishing[k]] = 0;
    if (!rebuilt[k]) {
      finish_prefill(finishing[k], i);
    } else if (config_.placement == Placement::colocated) {
      make_ready(i, finishing[k]);  // rebuilt after a preemption: back to the decode side
    }
  }
  for (const auto& c : batch) --in_prefill_[c.request];
  prefill_done_.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::finish_prefill(std::uint64_t r, unsigned instance) {
  RequestRecord& rec = records_[r];
  rec.first_token_s = now_s();
  rec.tokens_out = 1;
  output_tokens_ += 1;
  last_token_at_[r] = rec.first_token_s;
  if (record_token_times_) token_times_[r].push_back(rec.first_token_s);
  if (pf_[instance].cache) pf_[instance].cache->insert(requests_[r].hash_ids);
  if (outputs(requests_[r]) <= 1) {
    if (config_.placement == Placement::colocated) {
      dc_[instance].reserved_bytes -= held_[r];  // its session's KV, pinned since it arrived
      held_[r] = 0;
      if (retains(r)) retain(r, instance);  // the machine keeps its prompt's KV
    }
    finish_request(r);
    return;
  }
  if (config_.placement == Placement::colocated) {
    make_ready(instance, r);
  }
}

bool ServingSystem::admitted_before(std::uint64_t r, std::uint64_t q) const {
  const workloads::Request& a = requests_[r];
  const workloads::Request& b = requests_[q];
  if (config_.admission == Admission::shortest_first) {
    const bool oracle = config_.output_length == OutputLength::oracle;
    const std::uint64_t la = oracle ? final_context(a) : a.input_tokens;
    const std::uint64_t lb = oracle ? final_context(b) : b.input_tokens;
    if (la != lb) return la < lb;
  } else if (config_.admission == Admission::priority && a.priority != b.priority) {
    return a.priority < b.priority;
  }
  // A later session turn's arrival is known only from its record.
  const double ta = a.previous >= 0 ? records_[r].arrival_s : a.arrival_s;
  const double tb = b.previous >= 0 ? records_[q].arrival_s : b.arrival_s;
  if (ta != tb) return ta < tb;
  return r < q;
}

std::uint64_t ServingSystem::admission_bytes(std::uint64_t r) const {
  if (config_.output_length == OutputLength::oracle) return config_.kv_bytes(final_context(requests_[r]));
  // The context so far: the prompt and every token generated (at least the first).
  return config_.kv_bytes(std::uint64_t{requests_[r].input_tokens} +
                          std::max<std::uint32_t>(1, records_[r].tokens_out));
}

int ServingSystem::reserve_decode(std::uint64_t r, int bound) {
  const std::uint64_t need = admission_bytes(r);
  // A deadline beyond the longest simulated time can never pass: the request waits
  // without one (rather than the run failing for a time nothing would reach).
  const bool has_deadline = now_s() + config_.reject_after_s <= kMaxSimulatedSeconds;
  const sc_core::sc_time deadline =
      has_deadline ? sc_core::sc_time_stamp() + sim_time(config_.reject_after_s, "serving.reject_after")
                   : sc_core::SC_ZERO_TIME;
  waiting_.insert(
      std::upper_bound(waiting_.begin(), waiting_.end(), r,
                       [this](std::uint64_t a, std::uint64_t b) { return admitted_before(a, b); }),
      r);
  if (bound >= 0) ++bound_waiting_;
  // Leaves the queue; the next in order may now be admitted.
  auto leave = [&] {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), r));
    if (bound >= 0) --bound_waiting_;
    if (!waiting_.empty()) room_freed_.notify(sc_core::SC_ZERO_TIME);
  };
  while (true) {
    // Only the first waiter in admission order may take room: none overtakes it.
    const bool first = waiting_.front() == r;
    // Session affinity: the system holding the session's retained KV, if it has room
    // (retained KV never counts against room: it is evicted for an admission).
    int affine = -1;
    if (retains(r)) {
      if (const auto k = kept_.find(requests_[r].session); k != kept_.end())
        affine = static_cast<int>(k->second.system);
    }
    int best = -1;
    bool any_up = false;
    for (unsigned j = 0; j < dc_.size(); ++j) {
      if (bound >= 0 && j != static_cast<unsigned>(bound)) continue;
      if (!dc_[j].up) continue;  // failed: route around it
      any_up = true;
      if (!first || dc_[j].reserved_bytes + need > config_.decode_kv_capacity_bytes) continue;
      if (static_cast<int>(j) == affine) {
        best = affine;
        break;
      }
      if (best < 0 || dc_[j].reserved_bytes < dc_[static_cast<unsigned>(best)].reserved_bytes)
        best = static_cast<int>(j);
    }
    if (best >= 0) {
      dc_[static_cast<unsigned>(best)].reserved_bytes += need;
      held_[r] = need;
      admit_retained(r, static_cast<unsigned>(best));
      leave();
      return best;
    }
    if (bound >= 0 && !any_up) {
      leave();  // the system holding its swapped KV failed
      return -1;
    }
    waiting_decode_[r] = 1;
    if (!any_up && config_.reject_after_s > 0 && has_deadline) {
      // No decode system is up: wait for one (a system coming back frees room) until the
      // deadline, then give up on the request.
      if (sc_core::sc_time_stamp() >= deadline) {
        waiting_decode_[r] = 0;
        leave();
        return -1;
      }
      sc_core::wait(deadline - sc_core::sc_time_stamp(), room_freed_);
    } else {
      sc_core::wait(room_freed_);
    }
    waiting_decode_[r] = 0;
  }
}

void ServingSystem::send_kv(std::uint64_t r, double batch_start_s, PrefillTiming timing, bool recovery) {
  const int dest = reserve_decode(r);
  RequestRecord& rec = records_[r];
  if (dest < 0) {
    wait_prefill_end(r, batch_start_s + timing.seconds);
    reject(r, "no decode system up within serving.reject_after");
    return;
  }
  const auto d = static_cast<unsigned>(dest);
  const std::uint64_t epoch = dc_[d].epoch;
  rec.decode_system = dest;
  std::uint64_t total = config_.kv_bytes(kv_tokens_[r]);
  if (retained_now_[r] > 0) {
    // Its decode system holds its session's KV of the earlier turns: only the rest crosses.
    const std::uint64_t saved = std::min(total, config_.kv_bytes(retained_now_[r]));
    total -= saved;
    rec.kv_bytes_saved += saved;
    retention_.bytes_saved += saved;
    retained_now_[r] = 0;
  }
  const auto src = static_cast<unsigned>(rec.prefill_instance);
  // A message's bytes count once sent; the KV is lost (and sent again) if the decode
  // system fails before the request joins it.
  auto sent_bytes = [&](std::uint64_t bytes) {
    rec.kv_bytes += bytes;
    kv_bytes_ += bytes;
    if (recovery) rec.kv_bytes_resent += bytes;
  };
  if (config_.kv_send == KvSend::after_prefill) {
    wait_until(batch_start_s + timing.seconds);
    if (dc_[d].epoch == epoch) {
      if (rec.kv_start_s < 0) rec.kv_start_s = now_s();
      kv_path_->transfer_layers(src, d, 0, config_.layers - 1, total, r);
      sent_bytes(total);
    }
  } else {
    const std::uint32_t layers = config_.layers;
    std::uint64_t sent = 0;
    for (std::uint32_t first = 0; first < layers && dc_[d].epoch == epoch;
         first += config_.kv_layers_per_message) {
      const std::uint32_t last = std::min(layers, first + config_.kv_layers_per_message) - 1;
      const double ready = timing.layer_done_s.size() > last ? timing.layer_done_s[last] : timing.seconds;
      wait_until(batch_start_s + ready);
      if (dc_[d].epoch != epoch) break;  // the destination failed: send no more
      // Bytes of layers [0, last] minus what was sent: exact integer split of the total.
      const std::uint64_t upto = total * (last + 1) / layers;
      if (rec.kv_start_s < 0) rec.kv_start_s = now_s();
      kv_path_->transfer_layers(src, d, first, last, upto - sent, r);
      sent_bytes(upto - sent);
      sent = upto;
    }
  }
  if (rec.kv_start_s >= 0) rec.kv_end_s = now_s();  // the last KV byte sent for r arrived
  // The decode side needs the first token too, which the prefill produced by now or
  // will produce at the batch end.
  wait_until(batch_start_s + timing.seconds);
  // And its session's KV back from the host tier, and the room evictions made for it.
  wait_until(ready_after_[r]);
  if (dc_[d].epoch != epoch) {
    wait_prefill_end(r, batch_start_s + timing.seconds);
    recover(r);  // the destination failed while the KV was on its way
    return;
  }
  make_ready(d, r);
}

void ServingSystem::wait_prefill_end(std::uint64_t r, double batch_end_s) {
  wait_until(batch_end_s);
  // The prefill machine may not have closed the batch yet at this very time.
  while (in_prefill_[r]) sc_core::wait(prefill_done_);
}

bool ServingSystem::wait_until_unless_done(double t_s) {
  if (all_done()) return false;
  const double dt = t_s - now_s();
  if (dt > 0) sc_core::wait(sim_delay(dt, "a scheduled fault"), all_done_);
  return !all_done();
}

void ServingSystem::outage(DecodeOutage o) {
  // A failure scheduled after the last request ended is not part of the run: it is
  // neither simulated nor counted in decode_failures.
  if (!wait_until_unless_done(o.start_s)) return;
  fail_decode(o.system);
  if (o.end_s < 0) return;
  if (!wait_until_unless_done(o.end_s)) return;
  DecodeState& d = dc_[o.system];
  d.up = true;  // back, empty
  d.work.notify(sc_core::SC_ZERO_TIME);
  room_freed_.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::fail_decode(unsigned j) {
  DecodeState& d = dc_[j];
  d.up = false;
  ++d.epoch;
  ++decode_failures_;
  d.failed.notify(sc_core::SC_ZERO_TIME);  // the step in progress is lost
  std::vector<std::uint64_t> lost(d.running.begin(), d.running.end());
  // The waiting ones in the order they became ready.
  std::vector<std::uint64_t> ready(d.ready.begin(), d.ready.end());
  std::sort(ready.begin(), ready.end(),
            [this](std::uint64_t a, std::uint64_t b) { return ready_seq_[a] < ready_seq_[b]; });
  lost.insert(lost.end(), ready.begin(), ready.end());
  d.running.clear();
  d.ready.clear();
  d.reserved_bytes = 0;
  // Retained session KV is lost with the system (its host tier's too, as swapped KV).
  std::vector<std::int64_t> gone(d.kept.begin(), d.kept.end());
  gone.insert(gone.end(), d.host.begin(), d.host.end());
  for (std::int64_t s : gone) forget(s);
  for (std::uint64_t r : lost) recover(r);
  if (bound_waiting_ > 0) room_freed_.notify(sc_core::SC_ZERO_TIME);  // swapped out to it: lost with it
}

void ServingSystem::recover(std::uint64_t r) {
  RequestRecord& rec = records_[r];
  ++rec.reroutes;
  held_[r] = 0;
  retained_now_[r] = 0;
  swapped_[r] = 0;
  const std::uint32_t input = requests_[r].input_tokens;
  // The KV on the decode side covered the prompt and every generated token but the
  // last (whose KV the next step would have made).
  const std::uint32_t generated = rec.tokens_out > 0 ? rec.tokens_out - 1 : 0;
  const bool held =
      config_.failover == Failover::resend_kv &&
      (config_.prefill_kv_hold_s <= 0 || now_s() - rec.first_token_s <= config_.prefill_kv_hold_s);
  kv_tokens_[r] = std::uint64_t{input} + generated;
  PrefillState& p = pf_[static_cast<unsigned>(rec.prefill_instance)];
  if (held) {
    // The prefill side still holds the prompt's KV: it computes only the generated
    // tokens' KV (a chunk after the prompt), then sends it all again.
    ++rec.kv_resends;
    rec.tokens_recomputed += generated;
    if (generated == 0) {
      sc_core::sc_spawn([this, r] { send_kv(r, now_s(), PrefillTiming{}, true); });
      return;
    }
    prompt_done_[r] = input;
    prompt_left_[r] = generated;
  } else {
    ++rec.reprefills;
    rec.tokens_recomputed += std::uint64_t{input} + generated;
    prompt_done_[r] = 0;
    prompt_left_[r] = input + generated;
  }
  recovering_[r] = 1;
  p.queue.push_back(r);
  p.queued_tokens += prompt_left_[r];
  p.work.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::reject(std::uint64_t r, std::string reason) {
  RequestRecord& rec = records_[r];
  rec.rejected_s = now_s();
  rec.reason = std::move(reason);
  ++rejected_;
  end_s_ = std::max(end_s_, rec.rejected_s);
  if (on_end_) on_end_(rec.rejected_s, completed_ + rejected_);
  // The session's later turns never arrive: each ends rejected now.
  if (const std::int64_t next = next_turn_[r]; next >= 0 && !records_[next].rejected()) {
    reject(static_cast<std::uint64_t>(next), "an earlier turn of its session was rejected");
  }
  if (all_done() && !closing_) all_done_.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::close_run() {
  closing_ = true;
  for (std::uint64_t r = 0; r < records_.size(); ++r) {
    if (records_[r].completed() || records_[r].rejected()) continue;
    reject(r,
           waiting_decode_[r] ? "no decode system up when the run ended" : "unfinished when the run ended");
  }
}

void ServingSystem::decode_machine(unsigned j) {
  while (true) {
    if (!run_decode_step(j)) sc_core::wait(dc_[j].work);
  }
}

void ServingSystem::colocated_machine(unsigned i) {
  while (true) {
    if (!pf_[i].queue.empty() && run_prefill_batch(i)) continue;  // prefill first
    if (run_decode_step(i)) continue;
    sc_core::wait(pf_[i].work | dc_[i].work);
  }
}

bool ServingSystem::run_decode_step(unsigned j) {
  DecodeState& d = dc_[j];
  if (!d.up) return false;
  const bool colocated = config_.placement == Placement::colocated;
  // d.ready is in admission order: those admitted are a prefix of it (the first that
  // does not fit stops the rest). They join the batch in the order they became ready.
  std::size_t admitted = 0;
  while (admitted < d.ready.size() && d.running.size() + admitted < config_.decode_max_batch) {
    const std::uint64_t r = d.ready[admitted];
    if (colocated) {
      // Its session's retained KV, pinned since it arrived, is part of what it needs.
      const std::uint64_t need = admission_bytes(r);
      const std::uint64_t extra = need > held_[r] ? need - held_[r] : 0;
      if (d.reserved_bytes + extra > config_.decode_kv_capacity_bytes) break;  // wait for room, in order
      d.reserved_bytes += extra;
      held_[r] = std::max(need, held_[r]);
      records_[r].decode_system = static_cast<int>(j);
    }
    ++admitted;
  }
  if (colocated && admitted > 0) {
    // Retained KV makes room for them: the step waits for what goes to the host tier.
    const double room_at = make_room(j, 0);
    d.swap_s = std::max(d.swap_s, room_at - now_s());
  }
  std::vector<std::uint64_t> joining(d.ready.begin(),
                                     d.ready.begin() + static_cast<std::ptrdiff_t>(admitted));
  d.ready.erase(d.ready.begin(), d.ready.begin() + static_cast<std::ptrdiff_t>(admitted));
  std::sort(joining.begin(), joining.end(),
            [this](std::uint64_t a, std::uint64_t b) { return ready_seq_[a] < ready_seq_[b]; });
  for (std::uint64_t r : joining) {
    if (swapped_[r]) {
      // Its KV comes back from host memory before the step.
      swapped_[r] = 0;
      const std::uint64_t bytes = config_.kv_bytes(kv_tokens_[r]);
      d.swap_s += static_cast<double>(bytes) / config_.swap_bandwidth_Bps;
      records_[r].swap_bytes += bytes;
      swap_bytes_ += bytes;
    }
    records_[r].decode_start_s = now_s();
    d.running.push_back(r);
  }
  if (config_.output_length == OutputLength::unknown) grow_kv(j);
  if (d.running.empty()) return false;
  std::vector<std::uint32_t> contexts;
  contexts.reserve(d.running.size());
  for (std::uint64_t r : d.running) contexts.push_back(requests_[r].input_tokens + records_[r].tokens_out);
  const double start = now_s();
  // Swap traffic of this step's preemptions and re-admissions goes first.
  SpeculativeTiming spec;
  const std::optional<Speculative>& sp = config_.speculative;
  if (sp) {
    spec = decode_[j]->speculative_step(contexts, sp->tokens);
  } else {
    spec.verify_s = decode_[j]->step(contexts);
  }
  const double t = spec.draft_s + spec.verify_s + d.swap_s;
  d.swap_s = 0;
  const std::uint64_t epoch = d.epoch;
  sc_core::wait(sim_delay(t, "a decode step"), d.failed);
  if (d.epoch != epoch) {
    d.busy->add_busy(now_s() - start);  // the system failed during the step: its tokens are lost
    return true;
  }
  d.busy->add_busy(t);
  decode_batch_.sample(static_cast<double>(d.running.size()));
  if (sp) {
    ++spec_.steps;
    spec_.draft_s += spec.draft_s;
    spec_.verify_s += spec.verify_s;
  }
  if (trace_) trace_->slice(d.track, "decode x" + std::to_string(d.running.size()), start, t);
  std::vector<std::uint64_t> still;
  still.reserve(d.running.size());
  for (std::uint64_t r : d.running) {
    // Tokens the step gives r: one, or under speculation the drafted tokens the target
    // accepted and its own next token, clipped to the output length.
    const std::uint32_t left = outputs(requests_[r]) - records_[r].tokens_out;
    const std::uint32_t n = sp ? std::min(left, speculate(*sp)) : 1;
    if (trace_) {
      const bool first_step = records_[r].tokens_out == 1;
      const bool last_step = n >= left;
      if (first_step || last_step) trace_->flow(r, d.track, start, false, last_step);
    }
    records_[r].tokens_out += n;
    output_tokens_ += n;
    spec_.emitted_tokens += sp ? n : 0;
    const double at = now_s();
    // The step's tokens are emitted together at its end: the gaps after the first are 0.
    itl_.sample(at - last_token_at_[r]);
    for (std::uint32_t extra = 1; extra < n; ++extra) itl_.sample(0.0);
    last_token_at_[r] = at;
    if (record_token_times_) token_times_[r].insert(token_times_[r].end(), n, at);
    if (records_[r].tokens_out >= outputs(requests_[r])) {
      d.reserved_bytes -= held_[r];
      held_[r] = 0;
      if (retains(r)) retain(r, j);
      finish_request(r);
      room_freed_.notify(sc_core::SC_ZERO_TIME);
    } else {
      still.push_back(r);
    }
  }
  d.running.swap(still);
  return true;
}

std::uint32_t ServingSystem::speculate(const Speculative& sp) {
  // Draft position i is accepted with probability acceptance[i] given the earlier ones
  // were; the first rejection ends the run. A uniform draw in [0, 1) from the top 53 bits
  // (the same on every platform, unlike std::uniform_real_distribution): acceptance 1
  // always accepts, 0 never.
  std::uint32_t accepted = 0;
  while (accepted < sp.tokens) {
    const double u = static_cast<double>(spec_rng_() >> 11) * 0x1.0p-53;
    if (!(u < sp.acceptance[accepted])) break;
    ++accepted;
  }
  spec_.drafted += sp.tokens;
  spec_.accepted += accepted;
  spec_.verified += 1;
  return accepted + 1;
}

void ServingSystem::make_ready(unsigned j, std::uint64_t r) {
  DecodeState& d = dc_[j];
  ready_seq_[r] = next_ready_seq_++;
  d.ready.insert(std::upper_bound(d.ready.begin(), d.ready.end(), r,
                                  [this](std::uint64_t a, std::uint64_t b) { return admitted_before(a, b); }),
                 r);
  d.work.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::grow_kv(unsigned j) {
  DecodeState& d = dc_[j];
  std::vector<std::uint64_t> order(d.running.begin(), d.running.end());
  std::stable_sort(order.begin(), order.end(),
                   [this](std::uint64_t a, std::uint64_t b) { return admitted_before(a, b); });
  std::size_t end = order.size();
  // A speculative step writes the KV of tokens + 1 tokens per request (the rejected ones'
  // is rolled back after it).
  const std::uint64_t step_tokens = config_.speculative ? std::uint64_t{config_.speculative->tokens} + 1 : 1;
  for (std::size_t i = 0; i < end; ++i) {
    const std::uint64_t r = order[i];
    // The step adds the KV of one more token: the context after it.
    // (A speculative step's reservation is capped at the final context: the overshoot
    // of the last step, at most `tokens` positions, is not reserved; docs/serving.md.)
    const std::uint64_t after_tokens =
        std::uint64_t{requests_[r].input_tokens} + records_[r].tokens_out + step_tokens;
    const std::uint64_t after = config_.kv_bytes(
        step_tokens > 1 ? std::min(after_tokens, final_context(requests_[r])) : after_tokens);
    const std::uint64_t grow = after > held_[r] ? after - held_[r] : 0;
    // Retained session KV goes before any running request: the step waits for it to leave.
    const double room_at = make_room(j, grow);
    d.swap_s = std::max(d.swap_s, room_at - now_s());
    while (i < end && d.reserved_bytes + grow > config_.decode_kv_capacity_bytes) preempt(order[--end], j);
    if (i >= end) break;  // r was the last in order: it preempted itself
    d.reserved_bytes += grow;
    held_[r] += grow;
  }
  if (end == order.size()) return;
  std::vector<std::uint64_t> kept;
  for (std::uint64_t r : d.running) {
    if (std::find(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(end), r) !=
        order.begin() + static_cast<std::ptrdiff_t>(end)) {
      kept.push_back(r);
    }
  }
  d.running.swap(kept);
}

void ServingSystem::preempt(std::uint64_t r, unsigned j) {
  DecodeState& d = dc_[j];
  RequestRecord& rec = records_[r];
  d.reserved_bytes -= held_[r];
  held_[r] = 0;
  retained_now_[r] = 0;
  ++rec.preemptions;
  preemptions_ += 1;
  // The KV it has: the prompt and every generated token but the last (whose KV the
  // next step would have made).
  const std::uint32_t generated = rec.tokens_out > 0 ? rec.tokens_out - 1 : 0;
  kv_tokens_[r] = std::uint64_t{requests_[r].input_tokens} + generated;
  if (config_.preemption == Preemption::swap) {
    ++rec.swaps;
    const std::uint64_t bytes = config_.kv_bytes(kv_tokens_[r]);
    d.swap_s += static_cast<double>(bytes) / config_.swap_bandwidth_Bps;  // out, before the step
    rec.swap_bytes += bytes;
    swap_bytes_ += bytes;
    if (config_.placement == Placement::colocated) {
      swapped_[r] = 1;
      make_ready(j, r);
    } else {
      sc_core::sc_spawn([this, r, j] { swap_back(r, j); });
    }
  } else {
    // Recompute: the prefill side rebuilds the KV of prompt + generated tokens (and,
    // disaggregated, sends it again).
    rec.preempt_tokens_recomputed += kv_tokens_[r];
    PrefillState& p = pf_[static_cast<unsigned>(rec.prefill_instance)];
    prompt_done_[r] = 0;
    prompt_left_[r] = static_cast<std::uint32_t>(kv_tokens_[r]);
    recovering_[r] = 2;
    p.queue.push_back(r);
    p.queued_tokens += prompt_left_[r];
    p.work.notify(sc_core::SC_ZERO_TIME);
  }
  room_freed_.notify(sc_core::SC_ZERO_TIME);
}

void ServingSystem::swap_back(std::uint64_t r, unsigned j) {
  if (reserve_decode(r, static_cast<int>(j)) < 0) {
    recover(r);  // the host memory of a failed system: rebuilt as after the failure
    return;
  }
  wait_until(ready_after_[r]);  // room that evictions to the host tier made for it
  DecodeState& d = dc_[j];
  const std::uint64_t bytes = config_.kv_bytes(kv_tokens_[r]);
  d.swap_s += static_cast<double>(bytes) / config_.swap_bandwidth_Bps;  // in, before its next step
  records_[r].swap_bytes += bytes;
  swap_bytes_ += bytes;
  make_ready(j, r);
}

void ServingSystem::finish_request(std::uint64_t r) {
  RequestRecord& rec = records_[r];
  rec.last_token_s = now_s();
  ++completed_;
  end_s_ = std::max(end_s_, rec.last_token_s);
  if (on_end_) on_end_(rec.last_token_s, completed_ + rejected_);
  if (all_done()) all_done_.notify(sc_core::SC_ZERO_TIME);
  ttft_.sample(rec.first_token_s - rec.arrival_s);
  if (rec.kv_start_s >= 0 && rec.kv_end_s >= 0) kv_time_.sample(rec.kv_end_s - rec.kv_start_s);
  e2e_.sample(rec.last_token_s - rec.arrival_s);
  if (rec.tokens_out > 1) tpot_.sample((rec.last_token_s - rec.first_token_s) / (rec.tokens_out - 1));
  schedule_next_turn(r);
}

bool ServingSystem::retains(std::uint64_t r) const {
  return config_.kv_retention && requests_[r].in_session();
}

double ServingSystem::pin_retained(std::uint64_t r, unsigned i) {
  DecodeState& d = dc_[i];
  const std::int64_t session = requests_[r].session;
  double at = now_s();
  const auto k = kept_.find(session);
  const std::uint32_t input = requests_[r].input_tokens;
  if (k != kept_.end() && k->second.system == i &&
      d.reserved_bytes + k->second.bytes <= config_.decode_kv_capacity_bytes) {
    const Kept e = k->second;
    forget(session);
    d.reserved_bytes += e.bytes;  // pinned: it stays until r is admitted (and becomes part of r's)
    held_[r] = e.bytes;
    records_[r].kv_retained_tokens = e.tokens;
    // The prefill computes only what the machine lacks (the last prompt token at least).
    const auto skip = static_cast<std::uint32_t>(std::min<std::uint64_t>(e.tokens, input - 1));
    if (skip > prompt_done_[r]) {
      retention_.prefill_tokens_skipped += skip - prompt_done_[r];
      prompt_done_[r] = skip;
      prompt_left_[r] = input - skip;
    }
    if (e.host) {
      const double start = std::max(now_s(), d.host_in_free_s);
      d.host_in_free_s = start + static_cast<double>(e.bytes) / config_.host_tier->bandwidth_Bps;
      at = d.host_in_free_s;
      records_[r].kv_reload_s = d.host_in_free_s - start;
      ++retention_.host_hits;
      retention_.host_reload_bytes += e.bytes;
    } else {
      ++retention_.hits;
    }
    at = std::max(at, make_room(i, 0));
  } else {
    if (k != kept_.end()) forget(session);  // no room to pin it now: a miss
    if (requests_[r].previous >= 0) ++retention_.misses;
  }
  retention_seen_[r] = 1;
  return at;
}

void ServingSystem::admit_retained(std::uint64_t r, unsigned j) {
  if (!retains(r)) return;
  DecodeState& d = dc_[j];
  const std::int64_t session = requests_[r].session;
  if (const auto k = kept_.find(session); k != kept_.end()) {
    const Kept e = k->second;
    forget(session);  // taken into r's reservation, or stale (r runs elsewhere)
    if (e.system == j) {
      retained_now_[r] = e.tokens;
      records_[r].kv_retained_tokens = e.tokens;
      if (e.host) {
        // Reloaded over the host tier's link, after the reloads queued before it.
        const double start = std::max(now_s(), d.host_in_free_s);
        d.host_in_free_s = start + static_cast<double>(e.bytes) / config_.host_tier->bandwidth_Bps;
        ready_after_[r] = std::max(ready_after_[r], d.host_in_free_s);
        records_[r].kv_reload_s = d.host_in_free_s - start;
        ++retention_.host_hits;
        retention_.host_reload_bytes += e.bytes;
      } else {
        ++retention_.hits;
      }
      retention_seen_[r] = 1;
    }
  }
  if (!retention_seen_[r] && requests_[r].previous >= 0) ++retention_.misses;
  retention_seen_[r] = 1;
  ready_after_[r] = std::max(ready_after_[r], make_room(j, 0));
}

void ServingSystem::retain(std::uint64_t r, unsigned j) {
  DecodeState& d = dc_[j];
  const std::int64_t session = requests_[r].session;
  forget(session);
  // The KV of the prompt and every token generated but the last (which no step fed).
  const std::uint64_t tokens = std::uint64_t{requests_[r].input_tokens} + records_[r].tokens_out - 1;
  Kept e;
  e.system = j;
  e.tokens = tokens;
  e.bytes = config_.kv_bytes(tokens);
  d.kept.push_front(session);
  e.pos = d.kept.begin();
  d.kept_bytes += e.bytes;
  kept_[session] = e;
  make_room(j, 0);
}

double ServingSystem::make_room(unsigned j, std::uint64_t extra) {
  DecodeState& d = dc_[j];
  double done = now_s();
  while (!d.kept.empty() && d.reserved_bytes + d.kept_bytes + extra > config_.decode_kv_capacity_bytes) {
    const std::int64_t s = d.kept.back();
    Kept& e = kept_.at(s);
    d.kept.pop_back();
    d.kept_bytes -= e.bytes;
    ++retention_.evictions;
    evicted_sessions_.push_back(s);
    const std::optional<KvTier>& tier = config_.host_tier;
    if (!tier || e.bytes > tier->capacity_bytes) {
      kept_.erase(s);
      continue;
    }
    while (d.host_bytes + e.bytes > tier->capacity_bytes) {
      const std::int64_t old = d.host.back();
      d.host.pop_back();
      d.host_bytes -= kept_.at(old).bytes;
      kept_.erase(old);
      ++retention_.host_evictions;
    }
    // Written to the host tier over its link, after the writes queued before it; the
    // room is free once it has left.
    const double start = std::max(now_s(), d.host_out_free_s);
    d.host_out_free_s = start + static_cast<double>(e.bytes) / tier->bandwidth_Bps;
    done = std::max(done, d.host_out_free_s);
    e.host = true;
    d.host.push_front(s);
    e.pos = d.host.begin();
    d.host_bytes += e.bytes;
    ++retention_.evicted_to_host;
    retention_.host_write_bytes += e.bytes;
  }
  return done;
}

void ServingSystem::forget(std::int64_t session) {
  const auto k = kept_.find(session);
  if (k == kept_.end()) return;
  DecodeState& d = dc_[k->second.system];
  if (k->second.host) {
    d.host.erase(k->second.pos);
    d.host_bytes -= k->second.bytes;
  } else {
    d.kept.erase(k->second.pos);
    d.kept_bytes -= k->second.bytes;
  }
  kept_.erase(k);
}

}  // namespace wse::serving
