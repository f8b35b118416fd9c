#include "gpu/node/nvswitch.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "systemc_models/config/config.h"

namespace wse::gpu {

std::string_view to_string(NodeAlgorithm a) {
  switch (a) {
    case NodeAlgorithm::kRing:
      return "ring";
    case NodeAlgorithm::kOneShot:
      return "one_shot";
    case NodeAlgorithm::kNvls:
      return "nvls";
    case NodeAlgorithm::kAuto:
      return "auto";
  }
  return "?";
}

NodeCollective node_all_reduce(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes,
                               NodeAlgorithm a) {
  NodeCollective r;
  if (gpus <= 1 || bytes == 0) return r;
  const double p = gpus;
  const double s = static_cast<double>(bytes);
  const double b = cfg.link_bandwidth.bytes_per_s;
  const double alpha = cfg.link_latency.seconds;
  const double setup = cfg.collective_setup.seconds;
  r.floor_s = s / b;
  const auto price = [&](NodeAlgorithm x) {
    switch (x) {
      case NodeAlgorithm::kRing:
        return setup + 2.0 * (p - 1.0) * (alpha + s / (p * b));
      case NodeAlgorithm::kOneShot:
        return setup + alpha + (p - 1.0) * s / b;
      case NodeAlgorithm::kNvls:
        return setup + 2.0 * alpha + (1.0 + 1.0 / p) * s / b;
      case NodeAlgorithm::kAuto:
        break;
    }
    return 0.0;
  };
  if (a == NodeAlgorithm::kNvls && !cfg.in_switch_reduction) {
    throw std::invalid_argument("nvls needs in-switch reduction");
  }
  if (a != NodeAlgorithm::kAuto) {
    r.algorithm = a;
    r.seconds = price(a);
    return r;
  }
  bool first = true;
  for (NodeAlgorithm x : kNodeAlgorithms) {
    if (x == NodeAlgorithm::kNvls && !cfg.in_switch_reduction) continue;
    const double t = price(x);
    if (first || t < r.seconds) {
      r.seconds = t;
      r.algorithm = x;
      first = false;
    }
  }
  return r;
}

double NodeEfa::rail_bytes_per_s(std::uint32_t gpus) const {
  const double payload = static_cast<double>(mtu.bytes) / static_cast<double>(mtu.bytes + header.bytes);
  return static_cast<double>(adapters) / std::max<std::uint32_t>(gpus, 1) * line_rate.bytes_per_s * payload;
}

double node_scatter_s(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes, NodeAlgorithm a) {
  if (gpus <= 1 || bytes == 0) return 0.0;
  const double p = gpus;
  const double s = static_cast<double>(bytes);
  const double b = cfg.link_bandwidth.bytes_per_s;
  const double alpha = cfg.link_latency.seconds;
  return a == NodeAlgorithm::kRing ? (p - 1.0) * (alpha + s / (p * b)) : alpha + (p - 1.0) * s / (p * b);
}

NodeCollective multi_node_all_reduce(const NodeConfig& cfg, std::uint32_t nodes, std::uint64_t bytes) {
  if (nodes <= 1) return node_all_reduce(cfg, cfg.gpus, bytes);
  NodeCollective r;
  if (bytes == 0) return r;
  const double g = cfg.gpus;
  const double n = nodes;
  const double s = static_cast<double>(bytes);
  const double b = cfg.link_bandwidth.bytes_per_s;
  const double be = cfg.efa.rail_bytes_per_s(cfg.gpus);
  const double le = cfg.efa.latency_s();
  const double c = s / g;  // one GPU's part after the node's reduce-scatter
  r.algorithm = cfg.algorithm == NodeAlgorithm::kRing ? NodeAlgorithm::kRing : NodeAlgorithm::kOneShot;
  const double in_node = 2.0 * node_scatter_s(cfg, cfg.gpus, bytes, r.algorithm);
  const double ring = 2.0 * (n - 1.0) * (le + c / (n * be));
  const double one_shot = le + (n - 1.0) * c / be;
  const NodeAlgorithm e = cfg.efa.algorithm;
  r.efa_algorithm = e == NodeAlgorithm::kOneShot || (e == NodeAlgorithm::kAuto && one_shot < ring)
                        ? NodeAlgorithm::kOneShot
                        : NodeAlgorithm::kRing;
  r.efa_s = r.efa_algorithm == NodeAlgorithm::kRing ? ring : one_shot;
  r.efa_bytes = static_cast<std::uint64_t>(r.efa_algorithm == NodeAlgorithm::kRing ? 2.0 * (n - 1.0) / n * c
                                                                                   : (n - 1.0) * c);
  r.seconds = cfg.collective_setup.seconds + in_node + r.efa_s;
  r.floor_s = (g - 1.0) / g * s / b;
  r.efa_floor_s = 2.0 * (n - 1.0) / n * c / be;
  return r;
}

NodeCollective stage_transfer(const NodeConfig& cfg, std::uint32_t gpus, std::uint64_t bytes,
                              bool across_nodes) {
  NodeCollective r;
  if (bytes == 0) return r;
  const double k = std::max<std::uint32_t>(gpus, 1);
  const double s = static_cast<double>(bytes);
  const double b = cfg.link_bandwidth.bytes_per_s;
  r.algorithm = cfg.algorithm == NodeAlgorithm::kRing ? NodeAlgorithm::kRing : NodeAlgorithm::kOneShot;
  const double gather = node_scatter_s(cfg, gpus, bytes, r.algorithm);
  if (across_nodes) {
    const double be = cfg.efa.rail_bytes_per_s(cfg.gpus);
    r.efa_s = cfg.efa.latency_s() + s / (k * be);
    r.efa_floor_s = s / (k * be);
    r.efa_bytes = bytes / static_cast<std::uint64_t>(k);
    r.efa_algorithm = NodeAlgorithm::kOneShot;
    r.floor_s = (k - 1.0) / k * s / b;
    r.seconds = cfg.collective_setup.seconds + r.efa_s + gather;
  } else {
    r.floor_s = s / b;
    r.seconds = cfg.collective_setup.seconds + cfg.link_latency.seconds + s / (k * b) + gather;
  }
  return r;
}

NodeConfig read_node_config(config::Section& s) {
  const NodeConfig d;
  NodeConfig c;
  c.gpus = static_cast<std::uint32_t>(s.integer(
      "gpus",
      {.doc = "GPUs of the node, all on the NVSwitch", .def = std::to_string(d.gpus), .min = 1, .max = 72}));
  const std::string def_bw = wse::to_string(d.link_bandwidth);
  const std::string def_lat = wse::to_string(d.link_latency);
  const std::string def_setup = wse::to_string(d.collective_setup);
  c.link_bandwidth =
      s.bandwidth("link_bandwidth", {.doc = "NVLink bandwidth of one GPU (all its links), each direction",
                                     .def = def_bw,
                                     .min = 0,
                                     .min_exclusive = true});
  c.link_latency = s.duration(
      "link_latency",
      {.doc = "latency of one step of a collective through the NVSwitch", .def = def_lat, .min = 0});
  c.collective_setup =
      s.duration("collective_setup",
                 {.doc = "fixed cost of one collective before its first step (the GPUs' synchronisation)",
                  .def = def_setup,
                  .min = 0});
  c.in_switch_reduction =
      s.boolean("in_switch_reduction",
                {.doc = "the NVSwitches reduce and multicast (NVLink SHARP), so nvls is available",
                 .def = d.in_switch_reduction ? "true" : "false"});
  c.algorithm = s.enumeration<NodeAlgorithm>(
      "collective_algorithm",
      {.doc = "all-reduce algorithm: auto (the fastest for each size), ring, one_shot or nvls",
       .def = "auto"},
      {{"auto", NodeAlgorithm::kAuto},
       {"ring", NodeAlgorithm::kRing},
       {"one_shot", NodeAlgorithm::kOneShot},
       {"nvls", NodeAlgorithm::kNvls}});
  if (c.algorithm == NodeAlgorithm::kNvls && !c.in_switch_reduction) {
    s.fail("collective_algorithm", "nvls needs in_switch_reduction: true; use auto, ring or one_shot");
  }
  config::Section e = s.section(
      "efa", "the instance's EFA adapters as the GPUs' collectives between instances use them", true);
  const NodeEfa de;
  c.efa.adapters = static_cast<std::uint32_t>(
      e.integer("adapters", {.doc = "EFA adapters (network cards) of the instance, shared evenly by its GPUs",
                             .def = std::to_string(de.adapters),
                             .min = 1,
                             .max = 1024}));
  c.efa.line_rate = e.bandwidth("line_rate", {.doc = "line rate of one adapter, each direction",
                                              .def = wse::to_string(de.line_rate),
                                              .min = 0,
                                              .min_exclusive = true});
  c.efa.mtu = e.size("mtu", {.doc = "payload bytes per SRD packet", .def = wse::to_string(de.mtu), .min = 1});
  c.efa.header = e.size("header", {.doc = "per-packet bytes on the wire besides the payload",
                                   .def = wse::to_string(de.header),
                                   .min = 0});
  c.efa.nic_latency = e.duration("nic_latency", {.doc = "processing in the NIC, paid once on each side",
                                                 .def = wse::to_string(de.nic_latency),
                                                 .min = 0});
  c.efa.path_latency =
      e.duration("path_latency", {.doc = "one-way latency through the network between instances",
                                  .def = wse::to_string(de.path_latency),
                                  .min = 0});
  c.efa.algorithm = e.enumeration<NodeAlgorithm>(
      "collective_algorithm",
      {.doc = "all-reduce between instances: auto (the faster for each size), ring or one_shot",
       .def = "auto"},
      {{"auto", NodeAlgorithm::kAuto},
       {"ring", NodeAlgorithm::kRing},
       {"one_shot", NodeAlgorithm::kOneShot}});
  return c;
}

}  // namespace wse::gpu
