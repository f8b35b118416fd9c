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
//
// Between nodes (a tensor-parallel group of n nodes x g GPUs), the node's EFA adapters
// (`efa:`: the parameters of the efa_link/ model) are shared by its GPUs, each GPU on its
// own rail of adapters / g adapters. The all-reduce is hierarchical:
//   1. reduce-scatter in each node over the NVSwitch: every GPU holds S / g reduced over
//      its node (ring: (g - 1) (alpha + S / (g B)); direct, each GPU writing each other
//      GPU's part in one step: alpha + (g - 1) S / (g B));
//   2. all-reduce of those S / g bytes between the n GPUs of the same rank, one per node,
//      over their rails (bandwidth Be = adapters / g x line_rate x mtu / (mtu + header),
//      one-way latency Le = 2 nic_latency + path_latency):
//        ring      2 (n - 1) (Le + S / (g n Be))
//        one_shot  Le + (n - 1) S / (g Be)
//   3. all-gather in each node over the NVSwitch (as 1).
// plus `collective_setup` once. Its floors: NVLink (g - 1) S / (g B) (the part of the
// result the other GPUs of the node hold must reach each GPU), EFA 2 (n - 1) S / (n g Be)
// (the all-reduce lower bound between n nodes each of g rails).
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

// The EFA attachment of one node (the efa_link/ model's adapter and path parameters).
struct NodeEfa {
  std::uint32_t adapters = 32;                     // p5.48xlarge: "32 network cards"
  Bandwidth line_rate{100e9 / 8};                  // per adapter, each direction: 3,200 Gbps / 32
  Size mtu{8192};                                  // payload bytes per SRD packet
  Size header{64};                                 // per-packet bytes on the wire besides payload
  Duration nic_latency{1.5e-6};                    // in the NIC, paid once on each side
  Duration path_latency{12e-6};                    // one way through the network, fastest path
  NodeAlgorithm algorithm = NodeAlgorithm::kAuto;  // between nodes: ring, one_shot or auto
  // Payload bandwidth of one GPU's rail (adapters / gpus of the node), each direction.
  double rail_bytes_per_s(std::uint32_t gpus) const;
  // One-way latency of a message between two nodes: 2 nic_latency + path_latency.
  double latency_s() const { return 2.0 * nic_latency.seconds + path_latency.seconds; }
};

struct NodeConfig {
  std::uint32_t gpus = 8;  // p5.48xlarge: "8x H100"
  // H100: "NVLink4, 18 links, 900 GB/s bidirectional (450/dir)".
  Bandwidth link_bandwidth{450e9};
  Duration link_latency{1e-6};  // assumption (p5_48xlarge.yaml): no NVLink latency in the reference
  Duration collective_setup{2.0e-6};
  NodeAlgorithm algorithm = NodeAlgorithm::kAuto;
  bool in_switch_reduction = true;  // NVSwitch with SHARP: nvls available
  NodeEfa efa;
};

struct NodeCollective {
  double seconds = 0.0;
  double floor_s = 0.0;                            // NVLink bandwidth only: S / B in one node
  NodeAlgorithm algorithm = NodeAlgorithm::kRing;  // the one that ran (in the node)
  // Between nodes: the EFA phase's time (included in seconds) and its bandwidth floor.
  double efa_s = 0.0;
  double efa_floor_s = 0.0;
  NodeAlgorithm efa_algorithm = NodeAlgorithm::kRing;
  std::uint64_t efa_bytes = 0;  // bytes one GPU sends over its rail
};

// All-reduce of `bytes` per GPU over `gpus` GPUs of the node with `a` (kAuto: the
// fastest that applies; nvls needs in_switch_reduction). One GPU: nothing to do (0 s).
NodeCollective node_all_reduce(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes,
                               NodeAlgorithm a);
inline NodeCollective node_all_reduce(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes) {
  return node_all_reduce(cfg, gpus, bytes, cfg.algorithm);
}

// Reduce-scatter (or all-gather: the same traffic) of `bytes` per GPU over `gpus` GPUs of
// the node, without collective_setup: ring (a = kRing) or direct (otherwise).
double node_scatter_s(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes, NodeAlgorithm a);

// Hierarchical all-reduce of `bytes` per GPU over `nodes` nodes of cfg.gpus GPUs each
// (above). nodes == 1: node_all_reduce over the node's GPUs.
NodeCollective multi_node_all_reduce(const NodeConfig& cfg, std::uint32_t nodes, std::uint64_t bytes);

// Activations of `bytes` from one pipeline stage of `gpus` GPUs to the next: each GPU
// sends bytes / gpus to its peer of the next stage (over its EFA rail when `across_nodes`,
// else over NVLink), and the next stage all-gathers them:
//   setup + latency + bytes / (gpus x bw) + node_scatter_s(gpus, bytes)
// floor_s / efa_floor_s: bytes / (gpus x bw) on the link crossed.
NodeCollective stage_transfer(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes,
                              bool across_nodes);

// Reads a `gpu_instance:` section (configs/hardware/p5_48xlarge.yaml).
NodeConfig read_node_config(config::Section& s);

}  // namespace wse::gpu
