// Closed-loop traffic on an HbmSystem: the microbenchmarks of the HBM model (achieved
// bandwidth for sequential and random patterns, latency at low load) and its speed.
#pragma once

#include <cstdint>
#include <string>

#include "neuroncore/hbm/hbm_config.h"

namespace wse::neuron {

enum class HbmPattern { kSequential, kRandom };
enum class HbmScope { kOneChannel, kAllChannels };

struct HbmTrafficSpec {
  HbmPattern pattern = HbmPattern::kSequential;
  HbmScope scope = HbmScope::kAllChannels;
  std::uint64_t request_bytes = 32;  // at one channel: at most 64 accesses
  bool write = false;
  // Requests kept in flight (a new one is sent as each completes). 0 = enough to fill
  // every channel queue twice over.
  std::uint64_t outstanding = 0;
  std::uint64_t requests = 100000;
  std::uint64_t seed = 1;
};

struct HbmTrafficResult {
  std::uint64_t requests = 0;
  std::uint64_t accesses = 0;
  double simulated_s = 0.0;
  double achieved_bytes_per_s = 0.0;
  double peak_bytes_per_s = 0.0;  // of the memory in scope
  double efficiency = 0.0;        // achieved / peak
  double mean_latency_s = 0.0;    // request issue to completion
  double wall_s = 0.0;
  double accesses_per_wall_s = 0.0;
};

HbmTrafficResult run_hbm_traffic(const HbmConfig& cfg, const HbmTrafficSpec& spec);

std::string to_string(HbmPattern p);
std::string to_string(HbmScope s);

}  // namespace wse::neuron
