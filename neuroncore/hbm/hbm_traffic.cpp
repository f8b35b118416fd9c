#include "neuroncore/hbm/hbm_traffic.h"

#include <chrono>
#include <random>
#include <stdexcept>
#include <vector>

#include "neuroncore/hbm/hbm_system.h"

namespace wse::neuron {

std::string to_string(HbmPattern p) { return p == HbmPattern::kSequential ? "sequential" : "random"; }
std::string to_string(HbmScope s) { return s == HbmScope::kOneChannel ? "channel" : "chip"; }

HbmTrafficResult run_hbm_traffic(const HbmConfig& cfg, const HbmTrafficSpec& spec) {
  HbmSystem sys(cfg);
  const HbmAddressMap& map = sys.address_map();
  const bool one = spec.scope == HbmScope::kOneChannel;
  const std::uint64_t channels = one ? 1 : cfg.channels();
  const std::uint64_t outstanding = spec.outstanding != 0 ? spec.outstanding : 2 * cfg.queue_depth * channels;
  const std::uint64_t access = cfg.access.bytes;
  const std::uint64_t request = std::max(spec.request_bytes, access) / access * access;
  if (one && request / access > 64) {
    throw std::invalid_argument("hbm traffic: at one channel a request is at most 64 accesses");
  }
  const std::uint64_t capacity = cfg.capacity().bytes;
  std::mt19937_64 rng(spec.seed);
  std::uint64_t cursor = 0;

  // Addresses within channel 0 of stack 0: enumerate the address space of the whole
  // memory and pin the channel fields, which keeps the order of all other fields.
  auto pin = [&](std::uint64_t addr) {
    HbmCoordinates c = map.decode(addr);
    c.channel = 0;
    c.stack = 0;
    return map.encode(c);
  };
  auto next_address = [&]() -> std::uint64_t {
    if (spec.pattern == HbmPattern::kRandom) {
      const std::uint64_t a = rng() % (capacity / request) * request;
      return one ? pin(a) : a;
    }
    std::uint64_t a = cursor;
    cursor = (cursor + (one ? request * cfg.channels() : request)) % capacity;
    return one ? pin(a) : a;
  };

  std::vector<std::uint64_t> issued_at;
  issued_at.reserve(outstanding);
  std::vector<std::uint64_t> finished;
  HbmTrafficResult r;
  double latency_sum_s = 0.0;
  std::uint64_t sent = 0;
  std::uint64_t now = 0;
  const auto wall0 = std::chrono::steady_clock::now();
  auto send = [&](std::uint64_t tag) {
    const std::uint64_t addr = next_address();
    if (one) {
      // A request larger than one access stays in the channel: its accesses are the
      // consecutive in-channel addresses.
      for (std::uint64_t k = 0; k < request / access; ++k) {
        sys.submit(now, pin(addr + k * access * cfg.channels()), access, spec.write, tag * 64 + k);
      }
    } else {
      sys.submit(now, addr, request, spec.write, tag);
    }
    issued_at[tag] = now;
    ++sent;
  };
  const std::uint64_t parts = one ? request / access : 1;
  std::vector<std::uint32_t> parts_left(outstanding, 0);
  for (std::uint64_t tag = 0; tag < outstanding && sent < spec.requests; ++tag) {
    issued_at.push_back(0);
    parts_left[tag] = static_cast<std::uint32_t>(parts);
    send(tag);
  }
  while (r.requests < spec.requests) {
    now = sys.next_event_ps();
    if (now == HbmSystem::kNever) break;
    finished.clear();
    sys.advance_to(now, [&](std::uint64_t tag, std::uint64_t) {
      const std::uint64_t t = one ? tag / 64 : tag;
      if (--parts_left[t] == 0) finished.push_back(t);
    });
    for (std::uint64_t tag : finished) {
      ++r.requests;
      latency_sum_s += static_cast<double>(now - issued_at[tag]) * 1e-12;
      if (sent < spec.requests) {
        parts_left[tag] = static_cast<std::uint32_t>(parts);
        send(tag);
      }
    }
  }
  const auto wall1 = std::chrono::steady_clock::now();
  r.accesses = r.requests * (request / access);
  r.simulated_s = static_cast<double>(now) * 1e-12;
  r.achieved_bytes_per_s =
      r.simulated_s > 0 ? static_cast<double>(r.requests * request) / r.simulated_s : 0.0;
  r.peak_bytes_per_s =
      cfg.peak_bandwidth().bytes_per_s * static_cast<double>(channels) / static_cast<double>(cfg.channels());
  r.efficiency = r.achieved_bytes_per_s / r.peak_bytes_per_s;
  r.mean_latency_s = r.requests > 0 ? latency_sum_s / static_cast<double>(r.requests) : 0.0;
  r.wall_s = std::chrono::duration<double>(wall1 - wall0).count();
  r.accesses_per_wall_s = r.wall_s > 0 ? static_cast<double>(r.accesses) / r.wall_s : 0.0;
  return r;
}

}  // namespace wse::neuron
