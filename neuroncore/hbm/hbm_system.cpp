#include "neuroncore/hbm/hbm_system.h"

#include <algorithm>

namespace wse::neuron {

namespace {
const HbmConfig& validated(const HbmConfig& cfg) {
  cfg.validate();
  return cfg;
}
}  // namespace

HbmSystem::HbmSystem(const HbmConfig& cfg) : cfg_(validated(cfg)), map_(cfg_) {
  channels_.reserve(cfg_.channels());
  for (std::uint32_t c = 0; c < cfg_.channels(); ++c) channels_.emplace_back(cfg_, c);
  channel_next_.assign(channels_.size(), kNever);
}

void HbmSystem::submit(std::uint64_t now_ps, std::uint64_t address, std::uint64_t bytes, bool write,
                       std::uint64_t tag) {
  const std::uint64_t access = cfg_.access.bytes;
  const std::uint64_t first = address / access;
  const std::uint64_t last = (address + std::max<std::uint64_t>(bytes, 1) - 1) / access;
  std::uint32_t slot = 0;
  if (!free_requests_.empty()) {
    slot = free_requests_.back();
    free_requests_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(requests_.size());
    requests_.emplace_back();
  }
  requests_[slot] = Request{tag, static_cast<std::uint32_t>(last - first + 1)};
  submitted_ = true;
  ++in_flight_;
  for (std::uint64_t a = first; a <= last; ++a) {
    const HbmCoordinates c = map_.decode(a * access);
    const std::uint32_t ch = map_.global_channel(c);
    HbmChannel& channel = channels_[ch];
    channel.advance(now_ps);
    channel.enqueue(
        now_ps, HbmChannel::Access{slot, c.row, static_cast<std::uint8_t>(c.pseudo_channel),
                                   static_cast<std::uint8_t>(c.sid), static_cast<std::uint8_t>(c.bank_group),
                                   static_cast<std::uint8_t>(c.bank), write});
    channel_next_[ch] = channel.next_event_ps();
    next_event_ = std::min(next_event_, channel_next_[ch]);
  }
}

void HbmSystem::refresh_next_event() {
  next_event_ = kNever;
  for (std::uint64_t t : channel_next_) next_event_ = std::min(next_event_, t);
}

}  // namespace wse::neuron
