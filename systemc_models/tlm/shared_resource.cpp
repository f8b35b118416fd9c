#include "systemc_models/tlm/shared_resource.h"

#include <stdexcept>
#include <string>

namespace wse::tlm_blocks {

namespace {
// The machine a module belongs to: the first component of its hierarchical name.
std::string top_level_name(const std::string& full_name) { return full_name.substr(0, full_name.find('.')); }
}  // namespace

SharedResource::SharedResource(const sc_core::sc_module_name& name, const SharedResourceConfig& config,
                               trace::Writer* trace)
    : sc_module(name),
      target("target", config.initiators),
      config_(config),
      timing_(config, std::string("shared resource '") + this->name() + "'"),
      trace_(trace),
      pending_(config.initiators),
      stats_(this->name()),
      transactions_(stats_.counter("transactions", "count", "transfers granted the resource")),
      bytes_(stats_.counter("bytes", "B", "bytes transferred")),
      utilization_(
          stats_.utilization("utilization", "serialization (busy) time of the resource / elapsed time")),
      wait_time_(stats_.distribution("wait_time", "s",
                                     "from the request to the start of its serialization (arbitration)")),
      transfer_time_(stats_.distribution(
          "transfer_time", "s", "from the request to its completion (wait + serialization + latency)")) {
  for (unsigned i = 0; i < config_.initiators; ++i) {
    target[i].register_b_transport(this, &SharedResource::b_transport, static_cast<int>(i));
  }
  if (trace_ != nullptr) track_ = trace_->track(top_level_name(this->name()), this->name());

  SC_METHOD(arbitrate);
  sensitive << request_arrived_;
  dont_initialize();
}

void SharedResource::b_transport(int id, tlm::tlm_generic_payload& payload, sc_core::sc_time& delay) {
  // The request is made at now + delay; synchronize first so that arbitration sees the
  // requests of all initiators in simulated-time order.
  if (delay != sc_core::SC_ZERO_TIME) {
    sc_core::wait(delay);
    delay = sc_core::SC_ZERO_TIME;
  }
  transfer(static_cast<unsigned>(id), payload.get_data_length());
  payload.set_response_status(tlm::TLM_OK_RESPONSE);
}

void SharedResource::transfer(unsigned initiator, std::uint64_t bytes) {
  if (initiator >= config_.initiators) {
    throw std::out_of_range(std::string("shared resource '") + name() + "': initiator " +
                            std::to_string(initiator) + " does not exist (it has " +
                            std::to_string(config_.initiators) + " initiators)");
  }
  Request request{initiator, bytes, sc_core::sc_time_stamp()};
  pending_[initiator].push_back(&request);
  ++pending_count_;
  // When idle, decide one delta later so that every request of this instant competes.
  if (!serializing_) request_arrived_.notify(sc_core::SC_ZERO_TIME);
  sc_core::wait(request.done);
}

SharedResource::Request* SharedResource::pick() {
  if (pending_count_ == 0) return nullptr;
  const auto n = static_cast<unsigned>(pending_.size());
  unsigned chosen = n;
  if (config_.arbitration == Arbitration::Fifo) {
    // Strict "<": on equal request times the lower initiator index wins.
    for (unsigned i = 0; i < n; ++i) {
      if (pending_[i].empty()) continue;
      if (chosen == n || pending_[i].front()->requested < pending_[chosen].front()->requested) {
        chosen = i;
      }
    }
  } else {
    for (unsigned k = 0; k < n; ++k) {
      const unsigned i = (round_robin_next_ + k) % n;
      if (!pending_[i].empty()) {
        chosen = i;
        break;
      }
    }
    round_robin_next_ = (chosen + 1) % n;
  }
  Request* r = pending_[chosen].front();
  pending_[chosen].pop_front();
  --pending_count_;
  return r;
}

void SharedResource::arbitrate() {
  if (serializing_) {
    // Woken at the end of a serialization: decide in the next delta cycle, after the
    // requests made at this instant have arrived.
    serializing_ = false;
    next_trigger(sc_core::SC_ZERO_TIME);
    return;
  }
  Request* r = pick();
  if (r == nullptr) {
    next_trigger();  // idle until request_arrived_
    return;
  }
  const sc_core::sc_time& now = sc_core::sc_time_stamp();
  const std::uint64_t serialization_ps = timing_.serialization_ps(r->bytes);
  const std::uint64_t done_in_ps = add_ps(serialization_ps, timing_.latency_ps(), "a transfer's duration");
  // Its end must fit in simulated time too (a time beyond it fails the run).
  (void)add_ps(sc_time_to_ps(now), done_in_ps, std::string(name()) + ": the end of a transfer");
  r->done.notify(ps_to_sc_time(done_in_ps));

  busy_ps_ += serialization_ps;
  transactions_.add();
  bytes_.add(r->bytes);
  utilization_.add_busy(static_cast<double>(serialization_ps) * 1e-12);
  const double wait_s = (now - r->requested).to_seconds();
  wait_time_.sample(wait_s);
  transfer_time_.sample(wait_s + static_cast<double>(done_in_ps) * 1e-12);
  if (trace_ != nullptr) {
    trace_->slice(track_, "initiator " + std::to_string(r->initiator), now.to_seconds(),
                  static_cast<double>(serialization_ps) * 1e-12, {{"bytes", std::to_string(r->bytes)}});
  }

  serializing_ = true;
  next_trigger(ps_to_sc_time(serialization_ps));
}

double SharedResource::utilization(const sc_core::sc_time& elapsed) const {
  const std::uint64_t elapsed_ps = sc_time_to_ps(elapsed);
  if (elapsed_ps == 0) return 0.0;
  return static_cast<double>(busy_ps_) / static_cast<double>(elapsed_ps);
}

}  // namespace wse::tlm_blocks
