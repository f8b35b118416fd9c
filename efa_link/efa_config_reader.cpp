// Reads the `efa:` section (layout: configs/hardware/efa_trn2_48xlarge.yaml). The
// defaults are the member initializers of the structs in efa_config.h (written out as
// config text here, so they appear in the resolved configuration); the checks across
// fields are in validate().
#include <deque>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "efa_link/efa_config.h"
#include "systemc_models/config/config.h"

namespace wse::efa {

namespace {

// Default values as configuration text; the strings live as long as the reader.
class Defaults {
 public:
  template <class T>
  std::string_view operator()(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      return text_.emplace_back(v ? "true" : "false");
    } else if constexpr (std::is_arithmetic_v<T>) {
      std::ostringstream s;
      s << v;
      return text_.emplace_back(s.str());
    } else {
      return text_.emplace_back(to_string(v));
    }
  }

 private:
  std::deque<std::string> text_;
};

// `base` supplies the defaults (the receiver defaults to the sender).
EfaAdapterConfig read_adapter(config::Section& s, const EfaAdapterConfig& base, Defaults& def) {
  EfaAdapterConfig a;
  a.adapters = static_cast<std::uint32_t>(s.integer(
      "adapters",
      {.doc = "EFA adapters (devices) of the machine", .def = def(base.adapters), .min = 1, .max = 1024}));
  a.line_rate = s.bandwidth("line_rate", {.doc = "line rate of one adapter, each direction",
                                          .def = def(base.line_rate),
                                          .min = 0,
                                          .min_exclusive = true});
  a.mtu = s.size("mtu", {.doc = "SRD packet payload (MTU)", .def = def(base.mtu), .min = 64});
  a.header = s.size(
      "header", {.doc = "bytes on the wire per packet besides payload", .def = def(base.header), .min = 0});
  a.host_dma =
      s.bandwidth("host_dma", {.doc = "host memory <-> adapter DMA bandwidth per adapter, each direction",
                               .def = def(base.host_dma),
                               .min = 0,
                               .min_exclusive = true});
  a.nic_latency = s.duration("nic_latency", {.doc = "processing latency in the adapter, paid on each side",
                                             .def = def(base.nic_latency),
                                             .min = 0});
  return a;
}

}  // namespace

