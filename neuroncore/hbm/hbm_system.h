// All channels of an HBM memory behind one address map: splits a request into accesses,
// hands them to their channels and reports a request done when its last access is.
// Plain C++ driven by integer picosecond time (the SystemC module Hbm wraps it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "neuroncore/hbm/hbm_address_map.h"
#include "neuroncore/hbm/hbm_channel.h"
#include "neuroncore/hbm/hbm_config.h"

namespace wse::neuron {

class HbmSystem {
 public:
  static constexpr std::uint64_t kNever = HbmChannel::kNever;

  explicit HbmSystem(const HbmConfig& cfg);

  // A read or write of `bytes` at `address`, arriving at `now_ps`; `tag` comes back with
  // its completion. The request is split at access boundaries.
  void submit(std::uint64_t now_ps, std::uint64_t address, std::uint64_t bytes, bool write,
              std::uint64_t tag);
  // Earliest time at which a completion may be due (kNever when idle).
  std::uint64_t next_event_ps() const { return next_event_; }
  // Runs every channel up to `t_ps` and calls f(tag, done_ps) for each request whose
  // last access completed by then, in channel order.
  template <class F>
  void advance_to(std::uint64_t t_ps, F&& f);

  const HbmConfig& config() const { return cfg_; }
  const HbmAddressMap& address_map() const { return map_; }
  const std::vector<HbmChannel>& channels() const { return channels_; }
  std::uint64_t requests_in_flight() const { return in_flight_; }

 private:
  struct Request {
    std::uint64_t tag;
    std::uint32_t remaining;
  };
  void refresh_next_event();

  HbmConfig cfg_;
  HbmAddressMap map_;
  std::vector<HbmChannel> channels_;
  std::vector<std::uint64_t> channel_next_;
  std::uint64_t next_event_ = kNever;
  std::vector<Request> requests_;
  std::vector<std::uint32_t> free_requests_;
  std::uint64_t in_flight_ = 0;
  bool submitted_ = false;
};

template <class F>
void HbmSystem::advance_to(std::uint64_t t_ps, F&& f) {
  if (t_ps < next_event_) return;
  submitted_ = false;
  std::uint64_t next = kNever;
  for (std::size_t c = 0; c < channels_.size(); ++c) {
    if (channel_next_[c] > t_ps) {
      next = std::min(next, channel_next_[c]);
      continue;
    }
    HbmChannel& ch = channels_[c];
    ch.advance(t_ps);
    ch.drain_completions(t_ps, [&](const HbmChannel::Completion& done) {
      Request& r = requests_[done.tag];
      if (--r.remaining == 0) {
        free_requests_.push_back(static_cast<std::uint32_t>(done.tag));
        --in_flight_;
        f(r.tag, done.done_ps);
      }
    });
    channel_next_[c] = ch.next_event_ps();
    next = std::min(next, channel_next_[c]);
  }
  // A callback that submitted new requests may have changed channels already visited.
  if (submitted_) {
    refresh_next_event();
  } else {
    next_event_ = next;
  }
}

}  // namespace wse::neuron
