#include "neuroncore/hbm/hbm.h"

#include <cmath>
#include <string>

namespace wse::neuron {

Hbm::Hbm(const sc_core::sc_module_name& name, const HbmConfig& cfg)
    : sc_core::sc_module(name),
      socket("socket"),
      system_(cfg),
      resolution_ps_(
          static_cast<std::uint64_t>(std::llround(sc_core::sc_get_time_resolution().to_seconds() * 1e12))),
      stats_(this->name()) {
  if (resolution_ps_ == 0) resolution_ps_ = 1;
  socket.register_nb_transport_fw(this, &Hbm::nb_transport_fw);
  socket.register_b_transport(this, &Hbm::b_transport);
  SC_METHOD(on_wake);
  sensitive << wake_;
  dont_initialize();
  SC_METHOD(on_delayed);
  sensitive << delayed_event_;
  dont_initialize();

  reads_ = &stats_.counter("reads", "accesses", "read accesses (one per access size)");
  writes_ = &stats_.counter("writes", "accesses", "write accesses");
  activates_ = &stats_.counter("activates", "commands", "row activations");
  precharges_ = &stats_.counter("precharges", "commands", "precharges for row conflicts");
  refreshes_ = &stats_.counter("refreshes", "commands", "all-bank refreshes");
  bytes_read_stat_ = &stats_.counter("bytes_read", "B", "bytes read by requests");
  bytes_written_stat_ = &stats_.counter("bytes_written", "B", "bytes written by requests");
  read_latency_mean_ =
      &stats_.scalar("read_latency_mean", "ns", "mean access read latency, queue to data end");
  read_latency_max_ = &stats_.scalar("read_latency_max", "ns", "largest access read latency");
  peak_bandwidth_ = &stats_.scalar("peak_bandwidth", "B/s", "peak data bandwidth of all pins");
  peak_bandwidth_->set(system_.config().peak_bandwidth().bytes_per_s);
  data_bus_ = &stats_.utilization("data_bus", "data bus busy time over all pseudo-channels");
  data_bus_->set_lanes(system_.config().pseudo_channels());
  for (std::size_t c = 0; c < system_.channels().size(); ++c) {
    stats::Group& g = stats_.child("channel" + std::to_string(c));
    stats::Utilization& u = g.utilization("data_bus", "data bus busy time of this channel");
    u.set_lanes(system_.config().pseudo_channels_per_channel);
    channel_stats_.push_back({&u});
  }
}

std::uint64_t Hbm::now_ps() const { return sc_core::sc_time_stamp().value() * resolution_ps_; }

void Hbm::submit(int initiator, tlm::tlm_generic_payload& trans, sc_core::sc_event* blocking) {
  std::uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(pending_.size());
    pending_.emplace_back();
  }
  const std::uint64_t now = now_ps();
  pending_[slot] = Pending{&trans, blocking, initiator, now};
  const bool write = trans.get_command() == tlm::TLM_WRITE_COMMAND;
  (write ? bytes_written_ : bytes_read_) += trans.get_data_length();
  system_.submit(now, trans.get_address(), trans.get_data_length(), write, slot);
  schedule_wake();
}

tlm::tlm_sync_enum Hbm::nb_transport_fw(int initiator, tlm::tlm_generic_payload& trans, tlm::tlm_phase& phase,
                                        sc_core::sc_time& delay) {
  if (phase == tlm::END_RESP) return tlm::TLM_COMPLETED;
  if (phase != tlm::BEGIN_REQ) {
    SC_REPORT_ERROR(name(), "unexpected TLM phase on the forward path");
    return tlm::TLM_COMPLETED;
  }
  if (delay != sc_core::SC_ZERO_TIME) {
    // The controller decides in time order: a request annotated into the future waits
    // for its time.
    const std::uint64_t at = now_ps() + delay.value() * resolution_ps_;
    delayed_.push(Delayed{at, delayed_order_++, initiator, &trans});
    delayed_event_.notify(delay);
  } else {
    submit(initiator, trans, nullptr);
  }
  phase = tlm::END_REQ;
  delay = sc_core::SC_ZERO_TIME;
  return tlm::TLM_UPDATED;
}

