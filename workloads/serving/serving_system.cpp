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
  if (dt > 0) sc_core::wait(sc_core::sc_time(dt, sc_core::SC_SEC));
}
std::uint32_t outputs(const workloads::Request& r) { return std::max<std::uint32_t>(1, r.output_tokens); }
}  // namespace

ServingSystem::ServingSystem(const sc_core::sc_module_name& name, const ServingConfig& config,
                             std::vector<workloads::Request> requests, std::vector<PrefillBackend*> prefill,
                             std::vector<DecodeBackend*> decode, KvPath* kv_path, trace::Writer* trace)
    : sc_module(name),
      config_(config),
      requests_(std::move(requests)),
      records_(requests_.size()),
      prompt_left_(requests_.size()),
      prompt_done_(requests_.size(), 0),
      prefill_(std::move(prefill)),
      decode_(std::move(decode)),
      kv_path_(kv_path),
      trace_(trace),
      pf_(prefill_.size()),
      dc_(decode_.size()),
      stats_(std::string(basename())),
      ttft_(stats_.distribution("ttft", "s", "time to first token: arrival to the end of the last prefill chunk")),
      tpot_(stats_.distribution("tpot", "s", "time per output token after the first, per request")),
      e2e_(stats_.distribution("e2e", "s", "arrival to last token")),
      kv_time_(stats_.distribution("kv_transfer_time", "s", "first KV byte leaving to all KV in place, per request")),
      decode_batch_(stats_.distribution("decode_batch", "requests", "requests in each decode step")),
      prefill_batch_tokens_(stats_.distribution("prefill_batch_tokens", "tokens", "prompt tokens in each prefill batch")),
      kv_bytes_(stats_.counter("kv_bytes", "B", "KV-cache bytes sent from prefill to decode machines")),
      output_tokens_(stats_.counter("output_tokens", "tokens", "tokens generated")),
      prefix_hit_tokens_(stats_.counter("prefix_hit_tokens", "tokens", "prompt tokens served from the prefix cache")) {
  if (!config_.kv_bytes) throw std::invalid_argument("serving: kv_bytes function is not set");
  if (prefill_.empty() || decode_.empty()) throw std::invalid_argument("serving: no prefill or decode machines");
  const bool colocated = config_.placement == Placement::colocated;
  if (colocated && prefill_.size() != decode_.size()) {
    throw std::invalid_argument("serving: colocated machines need as many decode as prefill backends");
  }
  if (!colocated && !kv_path_) throw std::invalid_argument("serving: disaggregated placement needs a KV path");
  for (std::size_t r = 0; r < requests_.size(); ++r) prompt_left_[r] = requests_[r].input_tokens;
  std::vector<stats::Group*> machine_groups;
  for (unsigned i = 0; i < pf_.size(); ++i) {
    stats::Group& g = stats_.child((colocated ? "machine" : "prefill") + std::to_string(i));
    machine_groups.push_back(&g);
    pf_[i].busy = &g.utilization(colocated ? "prefill_busy" : "utilization",
                                 "fraction of time running prefill batches");
    if (config_.prefix_reuse) pf_[i].cache = std::make_unique<PrefixCache>(config_.prefix_cache_blocks);
    if (trace_) pf_[i].track = trace_->track(colocated ? "machines" : "prefill pool", "machine " + std::to_string(i));
  }
  for (unsigned j = 0; j < dc_.size(); ++j) {
    // Colocated: the decode statistics sit beside the prefill ones of the same machine.
    stats::Group& g = colocated ? *machine_groups[j] : stats_.child("decode" + std::to_string(j));
    dc_[j].busy = &g.utilization(colocated ? "decode_busy" : "utilization", "fraction of time running decode steps");
    dc_[j].track = colocated ? pf_[j].track : (trace_ ? trace_->track("decode pool", "system " + std::to_string(j)) : 0);
  }
  sc_core::sc_spawn([this] { arrivals(); }, "arrivals");
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
  }
}

unsigned ServingSystem::route(std::uint64_t r) {
  const auto n = static_cast<unsigned>(pf_.size());
  if (config_.routing == Routing::round_robin) return next_round_robin_++ % n;
  unsigned best = 0;
  std::uint64_t best_hits = 0;
  for (unsigned i = 0; i < n; ++i) {
    const std::uint64_t hits =
        config_.routing == Routing::prefix_affinity && pf_[i].cache ? pf_[i].cache->leading_hits(requests_[r].hash_ids) : 0;
    const bool better = hits > best_hits || (hits == best_hits && pf_[i].queued_tokens < pf_[best].queued_tokens);
    if (i == 0 || better) {
      best = i;
      best_hits = hits;
    }
  }
  return best;
}

