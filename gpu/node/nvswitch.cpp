#include "gpu/node/nvswitch.h"

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
  return c;
}

}  // namespace wse::gpu
