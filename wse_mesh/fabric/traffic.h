// Synthetic traffic on a per-PE fabric, measured the way flit-level network simulators
// (BookSim 2) do: Bernoulli injection of single-wavelet packets at a given rate per PE,
// a warm-up, a measurement window, then a drain of the packets created in the window.
// Packets are routed dimension-ordered (X then Y) on `vc_colors` colors, each packet
// taking the next color of its source in turn, so the colors play the part of virtual
// channels.
#pragma once

#include <cstdint>
#include <string>

#include "wse_mesh/fabric/fabric.h"

namespace wse::wafer {

enum class TrafficPattern { kUniform, kTranspose, kHotspot };
const char* pattern_name(TrafficPattern p);

struct TrafficConfig {
  TrafficPattern pattern = TrafficPattern::kUniform;
  double injection_rate = 0.05;  // offered load, wavelets per PE per cycle
  std::uint32_t packet_wavelets = 1;
  std::uint32_t vc_colors = 4;    // colors 0..vc_colors-1 used as virtual channels
  double hotspot_fraction = 0.1;  // hotspot: share of packets sent to the centre PE
  std::uint64_t warmup_cycles = 1000;
  std::uint64_t measure_cycles = 2000;
  std::uint64_t drain_cycles = 4000;  // at most this long after the window for its packets
  std::uint64_t seed = 1;
};

struct TrafficResult {
  double offered = 0.0;             // wavelets per PE per cycle created in the window
  double accepted = 0.0;            // wavelets per PE per cycle delivered in the window
  double avg_latency_cycles = 0.0;  // creation to delivery of the last wavelet (incl. source queue)
  double max_latency_cycles = 0.0;
  std::uint64_t measured_packets = 0;
  std::uint64_t undelivered_packets = 0;  // of the window, still in flight after the drain
  std::uint64_t cycles = 0;
  std::uint64_t router_cycles = 0;  // PEs x cycles simulated
  std::uint64_t wavelet_hops = 0;
  double wall_seconds = 0.0;
};

TrafficResult run_traffic(const FabricConfig& fabric, const TrafficConfig& traffic);

}  // namespace wse::wafer
