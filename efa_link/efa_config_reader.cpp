// Reads the `efa:` section (layout: configs/hardware/efa_trn2_48xlarge.yaml). The
// defaults are the member initializers of the structs in efa_config.h (written out as
// config text, so they appear in the resolved configuration); the checks across fields
// are in validate(). The adapter and SRD keys are declared once (`describe`, read by
// config::read); the machine counts and the fabric, with its lists, are still read key
// by key.
#include <deque>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "efa_link/efa_config.h"
#include "systemc_models/config/config.h"
#include "systemc_models/config/fields.h"

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

}  // namespace

void describe(config::Fields<EfaAdapterConfig>& f) {
  using A = EfaAdapterConfig;
  f.field("adapters", &A::adapters, {.doc = "EFA adapters (devices) of the machine", .min = 1, .max = 1024});
  f.field("line_rate", &A::line_rate,
          {.doc = "line rate of one adapter, each direction", .min = 0, .min_exclusive = true});
  f.field("mtu", &A::mtu, {.doc = "SRD packet payload (MTU)", .min = 64});
  f.field("header", &A::header, {.doc = "bytes on the wire per packet besides payload", .min = 0});
  f.field("host_dma", &A::host_dma,
          {.doc = "host memory <-> adapter DMA bandwidth per adapter, each direction",
           .min = 0,
           .min_exclusive = true});
  f.field("nic_latency", &A::nic_latency,
          {.doc = "processing latency in the adapter, paid on each side", .min = 0});
}

void describe(config::Fields<SrdConfig>& f) {
  using S = SrdConfig;
  f.field("path_selection", &S::path_selection,
          {.doc = "spray order: round_robin, or adaptive (skip paths with a longer queue)"},
          {{"round_robin", PathSelection::RoundRobin}, {"adaptive", PathSelection::Adaptive}});
  f.field("retransmit_timeout", &S::retransmit_timeout,
          {.doc = "a packet not acknowledged this long after leaving the adapter is sent again",
           .min = 0,
           .min_exclusive = true});
  f.field("adaptive_timeout", &S::adaptive_timeout,
          {.doc = "wait longer than retransmit_timeout when the measured round trip (smoothed + 4 x "
                  "deviation) is longer"});
  f.field("retry_budget", &S::retry_budget,
          {.doc = "retransmissions of one packet before the operation fails",
           .unit = "retransmissions",
           .min = 0,
           .max = 200});
  f.field("loss_probability", &S::loss_probability,
          {.doc = "probability that a packet is dropped on its path", .min = 0, .max = 0.999});
  f.field("seed", &S::seed, {.doc = "seed of the loss draws", .min = 0});
  f.field("max_outstanding", &S::max_outstanding,
          {.doc = "unacknowledged bytes per adapter (congestion window)", .min = 1});
  f.field("congestion_delay", &S::congestion_delay,
          {.doc = "congestion control: packets queued in the network longer than this shrink the window",
           .min = 0});
  f.field("grain", &S::grain, {.doc = "packet (every packet an event) or burst (trains of packets)"},
          {{"packet", Grain::Packet}, {"burst", Grain::Burst}});
  f.field("burst", &S::burst, {.doc = "largest burst in burst grain", .min = 64});
  f.field("bursts_per_message", &S::bursts_per_message,
          {.doc = "fewest bursts a message is cut into in burst grain", .unit = "bursts", .min = 1});
}

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
  c.sender = config::read<EfaAdapterConfig>(snd, d.sender);
  config::Section rcv =
      efa.section("receiver", "EFA attachment of each receiver machine (defaults: the sender's)", true);
  c.receiver = config::read<EfaAdapterConfig>(rcv, c.sender);

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
  c.srd = config::read<SrdConfig>(srd);
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
