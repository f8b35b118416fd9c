#include "neuroncore/core/hbm_backend.h"

#include <algorithm>
#include <cmath>

namespace wse::neuron {

StreamingHbm::StreamingHbm(const HbmConfig& cfg) {
  cfg.validate();
  const double refresh_share = cfg.refresh ? static_cast<double>(cfg.timing.tRFC) / cfg.timing.tREFI : 0.0;
  bytes_per_ps_ = cfg.peak_bandwidth().bytes_per_s * (1.0 - refresh_share) * 1e-12;
  latency_ps_ = (cfg.timing.tRCD_RD + cfg.timing.tCL) * cfg.tck_ps() + cfg.burst_ps();
}

void StreamingHbm::submit(std::uint64_t now_ps, std::uint64_t, std::uint64_t bytes, bool, std::uint64_t tag) {
  const double start = std::max(free_ps_, static_cast<double>(now_ps));
  const double serial = static_cast<double>(bytes) / bytes_per_ps_;
  free_ps_ = start + serial;
  busy_ps_ += round_ps(serial);
  if (head_ == done_.size()) {  // drained: reuse the buffer from its start
    done_.clear();
    head_ = 0;
  } else if (head_ >= 4096 && head_ * 2 >= done_.size()) {  // never drained: drop the delivered half
    done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  done_.push_back(Item{round_ps(free_ps_) + latency_ps_, tag});
}

std::uint64_t StreamingHbm::next_event_ps() const {
  return head_ == done_.size() ? kNever : done_[head_].done_ps;
}

void StreamingHbm::advance_to(std::uint64_t t_ps, const Done& done) {
  // `done` may submit (a DMA queue issues its next chunk), which can reallocate done_:
  // copy the item before calling it.
  while (head_ < done_.size() && done_[head_].done_ps <= t_ps) {
    const Item i = done_[head_++];
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
