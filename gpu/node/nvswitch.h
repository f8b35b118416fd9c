// The GPUs of one node (an HGX baseboard: p5.48xlarge, p5en.48xlarge, p6-b200.48xlarge)
// joined by NVLink through NVSwitch chips, every GPU to every switch, non-blocking
// all-to-all, with in-switch reduction and multicast (NVLink SHARP, "NVLS"). A GPU's
// NVLink ports together carry `link_bandwidth` in each direction.
//
// The all-reduce of tensor parallelism over p GPUs of S bytes each, priced alpha-beta
// per algorithm (alpha = link_latency per step through the switch, beta = 1 /
// link_bandwidth, plus `collective_setup` once):
//   ring      2 (p - 1) steps (reduce-scatter, then all-gather) of S / p:
//             setup + 2 (p - 1) (alpha + S / (p B))
//   one_shot  every GPU writes its whole buffer to each of the p - 1 others in one step
//             and reduces what it receives: setup + alpha + (p - 1) S / B
//   nvls      the switches reduce (each GPU's buffer read once, S out of it) and multicast
//             the result (S into each GPU), the two phases pipelined over chunks:
//             setup + 2 alpha + (1 + 1 / p) S / B
// `auto` takes the fastest for each size, as the collective library chooses by size.
// The bandwidth-only floor of an all-reduce: S / B (a GPU's whole buffer must leave it and
// the whole result must reach it, each way at B).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::gpu {

enum class NodeAlgorithm : std::uint8_t { kRing, kOneShot, kNvls, kAuto };
inline constexpr std::array<NodeAlgorithm, 3> kNodeAlgorithms{NodeAlgorithm::kRing, NodeAlgorithm::kOneShot,
                                                              NodeAlgorithm::kNvls};
std::string_view to_string(NodeAlgorithm a);

struct NodeConfig {
  std::uint32_t gpus = 8;  // p5.48xlarge: "8x H100"
  // H100: "NVLink4, 18 links, 900 GB/s bidirectional (450/dir)".
  Bandwidth link_bandwidth{450e9};
  Duration link_latency{1e-6};  // assumption (p5_48xlarge.yaml): no NVLink latency in the reference
  Duration collective_setup{2.0e-6};
  NodeAlgorithm algorithm = NodeAlgorithm::kAuto;
  bool in_switch_reduction = true;  // NVSwitch with SHARP: nvls available
};

struct NodeCollective {
  double seconds = 0.0;
  double floor_s = 0.0;                            // bandwidth only: S / B
  NodeAlgorithm algorithm = NodeAlgorithm::kRing;  // the one that ran
};

// All-reduce of `bytes` per GPU over `gpus` GPUs of the node with `a` (kAuto: the
// fastest that applies; nvls needs in_switch_reduction). One GPU: nothing to do (0 s).
NodeCollective node_all_reduce(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes,
                               NodeAlgorithm a);
inline NodeCollective node_all_reduce(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes) {
  return node_all_reduce(cfg, gpus, bytes, cfg.algorithm);
}

// Reads a `gpu_instance:` section (configs/hardware/p5_48xlarge.yaml).
NodeConfig read_node_config(config::Section& s);

}  // namespace wse::gpu