void ServingSystem::arrivals() {
  for (std::uint64_t r = 0; r < requests_.size(); ++r) {
    wait_until(requests_[r].arrival_s);
    records_[r].arrival_s = now_s();
    const unsigned i = route(r);
    PrefillState& p = pf_[i];
    records_[r].prefill_instance = static_cast<int>(i);
    if (p.cache) {
      // A cached prefix skips its tokens; the last prompt token is always computed
      // (its logits give the first output token).
      const std::uint64_t hit_tokens = std::min<std::uint64_t>(
          p.cache->leading_hits(requests_[r].hash_ids) * config_.prefix_block_tokens, requests_[r].input_tokens - 1);
      records_[r].prefix_hit_tokens = static_cast<std::uint32_t>(hit_tokens);
      prompt_left_[r] -= static_cast<std::uint32_t>(hit_tokens);
      prompt_done_[r] = static_cast<std::uint32_t>(hit_tokens);
      prefix_hit_tokens_ += hit_tokens;
    }
    p.queue.push_back(r);
    p.queued_tokens += prompt_left_[r];
    p.work.notify(sc_core::SC_ZERO_TIME);
  }
}

void ServingSystem::prefill_machine(unsigned i) {
  while (true) {
    while (pf_[i].queue.empty()) sc_core::wait(pf_[i].work);
    run_prefill_batch(i);
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
    std::uint32_t chunk = prompt_left_[r];
    if (config_.prefill_chunk_tokens > 0) chunk = std::min(chunk, config_.prefill_chunk_tokens);
    if (chunk > budget) {
      if (config_.prefill_chunk_tokens > 0) chunk = budget;       // a partial chunk fills the budget
      else if (!batch.empty()) break;                              // a whole prompt waits for the next batch
    }
    batch.push_back(PrefillChunk{r, chunk, prompt_done_[r]});
    budget = chunk >= budget ? 0 : budget - chunk;
    if (chunk == prompt_left_[r]) finishing.push_back(r);
  }
  if (batch.empty()) return false;
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
      if (outputs(requests_[r]) > 1) sc_core::sc_spawn([this, r, start, timing] { send_kv(r, start, timing); });
    }
  }
  sc_core::wait(sc_core::sc_time(timing.seconds, sc_core::SC_SEC));
  p.busy->add_busy(timing.seconds);
  prefill_batch_tokens_.sample(tokens);
  if (trace_) trace_->slice(p.track, "prefill " + std::to_string(tokens) + " tokens", start, timing.seconds);
  for (const auto& c : batch) {
    prompt_left_[c.request] -= c.tokens;
    prompt_done_[c.request] += c.tokens;
    p.queued_tokens -= c.tokens;
  }
  while (!p.queue.empty() && prompt_left_[p.queue.front()] == 0) p.queue.pop_front();
  for (std::uint64_t r : finishing) finish_prefill(r, i);
  return true;
}

void ServingSystem::finish_prefill(std::uint64_t r, unsigned instance) {
  RequestRecord& rec = records_[r];
  rec.first_token_s = now_s();
  rec.tokens_out = 1;
  output_tokens_ += 1;
  if (pf_[instance].cache) pf_[instance].cache->insert(requests_[r].hash_ids);
  if (outputs(requests_[r]) <= 1) {
    finish_request(r);
    return;
  }
  if (config_.placement == Placement::colocated) {
    dc_[instance].ready.push_back(r);
    dc_[instance].work.notify(sc_core::SC_ZERO_TIME);
  }
}

int ServingSystem::reserve_decode(std::uint64_t r) {
  const std::uint64_t need = config_.kv_bytes(requests_[r].input_tokens + outputs(requests_[r]));
  while (true) {
    int best = -1;
    for (unsigned j = 0; j < dc_.size(); ++j) {
      if (dc_[j].reserved_bytes + need > config_.decode_kv_capacity_bytes) continue;
      if (best < 0 || dc_[j].reserved_bytes < dc_[static_cast<unsigned>(best)].reserved_bytes) best = static_cast<int>(j);
    }
    if (best >= 0) {
      dc_[static_cast<unsigned>(best)].reserved_bytes += need;
      return best;
    }
    sc_core::wait(room_freed_);
  }
}

