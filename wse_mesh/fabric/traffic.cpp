#include "wse_mesh/fabric/traffic.h"

#include <chrono>
#include <random>
#include <stdexcept>
#include <vector>

namespace wse::wafer {

const char* pattern_name(TrafficPattern p) {
  switch (p) {
    case TrafficPattern::kUniform:
      return "uniform";
    case TrafficPattern::kTranspose:
      return "transpose";
    case TrafficPattern::kHotspot:
      return "hotspot";
  }
  return "?";
}

namespace {
// Uniform double in [0,1) from 53 random bits: the same on every platform, unlike
// std::uniform_real_distribution.
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
std::uint32_t below(std::mt19937_64& rng, std::uint32_t n) {
  return static_cast<std::uint32_t>(unit(rng) * n);
}
}  // namespace

TrafficResult run_traffic(const FabricConfig& fc, const TrafficConfig& tc) {
  if (tc.vc_colors < 1 || tc.vc_colors > fc.colors)
    throw std::invalid_argument("traffic: vc_colors must be 1..colors");
  if (tc.pattern == TrafficPattern::kTranspose && fc.width != fc.height) {
    throw std::invalid_argument("traffic: transpose needs a square fabric");
  }
  const auto t0 = std::chrono::steady_clock::now();
  Fabric fabric(fc);
  for (std::uint32_t c = 0; c < tc.vc_colors; ++c) fabric.set_dimension_ordered(static_cast<Color>(c));
  const std::uint32_t n = fc.width * fc.height;
  std::mt19937_64 rng(tc.seed);
  std::vector<std::uint8_t> next_color(n, 0);
  const std::uint64_t window_begin = tc.warmup_cycles;
  const std::uint64_t window_end = tc.warmup_cycles + tc.measure_cycles;

  struct Packet {
    std::uint64_t created;
    std::uint32_t remaining;
  };
  std::vector<Packet> packets;  // indexed by message id
  std::uint64_t created_in_window = 0;
  std::uint64_t outstanding = 0;  // window packets not yet fully delivered
  std::uint64_t delivered_in_window = 0;
  double latency_sum = 0.0;
  double latency_max = 0.0;
  std::uint64_t measured = 0;

  fabric.on_delivery([&](PeCoord, MessageId id, std::uint64_t cycle) {
    if (cycle >= window_begin && cycle < window_end) ++delivered_in_window;
    Packet& p = packets[id];
    if (--p.remaining == 0 && p.created >= window_begin && p.created < window_end) {
      const double lat = static_cast<double>(cycle + 1 - p.created);  // complete at end of cycle
      latency_sum += lat;
      latency_max = std::max(latency_max, lat);
      ++measured;
      --outstanding;
    }
  });

  const PeCoord centre{fc.width / 2, fc.height / 2};
  const double p_packet = tc.injection_rate / tc.packet_wavelets;
  std::uint64_t cycle = 0;
  for (; cycle < window_end || (outstanding > 0 && cycle < window_end + tc.drain_cycles); ++cycle) {
    if (cycle < window_end) {  // sources stop creating after the window (the drain)
      for (std::uint32_t s = 0; s < n; ++s) {
        if (unit(rng) >= p_packet) continue;
        const PeCoord src{s % fc.width, s / fc.width};
        PeCoord dst;
        switch (tc.pattern) {
          case TrafficPattern::kUniform: {
            std::uint32_t d = below(rng, n - 1);
            if (d >= s) ++d;  // any PE but itself
            dst = {d % fc.width, d / fc.width};
            break;
          }
          case TrafficPattern::kTranspose:
            dst = {src.y, src.x};
            break;
          case TrafficPattern::kHotspot: {
            if (unit(rng) < tc.hotspot_fraction && !(src == centre)) {
              dst = centre;
            } else {
              std::uint32_t d = below(rng, n - 1);
              if (d >= s) ++d;
              dst = {d % fc.width, d / fc.width};
            }
            break;
          }
        }
        const Color c = next_color[s];
        next_color[s] = static_cast<std::uint8_t>((c + 1) % tc.vc_colors);
        fabric.inject(src, c, tc.packet_wavelets, cycle, dst);
        packets.push_back(Packet{cycle, tc.packet_wavelets});
        if (cycle >= window_begin) {
          ++created_in_window;
          ++outstanding;
        }
      }
    }
    fabric.step();
  }
  TrafficResult r;
  const double denom = static_cast<double>(n) * static_cast<double>(tc.measure_cycles);
  r.offered = static_cast<double>(created_in_window * tc.packet_wavelets) / denom;
  r.accepted = static_cast<double>(delivered_in_window) / denom;
  r.measured_packets = measured;
  r.undelivered_packets = outstanding;
  r.avg_latency_cycles = measured ? latency_sum / static_cast<double>(measured) : 0.0;
  r.max_latency_cycles = latency_max;
  r.cycles = cycle;
  r.router_cycles = static_cast<std::uint64_t>(n) * cycle;
  r.wavelet_hops = fabric.wavelet_hops();
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace wse::wafer