EfaNetworkConfig read_efa_config(config::Section& efa, const EfaNetworkConfig& base) {
  const EfaNetworkConfig d;  // the defaults
  Defaults def;
  EfaNetworkConfig c;
  c.senders = static_cast<std::uint32_t>(efa.integer(
      "senders",
      {.doc = "sender machines (e.g. prefill instances; in a serving experiment, derived from its prefill "
              "pool)",
       .def = def(base.senders),
       .min = 1,
       .max = 4096}));
  c.receivers = static_cast<std::uint32_t>(efa.integer(
      "receivers",
      {.doc = "receiver machines (e.g. decode systems; in a serving experiment, derived from its decode "
              "pool)",
       .def = def(base.receivers),
       .min = 1,
       .max = 4096}));
  config::Section snd = efa.section("sender", "EFA attachment of each sender machine", true);
  c.sender = read_adapter(snd, d.sender, def);
  config::Section rcv =
      efa.section("receiver", "EFA attachment of each receiver machine (defaults: the sender's)", true);
  c.receiver = read_adapter(rcv, c.sender, def);

  config::Section fab = efa.section("fabric", "the switched network between senders and receivers", true);
  c.fabric.paths = static_cast<std::uint32_t>(fab.integer(
      "paths", {.doc = "network paths SRD sprays over", .def = def(d.fabric.paths), .min = 1, .max = 65535}));
  c.fabric.path_capacity = fab.bandwidth("path_capacity", {.doc = "capacity of one path, each direction",
                                                           .def = def(d.fabric.path_capacity),
                                                           .min = 0,
                                                           .min_exclusive = true});
  c.fabric.path_latency = fab.duration(
      "path_latency",
      {.doc = "one-way latency of the fastest path", .def = def(d.fabric.path_latency), .min = 0});
  c.fabric.path_latency_spread = fab.duration(
      "path_latency_spread", {.doc = "extra latency of the slowest path (spread linearly over paths)",
                              .def = def(d.fabric.path_latency_spread),
                              .min = 0});
  for (config::Section& g : fab.section_list("congestion", "paths loaded by traffic outside the model")) {
    PathCongestion pc;
    pc.path = static_cast<std::uint32_t>(g.integer("path", {.doc = "path index", .min = 0}));
    pc.load = g.number(
        "load", {.doc = "fraction of the path's capacity used by cross traffic", .min = 0, .max = 0.999});
    if (pc.path >= c.fabric.paths) g.fail("path", "path index beyond efa.fabric.paths - 1");
    c.fabric.congestion.push_back(pc);
  }
  for (config::Section& f :
       fab.section_list("faults", "windows of time during which a path drops every packet")) {
    LinkFault lf;
    lf.all_paths = !f.has("path");
    if (!lf.all_paths) {
      lf.path =
          static_cast<std::uint32_t>(f.integer("path", {.doc = "path index (absent: every path)", .min = 0}));
      if (lf.path >= c.fabric.paths) f.fail("path", "path index beyond efa.fabric.paths - 1");
    }
    lf.from = f.duration("from", {.doc = "the link goes down", .min = 0});
    lf.until = f.duration("until", {.doc = "the link comes back", .min = 0});
    if (lf.until < lf.from) f.fail("until", "'until' is before 'from'");
    c.fabric.faults.push_back(lf);
  }

  config::Section srd = efa.section("srd", "the SRD transport", true);
  c.srd.path_selection = srd.enumeration<PathSelection>(
      "path_selection",
      {.doc = "spray order: round_robin, or adaptive (skip paths with a longer queue)",
       .def = d.srd.path_selection == PathSelection::Adaptive ? "adaptive" : "round_robin"},
      {{"round_robin", PathSelection::RoundRobin}, {"adaptive", PathSelection::Adaptive}});
  c.srd.retransmit_timeout =
      srd.duration("retransmit_timeout", {.doc = "a packet not acknowledged this long after "
                                                 "leaving the adapter is sent again",
                                          .def = def(d.srd.retransmit_timeout),
                                          .min = 0,
                                          .min_exclusive = true});
  c.srd.adaptive_timeout = srd.boolean(
      "adaptive_timeout", {.doc = "wait longer than retransmit_timeout when the measured round trip "
                                  "(smoothed + 4 x deviation) is longer",
                           .def = def(d.srd.adaptive_timeout)});
  c.srd.retry_budget = static_cast<std::uint32_t>(
      srd.integer("retry_budget", {.doc = "retransmissions of one packet before the operation fails",
                                   .def = def(d.srd.retry_budget),
                                   .min = 0,
                                   .max = 200}));
  c.srd.loss_probability =
      srd.number("loss_probability", {.doc = "probability that a packet is dropped on its path",
                                      .def = def(d.srd.loss_probability),
                                      .min = 0,
                                      .max = 0.999});
  c.srd.seed = static_cast<std::uint64_t>(
      srd.integer("seed", {.doc = "seed of the loss draws", .def = def(d.srd.seed), .min = 0}));
  c.srd.max_outstanding =
      srd.size("max_outstanding", {.doc = "unacknowledged bytes per adapter (congestion window)",
                                   .def = def(d.srd.max_outstanding),
                                   .min = 1});
  c.srd.congestion_delay = srd.duration(
      "congestion_delay",
      {.doc = "congestion control: packets queued in the network longer than this shrink the window",
       .def = def(d.srd.congestion_delay),
       .min = 0});
  c.srd.grain = srd.enumeration<Grain>("grain",
                                       {.doc = "packet (every packet an event) or burst (trains of packets)",
                                        .def = d.srd.grain == Grain::Packet ? "packet" : "burst"},
                                       {{"packet", Grain::Packet}, {"burst", Grain::Burst}});
  c.srd.burst =
      srd.size("burst", {.doc = "largest burst in burst grain", .def = def(d.srd.burst), .min = 64});
  c.srd.bursts_per_message = static_cast<std::uint32_t>(
      srd.integer("bursts_per_message", {.doc = "fewest bursts a message is cut into in burst grain",
                                         .def = def(d.srd.bursts_per_message),
                                         .min = 1}));
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    // validate() names the key ("efa.sender.mtu ..."): report it at that section.
    std::string what = e.what();
    std::string key = what.rfind("efa.", 0) == 0 ? what.substr(4, what.find_first_of(". :", 4) - 4) : "";
    efa.fail(key, what);
  }
  return c;
}

}  // namespace wse::efa
