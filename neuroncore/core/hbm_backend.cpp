#include "neuroncore/core/hbm_backend.h"

#include <algorithm>
#include <cmath>

namespace wse::neuron {

StreamingHbm::StreamingHbm(const HbmConfig& cfg) {
  cfg.validate();
  const double refresh_share =
      cfg.refresh ? static_cast<double>(cfg.timing.tRFC) / cfg.timing.tREFI : 0.0;
  bytes_per_ps_ = cfg.peak_bandwidth().bytes_per_s * (1.0 - refresh_share) * 1e-12;
  latency_ps_ = (cfg.timing.tRCD_RD + cfg.timing.tCL) * cfg.tck_ps() + cfg.burst_ps();
}

void StreamingHbm::submit(std::uint64_t now_ps, std::uint64_t, std::uint64_t bytes, bool,
                          std::uint64_t tag) {
  const double start = std::max(free_ps_, static_cast<double>(now_ps));
  const double serial = static_cast<double>(bytes) / bytes_per_ps_;
  free_ps_ = start + serial;
  busy_ps_ += static_cast<std::uint64_t>(std::llround(serial));
  done_.push(Item{static_cast<std::uint64_t>(std::llround(free_ps_)) + latency_ps_, seq_++, tag});
}

std::uint64_t StreamingHbm::next_event_ps() const {
  return done_.empty() ? kNever : done_.top().done_ps;
}

void StreamingHbm::advance_to(std::uint64_t t_ps, const Done& done) {
  while (!done_.empty() && done_.top().done_ps <= t_ps) {
    const Item i = done_.top();
    done_.pop();
    done(i.tag, i.done_ps);
  }
}

std::uint64_t BankHbm::busy_ps() const {
  std::uint64_t b = 0;
  for (const HbmChannel& c : system_.channels()) b += c.counters().data_busy_ps;
  return b;
}

std::unique_ptr<HbmBackend> make_hbm_backend(const HbmConfig& cfg, HbmFidelity f) {
  if (f == HbmFidelity::kStreaming) return std::make_unique<StreamingHbm>(cfg);
  return std::make_unique<BankHbm>(cfg);
}

}  // namespace wse::neuron