void ServingSystem::send_kv(std::uint64_t r, double batch_start_s, PrefillTiming timing) {
  const int dest = reserve_decode(r);
  RequestRecord& rec = records_[r];
  rec.decode_system = dest;
  const std::uint64_t total = config_.kv_bytes(requests_[r].input_tokens);
  const auto src = static_cast<unsigned>(rec.prefill_instance);
  if (config_.kv_send == KvSend::after_prefill) {
    wait_until(batch_start_s + timing.seconds);
    rec.kv_start_s = now_s();
    kv_path_->transfer_layers(src, static_cast<unsigned>(dest), 0, config_.layers - 1, total, r);
  } else {
    const std::uint32_t layers = config_.layers;
    std::uint64_t sent = 0;
    for (std::uint32_t first = 0; first < layers; first += config_.kv_layers_per_message) {
      const std::uint32_t last = std::min(layers, first + config_.kv_layers_per_message) - 1;
      const double ready = timing.layer_done_s.size() > last ? timing.layer_done_s[last] : timing.seconds;
      wait_until(batch_start_s + ready);
      // Bytes of layers [0, last] minus what was sent: exact integer split of the total.
      const std::uint64_t upto = total * (last + 1) / layers;
      if (rec.kv_start_s < 0) rec.kv_start_s = now_s();
      kv_path_->transfer_layers(src, static_cast<unsigned>(dest), first, last, upto - sent, r);
      sent = upto;
    }
  }
  rec.kv_end_s = now_s();
  rec.kv_bytes = total;
  kv_bytes_ += total;
  kv_time_.sample(rec.kv_end_s - rec.kv_start_s);
  // The decode side needs the first token too, which the prefill produced by now or
  // will produce at the batch end.
  wait_until(batch_start_s + timing.seconds);
  dc_[static_cast<unsigned>(dest)].ready.push_back(r);
  dc_[static_cast<unsigned>(dest)].work.notify(sc_core::SC_ZERO_TIME);
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
  const bool colocated = config_.placement == Placement::colocated;
  while (!d.ready.empty() && d.running.size() < config_.decode_max_batch) {
    const std::uint64_t r = d.ready.front();
    if (colocated) {
      const std::uint64_t need = config_.kv_bytes(requests_[r].input_tokens + outputs(requests_[r]));
      if (d.reserved_bytes + need > config_.decode_kv_capacity_bytes) break;  // wait for room, in order
      d.reserved_bytes += need;
      records_[r].decode_system = static_cast<int>(j);
    }
    d.ready.pop_front();
    records_[r].decode_start_s = now_s();
    d.running.push_back(r);
  }
  if (d.running.empty()) return false;
  std::vector<std::uint32_t> contexts;
  contexts.reserve(d.running.size());
  for (std::uint64_t r : d.running) contexts.push_back(requests_[r].input_tokens + records_[r].tokens_out);
  const double start = now_s();
  const double t = decode_[j]->step(contexts);
  sc_core::wait(sc_core::sc_time(t, sc_core::SC_SEC));
  d.busy->add_busy(t);
  decode_batch_.sample(static_cast<double>(d.running.size()));
  if (trace_) trace_->slice(d.track, "decode x" + std::to_string(d.running.size()), start, t);
  std::vector<std::uint64_t> still;
  still.reserve(d.running.size());
  for (std::uint64_t r : d.running) {
    if (trace_) {
      const bool first_step = records_[r].tokens_out == 1;
      const bool last_step = records_[r].tokens_out + 1 >= outputs(requests_[r]);
      if (first_step || last_step) trace_->flow(r, d.track, start, false, last_step);
    }
    records_[r].tokens_out += 1;
    output_tokens_ += 1;
    if (records_[r].tokens_out >= outputs(requests_[r])) {
      d.reserved_bytes -= config_.kv_bytes(requests_[r].input_tokens + outputs(requests_[r]));
      finish_request(r);
      room_freed_.notify(sc_core::SC_ZERO_TIME);
    } else {
      still.push_back(r);
    }
  }
  d.running.swap(still);
  return true;
}

void ServingSystem::finish_request(std::uint64_t r) {
  RequestRecord& rec = records_[r];
  rec.last_token_s = now_s();
  ++completed_;
  end_s_ = std::max(end_s_, rec.last_token_s);
  ttft_.sample(rec.first_token_s - rec.arrival_s);
  e2e_.sample(rec.last_token_s - rec.arrival_s);
  if (rec.tokens_out > 1) tpot_.sample((rec.last_token_s - rec.first_token_s) / (rec.tokens_out - 1));
}

}  // namespace wse::serving