void Hbm::on_delayed() {
  const std::uint64_t now = now_ps();
  while (!delayed_.empty() && delayed_.top().at_ps <= now) {
    const Delayed d = delayed_.top();
    delayed_.pop();
    submit(d.initiator, *d.trans, nullptr);
  }
  if (!delayed_.empty()) {
    delayed_event_.notify(sc_core::sc_time::from_value((delayed_.top().at_ps - now) / resolution_ps_));
  }
}

void Hbm::b_transport(int initiator, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  if (delay != sc_core::SC_ZERO_TIME) {
    sc_core::wait(delay);
    delay = sc_core::SC_ZERO_TIME;
  }
  sc_core::sc_event done;
  submit(initiator, trans, &done);
  sc_core::wait(done);
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

void Hbm::schedule_wake() {
  const std::uint64_t t = system_.next_event_ps();
  if (t == HbmSystem::kNever || t >= wake_at_ps_) return;
  const std::uint64_t now = now_ps();
  wake_at_ps_ = t;
  if (t <= now) {
    wake_.notify(sc_core::SC_ZERO_TIME);
  } else {
    wake_.notify(sc_core::sc_time::from_value((t - now + resolution_ps_ - 1) / resolution_ps_));
  }
}

void Hbm::on_wake() {
  wake_at_ps_ = HbmSystem::kNever;
  finished_.clear();
  system_.advance_to(
      now_ps(), [this](std::uint64_t slot, std::uint64_t done_ps) { finished_.emplace_back(slot, done_ps); });
  // Answer after the model's state is settled: an initiator may send its next request
  // from inside nb_transport_bw.
  for (const auto& finished : finished_) {
    const std::uint64_t slot = finished.first;
    Pending p = pending_[slot];
    free_.push_back(static_cast<std::uint32_t>(slot));
    p.trans->set_response_status(tlm::TLM_OK_RESPONSE);
    if (p.blocking != nullptr) {
      p.blocking->notify(sc_core::SC_ZERO_TIME);
    } else {
      tlm::tlm_phase phase = tlm::BEGIN_RESP;
      sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
      socket[p.initiator]->nb_transport_bw(*p.trans, phase, delay);
    }
  }
  schedule_wake();
}

void Hbm::sync_stats() const {
  HbmChannel::Counters sum;
  for (std::size_t c = 0; c < system_.channels().size(); ++c) {
    const HbmChannel::Counters& k = system_.channels()[c].counters();
    sum.reads += k.reads;
    sum.writes += k.writes;
    sum.activates += k.activates;
    sum.precharges += k.precharges;
    sum.refreshes += k.refreshes;
    sum.data_busy_ps += k.data_busy_ps;
    sum.read_latency_sum_ps += k.read_latency_sum_ps;
    sum.read_latency_max_ps = std::max(sum.read_latency_max_ps, k.read_latency_max_ps);
    channel_stats_[c].data_bus->reset();
    channel_stats_[c].data_bus->add_busy(static_cast<double>(k.data_busy_ps) * 1e-12);
  }
  auto set = [](stats::Counter* s, std::uint64_t v) {
    s->reset();
    s->add(v);
  };
  set(reads_, sum.reads);
  set(writes_, sum.writes);
  set(activates_, sum.activates);
  set(precharges_, sum.precharges);
  set(refreshes_, sum.refreshes);
  set(bytes_read_stat_, bytes_read_);
  set(bytes_written_stat_, bytes_written_);
  read_latency_mean_->set(sum.reads == 0 ? 0.0
                                         : static_cast<double>(sum.read_latency_sum_ps) /
                                               static_cast<double>(sum.reads) * 1e-3);
  read_latency_max_->set(static_cast<double>(sum.read_latency_max_ps) * 1e-3);
  data_bus_->reset();
  data_bus_->add_busy(static_cast<double>(sum.data_busy_ps) * 1e-12);
}

const stats::Group& Hbm::stats() const {
  sync_stats();
  return stats_;
}

}  // namespace wse::neuron
